"""Circuit breakers, one per key (the downstream a pipeline protects), shared by
every worker through the store.

Closed: calls flow; each chunk reports how its calls fared. When the
failure share over a window of at least ``min_calls`` reaches the threshold,
the breaker opens: calls for the key wait. After the cool-down, one
chunk is let through as the probe (half-open); its report closes the breaker
or opens it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetbatch.domain import BreakerCount, BreakerSeen
from fleetbatch.store.batches import now
from fleetbatch.store.db import insert_ignoring_conflicts, snapshot, transaction
from fleetbatch.store.tables import breakers

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
STATES = (CLOSED, HALF_OPEN, OPEN)
"""In gauge order: the metric reports the index."""


@dataclass(frozen=True)
class BreakerPolicy:
    failure_share: float = 0.5
    """Open when at least this share of a window's calls failed or timed out."""
    min_calls: int = 20
    """Fewer calls in a window never open the breaker."""
    window_seconds: float = 60.0
    cooldown_seconds: float = 30.0
    """How long an open breaker waits before letting a probe through."""
    probe_timeout_seconds: float = 600.0
    """A probe that never reports is replaced after this long."""


@dataclass(frozen=True)
class Admission:
    allowed: bool
    probe: bool = False
    retry_after: float = 0.0
    state: str = CLOSED


@dataclass(frozen=True)
class BreakerView:
    key: str
    state: str
    successes: int
    failures: int
    opened_at: datetime | None


class BreakerRepository:
    def __init__(self, engine: AsyncEngine, policy: BreakerPolicy) -> None:
        self._engine = engine
        self.policy = policy

    @staticmethod
    def _locked(conn: Connection, key: str) -> Row[Any]:
        """The breaker's row, created closed if new, locked for this transaction."""
        query = select(breakers).where(breakers.c.key == key).with_for_update()
        row = conn.execute(query).first()
        if row is not None:
            return row
        stamp = now()
        conn.execute(
            insert_ignoring_conflicts(conn, breakers).values(
                key=key,
                state=CLOSED,
                window_started_at=stamp,
                successes=0,
                failures=0,
                updated_at=stamp,
            )
        )
        return conn.execute(query).one()

    async def admit(self, key: str, caller: str) -> Admission:
        """May ``caller`` (a chunk workflow) call ``key``'s downstream now?"""
        if (await self.get(key)).state == CLOSED:
            return Admission(True)  # the common case needs no write transaction
        return await transaction(self._engine, self._admit, key, caller)

    def _admit(self, conn: Connection, key: str, caller: str) -> Admission:
        p = self.policy
        row = self._locked(conn, key)
        if row.state == CLOSED:
            return Admission(True)
        stamp = now()
        if row.state == HALF_OPEN:
            stale = stamp - row.updated_at > timedelta(seconds=p.probe_timeout_seconds)
            if row.probe != caller and not stale:
                return Admission(False, retry_after=min(5.0, p.cooldown_seconds), state=HALF_OPEN)
        else:
            reopen = row.opened_at + timedelta(seconds=p.cooldown_seconds)
            wait = (reopen - stamp).total_seconds()
            if wait > 0:
                return Admission(False, retry_after=wait, state=OPEN)
        conn.execute(
            update(breakers)
            .where(breakers.c.key == key)
            .values(state=HALF_OPEN, probe=caller, updated_at=stamp)
        )
        return Admission(True, probe=True, state=HALF_OPEN)

    async def report(self, count: BreakerCount) -> str:
        """Count a chunk's answered and failed calls; returns the state after."""
        return (await transaction(self._engine, self.count_in, count)).state

    def count_in(
        self, conn: Connection, count: BreakerCount, *, repeated: bool = False
    ) -> BreakerSeen:
        """``report``, inside the caller's write transaction, returning the breaker as
        the count left it; ``repeated``: this count was made before, so only the state
        is read."""
        row = self._locked(conn, count.key)
        if repeated:
            return _seen(count.key, row.state, row.opened_at, row.window_started_at)
        values = self._counted(row, count)
        if values is None:
            return _seen(count.key, row.state, row.opened_at, row.window_started_at)
        conn.execute(update(breakers).where(breakers.c.key == count.key).values(values))
        return _seen(
            count.key,
            values.get("state", row.state),
            values.get("opened_at", row.opened_at),
            values.get("window_started_at", row.window_started_at),
        )

    def _counted(self, row: Row[Any], count: BreakerCount) -> dict[str, object] | None:
        """The row's new values once ``count`` is counted; None: it is not (open, or
        half-open waiting for its probe)."""
        p = self.policy
        stamp = now()
        values: dict[str, object] = {"updated_at": stamp}
        if count.probe and row.state == HALF_OPEN:
            total = count.successes + count.failures
            failed = total > 0 and count.failures / total >= p.failure_share
            values |= _opened(stamp) if failed else _closed(stamp)
        elif row.state == CLOSED:
            if stamp - row.window_started_at > timedelta(seconds=p.window_seconds):
                values |= {"window_started_at": stamp, "successes": 0, "failures": 0}
                ok, bad = count.successes, count.failures
            else:
                ok, bad = row.successes + count.successes, row.failures + count.failures
            values |= {"successes": ok, "failures": bad}
            if ok + bad >= p.min_calls and bad / (ok + bad) >= p.failure_share:
                values |= _opened(stamp)
        else:
            return None
        return values

    async def get(self, key: str) -> BreakerView:
        row = await snapshot(self._engine, _row, key)
        if row is None:
            return BreakerView(key, CLOSED, 0, 0, None)
        return BreakerView(key, row.state, row.successes, row.failures, row.opened_at)


def _row(conn: Connection, key: str) -> Row[Any] | None:
    return conn.execute(select(breakers).where(breakers.c.key == key)).first()


def _seen(key: str, state: object, opened_at: object, window_started_at: object) -> BreakerSeen:
    since = window_started_at if state == CLOSED else opened_at
    assert isinstance(since, datetime)  # UtcDateTime: aware
    return BreakerSeen(key, str(state), since.timestamp())


def _opened(stamp: datetime) -> dict[str, object]:
    return {"state": OPEN, "opened_at": stamp, "probe": None}


def _closed(stamp: datetime) -> dict[str, object]:
    return {
        "state": CLOSED,
        "opened_at": None,
        "probe": None,
        "window_started_at": stamp,
        "successes": 0,
        "failures": 0,
    }
