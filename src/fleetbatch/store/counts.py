"""A batch's items by status, kept current in the transactions that change them.

Counting a million items with ``GROUP BY`` on every progress read costs a scan of
the batch; instead every write that moves items between statuses adds its
deltas to ``batch_counts`` (one row per batch and status) in its own
transaction, so the counts add up to the total at every commit, and progress
moves per item. Items reaching a terminal status are also added to
``batch_timeline`` (10-second buckets): the completions chart and the sliding
window behind the rate and the ETA.

The deltas go in last in each transaction and in one order (batch, status): two
writers of one batch wait for each other only for the end of a transaction and
never deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.store.tables import batch_counts, batch_timeline, batches

BUCKET_SECONDS = 10
"""The timeline's resolution."""

_TERMINAL = frozenset(s.value for s in TERMINAL)


class Changes:
    """What one transaction did to item statuses, by batch: the deltas to apply."""

    def __init__(self) -> None:
        self.deltas: Counter[tuple[str, str]] = Counter()
        self.completed: Counter[tuple[str, str]] = Counter()
        """Items that reached a terminal status, by (batch, status)."""

    def add(self, batch_id: str, status: str, n: int) -> None:
        """``n`` new items in ``status``."""
        if n:
            self.deltas[(batch_id, status)] += n

    def move(self, batch_id: str, old: str, new: str, n: int = 1) -> None:
        """``n`` items moved from ``old`` to ``new``."""
        if not n or old == new:
            return
        self.deltas[(batch_id, old)] -= n
        self.deltas[(batch_id, new)] += n
        if new in _TERMINAL:
            self.completed[(batch_id, new)] += n

    def move_rows(self, old: str, new: str, batch_ids: Iterable[str]) -> int:
        """One move per returned row (its batch id); how many rows there were."""
        rows = Counter(batch_ids)
        for batch_id, n in rows.items():
            self.move(batch_id, old, new, n)
        return rows.total()

    def __bool__(self) -> bool:
        return any(self.deltas.values())


@dataclass(frozen=True)
class BatchCounts:
    by_status: dict[str, int]
    """Every status, zeros included."""
    updated_at: datetime | None
    """When an item of the batch last changed status (None: it has no items)."""

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class TimelineBucket:
    start: datetime
    status: str
    n: int
    """Items that reached ``status`` in the ``BUCKET_SECONDS`` from ``start``."""


CompletedListener = Callable[[str, str, str, int], None]
"""Told (pipeline, label, status, n) after a commit that made items terminal."""

_UPSERTS: dict[tuple[str, str], Any] = {}


def _upsert(conn: Connection, table: Table, keys: tuple[str, ...]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET n = n + excluded.n``, built once."""
    dialect = conn.dialect.name
    cached = _UPSERTS.get((dialect, table.name))
    if cached is not None:
        return cached
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:
        raise NotImplementedError(f"unsupported database {dialect!r}")
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={"n": table.c.n + stmt.excluded.n, "updated_at": stmt.excluded.updated_at},
    )
    _UPSERTS[(dialect, table.name)] = stmt
    return stmt


def apply(conn: Connection, changes: Changes, stamp: datetime) -> None:
    """Add ``changes`` inside the caller's transaction: the last statements of it.
    (An async transaction calls it through ``conn.run_sync``.)"""
    rows = [
        {"batch_id": b, "status": s, "n": n, "updated_at": stamp}
        for (b, s), n in sorted(changes.deltas.items())
        if n
    ]
    if not rows:
        return
    conn.execute(_upsert(conn, batch_counts, ("batch_id", "status")), rows)
    if changes.completed:
        bucket = _bucket(stamp)
        conn.execute(
            _upsert(conn, batch_timeline, ("batch_id", "bucket", "status")),
            [
                {"batch_id": b, "bucket": bucket, "status": s, "n": n, "updated_at": stamp}
                for (b, s), n in sorted(changes.completed.items())
            ],
        )


def _bucket(stamp: datetime) -> int:
    seconds = int(stamp.timestamp())
    return seconds - seconds % BUCKET_SECONDS


class CountRepository:
    """Reads of the counts and timeline; tells a listener what became terminal."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._labels: dict[str, tuple[str, str]] = {}
        self.on_completed: CompletedListener | None = None

    async def get(self, batch_id: str) -> BatchCounts:
        query = select(batch_counts.c.status, batch_counts.c.n, batch_counts.c.updated_at).where(
            batch_counts.c.batch_id == batch_id
        )
        async with self._engine.connect() as conn:
            found = list(await conn.execute(query))
        return counts_of(found)

    async def many(self, batch_ids: Iterable[str]) -> dict[str, BatchCounts]:
        """The counts of each of ``batch_ids`` (a page of a batch list), in one query."""
        ids = sorted(set(batch_ids))
        rows: dict[str, list[Any]] = {b: [] for b in ids}
        if ids:
            query = select(
                batch_counts.c.batch_id,
                batch_counts.c.status,
                batch_counts.c.n,
                batch_counts.c.updated_at,
            ).where(batch_counts.c.batch_id.in_(ids))
            async with self._engine.connect() as conn:
                for batch_id, *row in await conn.execute(query):
                    rows[batch_id].append(row)
        return {b: counts_of(found) for b, found in rows.items()}

    @staticmethod
    def read(conn: Connection, batch_id: str) -> dict[str, int]:
        """The counts by status inside the caller's transaction."""
        query = select(batch_counts.c.status, batch_counts.c.n, batch_counts.c.updated_at).where(
            batch_counts.c.batch_id == batch_id
        )
        return counts_of(list(conn.execute(query))).by_status

    async def timeline(self, batch_id: str) -> list[TimelineBucket]:
        """Completions per status over time, oldest first."""
        query = (
            select(batch_timeline.c.bucket, batch_timeline.c.status, batch_timeline.c.n)
            .where(batch_timeline.c.batch_id == batch_id)
            .order_by(batch_timeline.c.bucket, batch_timeline.c.status)
        )
        async with self._engine.connect() as conn:
            return [
                TimelineBucket(datetime.fromtimestamp(b, UTC), s, int(n))
                for b, s, n in await conn.execute(query)
            ]

    async def recent_rate(
        self, batch_id: str, *, since: datetime, window: float = 60.0, at: datetime | None = None
    ) -> float:
        """Items per second that reached a terminal status over the last ``window``
        seconds (or since ``since``, the batch's start, if that is later)."""
        at = at or datetime.now(UTC)
        first = _bucket(at - timedelta(seconds=window))
        query = select(func.coalesce(func.sum(batch_timeline.c.n), 0)).where(
            batch_timeline.c.batch_id == batch_id, batch_timeline.c.bucket >= first
        )
        async with self._engine.connect() as conn:
            n = int(await conn.scalar(query) or 0)
        start = max(float(first), since.timestamp())
        span = at.timestamp() - start
        return n / span if span > 0 else 0.0

    def tell(self, conn: Connection, changes: Changes) -> Callable[[], None]:
        """Inside the transaction: look up the labels of the batches that completed
        items (once per batch and process); returns what to call after the commit."""
        listener = self.on_completed
        if listener is None or not changes.completed:
            return nothing
        missing = {b for b, _ in changes.completed} - self._labels.keys()
        if missing:
            found = conn.execute(
                select(batches.c.id, batches.c.pipeline, batches.c.label).where(
                    batches.c.id.in_(sorted(missing))
                )
            )
            for batch_id, pipeline, label in found:
                self._labels[batch_id] = (pipeline, label)
        completed = [
            (*self._labels.get(b, ("", "")), s, n) for (b, s), n in changes.completed.items()
        ]

        def after_commit() -> None:
            for pipeline, label, status, n in completed:
                listener(pipeline, label, status, n)

        return after_commit


def nothing() -> None:
    """What ``tell`` returns when there is nobody to tell."""
    return None


def counts_of(rows: Iterable[Any]) -> BatchCounts:
    by_status = {s.value: 0 for s in ItemStatus}
    updated: datetime | None = None
    for status, n, stamp in rows:
        by_status[status] = int(n)
        if stamp is not None:
            stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp
            updated = stamp if updated is None else max(updated, stamp)
    return BatchCounts(by_status, updated)
