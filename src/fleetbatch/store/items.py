"""Item rows: every read and write is one statement per page or chunk, never per item."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import BindParameter, Connection, and_, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetbatch.domain import (
    BreakerCount,
    BreakerSeen,
    ChunkSpec,
    ItemRef,
    ItemStatus,
    Outcome,
    effect_id_for,
)
from fleetbatch.errors import BatchConflictError, BatchNotFoundError
from fleetbatch.store import leases
from fleetbatch.store.attempts import close_attempts, fail_open_attempts
from fleetbatch.store.batches import BatchStatus, now
from fleetbatch.store.breakers import BreakerRepository
from fleetbatch.store.counts import Changes, CountRepository, apply, nothing
from fleetbatch.store.db import transaction
from fleetbatch.store.tables import batches, items

_OPEN = (ItemStatus.PENDING, ItemStatus.IN_FLIGHT)
_OPEN_VALUES = [s.value for s in _OPEN]
_PENDING, _IN_FLIGHT = ItemStatus.PENDING.value, ItemStatus.IN_FLIGHT.value
_NOT_SUCCEEDED = [s.value for s in (ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.CANCELLED)]

# The statements every chunk runs, built once with parameters: built per call,
# SQLAlchemy derived each one's cache key again (~5 % of the worker's py-spy samples).
_OPEN_IN_CHUNK = and_(
    items.c.batch_id == bindparam("chunk_batch_id"),
    items.c.id.between(bindparam("chunk_first_id"), bindparam("chunk_last_id")),
    items.c.status.in_(_OPEN_VALUES),
)
_CHUNK_HOLDER: BindParameter[str] = bindparam("lease_holder")
_IN_FLIGHT_VALUES = {
    "status": ItemStatus.IN_FLIGHT.value,
    "workflow_id": _CHUNK_HOLDER,
    "updated_at": bindparam("stamp"),
}
_RETURNED = (items.c.id, items.c.key, items.c.effect_id)
_FROM: BindParameter[str] = bindparam("from_status")
"""The one status a write moves items from: each write's deltas to the counts are exact."""
_PUT_LEASED_IN_FLIGHT = (
    update(items)
    .where(_OPEN_IN_CHUNK, items.c.key.in_(leases.held_by(_CHUNK_HOLDER)))
    .values(_IN_FLIGHT_VALUES)
    .returning(*_RETURNED)
)
_PUT_IN_FLIGHT = update(items).where(_OPEN_IN_CHUNK).values(_IN_FLIGHT_VALUES).returning(*_RETURNED)
_COUNT_OPEN_IN_CHUNK = select(
    func.count(),
    func.coalesce(func.sum(case((items.c.status == _IN_FLIGHT, 1), else_=0)), 0),
    func.coalesce(
        func.sum(
            case(
                (and_(items.c.status == _IN_FLIGHT, items.c.workflow_id == _CHUNK_HOLDER), 1),
                else_=0,
            )
        ),
        0,
    ),
).where(_OPEN_IN_CHUNK)
"""Before a chunk begins: its open items, those in flight, and those in flight for it."""
_WRITE_OUTCOME = (
    update(items)
    .where(items.c.id.in_(bindparam("ids", expanding=True)), items.c.status == _FROM)
    .values(
        status=bindparam("outcome_status"),
        attempts=bindparam("outcome_attempts"),
        error=bindparam("outcome_error"),
        updated_at=bindparam("stamp"),
    )
    .returning(items.c.batch_id)
)
_WRITE_RESULT = (
    update(items)
    .where(items.c.id == bindparam("item_id"), items.c.status == _FROM)
    .values(
        status=bindparam("outcome_status"),
        attempts=bindparam("outcome_attempts"),
        error=bindparam("outcome_error"),
        result=bindparam("outcome_result", type_=items.c.result.type),
        updated_at=bindparam("stamp"),
    )
    .returning(items.c.batch_id)
)
_ACQUIRE: dict[str, Any] = {}
"""``leases.acquire_from`` the open keys of a chunk, per dialect."""


class ItemRepository:
    """Bulk reads and writes of a batch's items."""

    def __init__(
        self, engine: AsyncEngine, breakers: BreakerRepository, counts: CountRepository
    ) -> None:
        self._engine = engine
        self._breakers = breakers
        self._counts = counts

    async def next_chunks(
        self,
        batch_id: str,
        after_id: int,
        chunk_size: int,
        max_chunks: int,
        *,
        max_items: int | None = None,
    ) -> list[ChunkSpec]:
        """Group the next pending items after ``after_id`` into at most ``max_chunks``
        chunks, and at most ``max_items`` items: the last chunk may be smaller."""
        limit = chunk_size * max_chunks
        if max_items is not None:
            limit = min(limit, max_items)
        query = (
            select(items.c.id)
            .where(
                items.c.batch_id == batch_id,
                items.c.status == ItemStatus.PENDING.value,
                items.c.id > after_id,
            )
            .order_by(items.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            ids = list((await conn.execute(query)).scalars())
        return [
            ChunkSpec(part[0], part[-1], len(part))
            for part in (ids[i : i + chunk_size] for i in range(0, len(ids), chunk_size))
        ]

    async def begin_chunk(
        self, batch_id: str, chunk: ChunkSpec, workflow_id: str, *, lease: bool = True
    ) -> tuple[list[ItemRef], int]:
        """Mark the chunk's open items in flight and return them (safe to repeat).

        With ``lease``, only items whose keys the chunk could lease: the second value
        is how many wait for a key another chunk holds."""
        stamp = now()
        params = {
            "chunk_batch_id": batch_id,
            "chunk_first_id": chunk.first_id,
            "chunk_last_id": chunk.last_id,
            "lease_batch_id": batch_id,
            "lease_holder": workflow_id,
            "lease_acquired_at": stamp,
            "stamp": stamp,
        }
        return await transaction(self._engine, self._begin_chunk, params, lease)

    def _begin_chunk(
        self, conn: Connection, params: dict[str, Any], lease: bool
    ) -> tuple[list[ItemRef], int]:
        if lease:
            conn.execute(self._acquire(conn), params)
        open_items, in_flight, mine = conn.execute(_COUNT_OPEN_IN_CHUNK, params).one()
        put = conn.execute(_PUT_LEASED_IN_FLIGHT if lease else _PUT_IN_FLIGHT, params)
        refs = sorted((ItemRef(r.id, r.key, r.effect_id) for r in put), key=attrgetter("id"))
        # What was in flight already stays so: a repeated begin (for a leased
        # chunk only its own items; without leases every open item is taken).
        changes = Changes()
        changes.move(
            params["chunk_batch_id"],
            _PENDING,
            _IN_FLIGHT,
            len(refs) - (mine if lease else in_flight),
        )
        apply(conn, changes, params["stamp"])
        return refs, int(open_items) - len(refs)

    @staticmethod
    def _acquire(conn: Connection) -> Any:
        dialect = conn.dialect.name
        if dialect not in _ACQUIRE:
            _ACQUIRE[dialect] = leases.acquire_from(conn, select(items.c.key).where(_OPEN_IN_CHUNK))
        return _ACQUIRE[dialect]

    async def in_flight(self, workflow_id: str, item_ids: Sequence[int]) -> set[int]:
        """Those of ``item_ids`` the chunk ``workflow_id`` still has in flight."""
        query = select(items.c.id).where(
            items.c.id.in_(item_ids),
            items.c.workflow_id == workflow_id,
            items.c.status == ItemStatus.IN_FLIGHT.value,
        )
        async with self._engine.connect() as conn:
            return set((await conn.execute(query)).scalars())

    async def rows(self, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The items ``item_ids`` (id, key, payload, status, attempts, error, result), by id."""
        query = (
            select(
                items.c.id,
                items.c.key,
                items.c.payload,
                items.c.status,
                items.c.attempts,
                items.c.error,
                items.c.result,
            )
            .where(items.c.id.in_(list(item_ids)))
            .order_by(items.c.id)
        )
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    async def record_one(self, outcome: Outcome, result: Any) -> bool:
        """Write one item's final status with its result (a step that records as it
        goes, so a retried attempt resumes after it); False if it was terminal already."""
        values = {
            "item_id": outcome.item_id,
            "outcome_status": outcome.status.value,
            "outcome_attempts": outcome.attempts,
            "outcome_error": outcome.error,
            "outcome_result": result,
            "stamp": now(),
        }
        changes, told = await transaction(self._engine, self._record_one, values, outcome.status)
        told()
        return bool(changes)

    def _record_one(
        self, conn: Connection, values: dict[str, Any], status: ItemStatus
    ) -> tuple[Changes, Callable[[], None]]:
        changes = Changes()
        for old in (_IN_FLIGHT, _PENDING):
            written = conn.execute(_WRITE_RESULT, {**values, "from_status": old})
            if changes.move_rows(old, status.value, written.scalars()):
                break
        apply(conn, changes, values["stamp"])
        return changes, self._counts.tell(conn, changes)

    async def end_chunk(self, workflow_id: str, reason: str) -> int:
        """Release the chunk's leases; items it left in flight fail with ``reason``:
        the saga's compensation when a step after ``begin_chunk`` failed.

        Returns:
            How many items were failed.
        """
        n, told = await transaction(self._engine, self._end_chunk, workflow_id, reason)
        told()
        return n

    def _end_chunk(
        self, conn: Connection, workflow_id: str, reason: str
    ) -> tuple[int, Callable[[], None]]:
        stamp = now()
        changes = Changes()
        fail_open_attempts(conn, items.c.workflow_id == workflow_id, reason)
        failed = conn.execute(
            update(items)
            .where(items.c.workflow_id == workflow_id, items.c.status == _IN_FLIGHT)
            .values(status=ItemStatus.FAILED.value, error=reason, updated_at=stamp)
            .returning(items.c.batch_id)
        )
        n = changes.move_rows(_IN_FLIGHT, ItemStatus.FAILED.value, failed.scalars())
        leases.release_holder(conn, workflow_id)
        apply(conn, changes, stamp)
        return n, self._counts.tell(conn, changes)

    async def record_outcomes(
        self,
        outcomes: Sequence[Outcome],
        release_leases_of: Sequence[str] = (),
        breaker: BreakerCount | None = None,
    ) -> BreakerSeen | None:
        """Write final statuses, one statement per distinct outcome (status, attempts,
        error) — usually one or two a chunk; items already terminal are left alone, so
        a repeated write changes nothing (an idempotent upsert). In the same
        transaction the items' attempts are closed (``attempts.close_attempts``), the
        key leases of the chunks in ``release_leases_of`` end, and
        ``breaker``'s count goes into its breaker, which is returned as it leaves it —
        unless every outcome was written before: a repeated write (an activity's
        retry after its report failed) does not count the breaker twice."""
        if not outcomes and not release_leases_of and breaker is None:
            return None
        state, told = await transaction(
            self._engine, self._record_outcomes, outcomes, release_leases_of, breaker
        )
        told()
        return state

    def _record_outcomes(
        self,
        conn: Connection,
        outcomes: Sequence[Outcome],
        release_leases_of: Sequence[str],
        breaker: BreakerCount | None,
    ) -> tuple[BreakerSeen | None, Callable[[], None]]:
        alike: defaultdict[tuple[str, int, str | None], list[int]] = defaultdict(list)
        for o in outcomes:
            alike[(o.status.value, o.attempts, o.error)].append(o.item_id)
        stamp = now()
        changes = Changes()
        changed = 0
        for (status, attempts, error), ids in alike.items():
            values = {
                "ids": ids,
                "outcome_status": status,
                "outcome_attempts": attempts,
                "outcome_error": error,
                "stamp": stamp,
            }
            # Items in flight, as a chunk leaves them; pending ones only if some
            # were neither (written before, or never begun).
            left = len(ids)
            for old in (_IN_FLIGHT, _PENDING):
                written = conn.execute(_WRITE_OUTCOME, {**values, "from_status": old})
                n = changes.move_rows(old, status, written.scalars())
                changed, left = changed + n, left - n
                if not left:
                    break
        close_attempts(conn, outcomes)
        if release_leases_of:
            leases.release_holders(conn, release_leases_of)
        repeated = bool(outcomes) and not changed
        state = None
        if breaker is not None:
            state = self._breakers.count_in(conn, breaker, repeated=repeated)
        apply(conn, changes, stamp)
        return state, self._counts.tell(conn, changes)

    async def close_batch(
        self, batch_id: str, stop: tuple[str, str] | None = None
    ) -> tuple[dict[str, int], int]:
        """Close the batch unless items are pending, in one write transaction.

        Items still in flight have no chunk left to finish them (the batch calls
        this with none running): they are marked failed with a reason, so every
        item ends terminal, and leases left behind are released. The batch row
        is locked first, so an upload to it either committed before (its items
        count as pending) or reopens it after.

        Args:
            stop: (batch status, reason) when the batch was cancelled or aborted:
                pending items are then cancelled with the reason, not left open.

        Returns:
            The counts by status and how many items are pending.
        """
        counts, pending, told = await transaction(self._engine, self._close_batch, batch_id, stop)
        told()
        return counts, pending

    def _close_batch(
        self, conn: Connection, batch_id: str, stop: tuple[str, str] | None
    ) -> tuple[dict[str, int], int, Callable[[], None]]:
        changes = Changes()
        stamp = now()
        conn.execute(select(batches.c.id).where(batches.c.id == batch_id).with_for_update())
        counts = CountRepository.read(conn, batch_id)
        if stop is not None and counts[_PENDING]:
            reason = f"batch stopped: {stop[1]}"
            self._move(conn, changes, batch_id, ItemStatus.CANCELLED, reason, stamp)
        elif counts[_PENDING]:
            return counts, counts[_PENDING], nothing
        if counts[_IN_FLIGHT]:
            reason = "its chunk workflow ended without recording an outcome"
            fail_open_attempts(conn, items.c.batch_id == batch_id, reason)
            self._move(conn, changes, batch_id, ItemStatus.FAILED, reason, stamp)
        leases.release_batch(conn, batch_id)
        apply(conn, changes, stamp)
        counts = CountRepository.read(conn, batch_id)
        summary: dict[str, Any] = {"counts": counts}
        if stop is not None:
            summary["reason"] = stop[1]
        conn.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values(
                status=stop[0] if stop else BatchStatus.COMPLETED,
                summary=summary,
                updated_at=stamp,
                finished_at=stamp,
            )
        )
        return counts, 0, self._counts.tell(conn, changes)

    @staticmethod
    def _move(
        conn: Connection,
        changes: Changes,
        batch_id: str,
        new: ItemStatus,
        reason: str,
        stamp: datetime,
    ) -> None:
        """End the batch's items of the open status the new one follows: pending ones
        cancelled, in-flight ones failed."""
        old = _PENDING if new is ItemStatus.CANCELLED else _IN_FLIGHT
        moved = conn.execute(
            update(items)
            .where(items.c.batch_id == batch_id, items.c.status == old)
            .values(status=new.value, error=reason, updated_at=stamp)
        )
        changes.move(batch_id, old, new.value, moved.rowcount or 0)

    async def redrive(
        self,
        batch_id: str,
        statuses: Sequence[ItemStatus] = (ItemStatus.FAILED,),
        error: str | None = None,
    ) -> int:
        """Make a finished batch's items in ``statuses`` (failed, by default; any of
        failed, cancelled and skipped) pending again, each with a new effect id (a
        downstream deduplicates by effect id: the old one would repeat the old answer).

        Args:
            error: only the items that ended with exactly this error (a failure reason).

        Returns:
            How many items were reset; the batch is running again when there were any.

        Raises:
            BatchConflictError: the batch has not finished.
        """
        return await transaction(self._engine, self._redrive, batch_id, statuses, error)

    @staticmethod
    def _redrive(
        conn: Connection, batch_id: str, statuses: Sequence[ItemStatus], error: str | None
    ) -> int:
        batch = conn.execute(
            select(batches.c.status, batches.c.redrives)
            .where(batches.c.id == batch_id)
            .with_for_update()
        ).first()
        if batch is None:
            raise BatchNotFoundError(f"no batch {batch_id!r}")
        if batch.status not in BatchStatus.FINISHED:
            raise BatchConflictError(
                f"batch {batch_id!r} is {batch.status}: only a finished batch can be redriven"
            )
        which = select(items.c.id, items.c.key, items.c.status).where(
            items.c.batch_id == batch_id, items.c.status.in_([s.value for s in statuses])
        )
        if error is not None:
            which = which.where(items.c.error == error)
        rows = list(conn.execute(which))
        if not rows:
            return 0
        changes = Changes()
        for r in rows:
            changes.move(batch_id, r.status, _PENDING)
        redrive = batch.redrives + 1
        stamp = now()
        conn.execute(
            update(items)
            .where(items.c.id == bindparam("item_id"))
            .values(
                status=ItemStatus.PENDING.value,
                effect_id=bindparam("new_effect_id"),
                attempts=0,
                error=None,
                result=None,
                workflow_id=None,
                updated_at=stamp,
            )
            .execution_options(synchronize_session=False),
            [
                {"item_id": r.id, "new_effect_id": effect_id_for(batch_id, r.key, redrive)}
                for r in rows
            ],
        )
        conn.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values(
                status=BatchStatus.OPEN,
                redrives=redrive,
                updated_at=stamp,
                finished_at=None,
                stop_requested_at=None,
            )
        )
        apply(conn, changes, stamp)
        return len(rows)

    async def failure_reasons(self, batch_id: str, limit: int = 20) -> list[tuple[str, str, int]]:
        """(status, error, items) of the batch's items that ended failed, skipped or
        cancelled, one per distinct error, largest first."""
        n = func.count().label("n")
        query = (
            select(items.c.status, items.c.error, n)
            .where(items.c.batch_id == batch_id, items.c.status.in_(_NOT_SUCCEEDED))
            .group_by(items.c.status, items.c.error)
            .order_by(n.desc(), items.c.status, items.c.error)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [(s, e or "", int(c)) for s, e, c in await conn.execute(query)]

    async def result_sources(self, batch_id: str) -> dict[str, int]:
        """Items of the batch by their result's ``source`` (where a step says its
        record came from), for items that have one."""
        source = items.c.result["source"].as_string()
        query = (
            select(source, func.count())
            .where(items.c.batch_id == batch_id, source.is_not(None))
            .group_by(source)
        )
        async with self._engine.connect() as conn:
            return {str(s): int(n) for s, n in await conn.execute(query)}

    async def counts(self, batch_id: str) -> dict[str, int]:
        """Items of the batch by status (every status present, zeros included)."""
        return (await self._counts.get(batch_id)).by_status

    async def page(
        self,
        batch_id: str,
        *,
        after: int = 0,
        limit: int = 50,
        status: str | None = None,
        key: str | None = None,
        error: str | None = None,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` items of the batch after item id ``after``, in id order.

        Args:
            status: only items in this status.
            key: only items whose key starts with this.
            error: only items that ended with exactly this error.
        """
        query = select(items).where(items.c.batch_id == batch_id, items.c.id > after)
        if status is not None:
            query = query.where(items.c.status == status)
        if error is not None:
            query = query.where(items.c.error == error)
        if key:
            query = query.where(items.c.key.startswith(key.strip(), autoescape=True))
        query = query.order_by(items.c.id).limit(limit)
        async with self._engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    async def stream(self, batch_id: str, page: int = 5000) -> AsyncIterator[dict[str, Any]]:
        """Every item of the batch in id order, read page by page."""
        after = 0
        while True:
            query = (
                select(items)
                .where(items.c.batch_id == batch_id, items.c.id > after)
                .order_by(items.c.id)
                .limit(page)
            )
            async with self._engine.connect() as conn:
                rows = [dict(r._mapping) for r in await conn.execute(query)]
            if not rows:
                return
            for row in rows:
                yield row
            after = rows[-1]["id"]
