"""The breaker's activity: a chunk's report of how its calls fared."""

from __future__ import annotations

from temporalio import activity

from fleetbatch import gauges
from fleetbatch.activities.types import REPORT_TO_BREAKER
from fleetbatch.domain import BreakerCount
from fleetbatch.store import Store
from fleetbatch.store.breakers import STATES


def breaker_gauge(key: str, state: str) -> None:
    """The breaker's state as a gauge: one series per breaker key in a process."""
    gauges.breaker_state(key, STATES.index(state))


class BreakerActivities:
    def __init__(self, store: Store) -> None:
        self._breakers = store.breakers

    @activity.defn(name=REPORT_TO_BREAKER)
    async def report(self, params: BreakerCount) -> str:
        """Count how a chunk's calls fared; returns the breaker's state after."""
        state = await self._breakers.report(params)
        breaker_gauge(params.key, state)
        return state
