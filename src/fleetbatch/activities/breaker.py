"""The breaker's activity: a chunk's report of how its calls fared."""

from __future__ import annotations

from temporalio import activity

from fleetbatch import metrics
from fleetbatch.activities.types import REPORT_TO_BREAKER
from fleetbatch.domain import BreakerCount
from fleetbatch.store import Store
from fleetbatch.store.breakers import STATES


def breaker_gauge(key: str, state: str) -> None:
    """The breaker's state as a gauge: one series per breaker key."""
    activity.metric_meter().create_gauge(
        metrics.BREAKER_STATE, "circuit breaker per key: 0 closed, 1 half-open, 2 open"
    ).set(STATES.index(state), {"breaker": key})


class BreakerActivities:
    def __init__(self, store: Store) -> None:
        self._breakers = store.breakers

    @activity.defn(name=REPORT_TO_BREAKER)
    async def report(self, params: BreakerCount) -> str:
        """Count how a chunk's calls fared; returns the breaker's state after."""
        state = await self._breakers.report(params)
        breaker_gauge(params.key, state)
        return state
