"""Batch rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetbatch.errors import BatchNotFoundError
from fleetbatch.store.db import insert_ignoring_conflicts, transaction, write_transaction
from fleetbatch.store.tables import batches


class BatchStatus:
    """Batch lifecycle as the store records it."""

    OPEN = "open"
    """Files stored, workflow not yet confirmed running."""
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ABORTED = "aborted"
    """Stopped because failures exceeded the tolerated share."""

    FINISHED = (COMPLETED, CANCELLED, ABORTED)


@dataclass(frozen=True)
class BatchRecord:
    """A batch as stored."""

    id: str
    pipeline: str
    label: str
    """What the batch does, in a word, as its pipeline names it (for lists and filters)."""
    options: dict[str, Any]
    """The pipeline's options, as given at submit."""
    status: str
    chunk_size: int
    max_in_flight: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any] | None
    priority: float = 1.0
    """Fairness weight: concurrent batches sharing a rate share it by priority."""
    max_failures: str | None = None
    """Tolerated failures, ``"5%"`` of the batch's items or a count; None tolerates all."""
    redrives: int = 0
    stop_requested_at: datetime | None = None
    """When a cancel or an abort was accepted: from then on nothing is published."""
    last_published_at: datetime | None = None
    """When the batch's last publish began (a step's effect on a downstream)."""
    rollout: dict[str, Any] | None = None
    """Its waves and gates (``domain.rollout.Rollout`` as a dict); None: all at once."""


@dataclass(frozen=True)
class NewBatch:
    """Settings for a batch the upload creates if it does not exist."""

    pipeline: str
    label: str
    options: dict[str, Any]
    chunk_size: int
    max_in_flight: int
    priority: float = 1.0
    max_failures: str | None = None
    rollout: dict[str, Any] | None = None


def now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


_NOTE_PUBLISH = (
    update(batches)
    .where(batches.c.id == bindparam("publish_batch_id"), batches.c.stop_requested_at.is_(None))
    .values(last_published_at=bindparam("publish_stamp"))
)


def _note_publish(conn: Connection, params: dict[str, Any]) -> bool:
    return bool(conn.execute(_NOTE_PUBLISH, params).rowcount)


class BatchRepository:
    """Reads and writes of batch rows."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, batch_id: str) -> BatchRecord:
        """The batch, or BatchNotFoundError."""
        found = await self.find(batch_id)
        if found is None:
            raise BatchNotFoundError(f"no batch {batch_id!r}")
        return found

    async def find(self, batch_id: str, conn: AsyncConnection | None = None) -> BatchRecord | None:
        """The batch, or None."""
        query = select(batches).where(batches.c.id == batch_id)
        if conn is not None:
            row = (await conn.execute(query)).first()
        else:
            async with self._engine.connect() as own:
                row = (await own.execute(query)).first()
        return None if row is None else BatchRecord(**row._mapping)

    async def list(
        self,
        limit: int = 50,
        offset: int = 0,
        *,
        status: str | None = None,
        label: str | None = None,
        pipeline: str | None = None,
    ) -> tuple[list[BatchRecord], int]:
        """A page of batches, newest first, with how many match the filters in all."""
        where = []
        if status is not None:
            where.append(batches.c.status == status)
        if label is not None:
            where.append(batches.c.label == label)
        if pipeline is not None:
            where.append(batches.c.pipeline == pipeline)
        query = (
            select(batches)
            .where(*where)
            .order_by(batches.c.created_at.desc(), batches.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._engine.connect() as conn:
            total = (
                await conn.execute(select(func.count()).select_from(batches).where(*where))
            ).scalar_one()
            return [BatchRecord(**r._mapping) for r in await conn.execute(query)], int(total)

    @staticmethod
    async def create(conn: AsyncConnection, batch_id: str, new: NewBatch) -> None:
        """Insert a new open batch inside the caller's transaction (no-op if it exists)."""
        stamp = now()
        await conn.execute(
            insert_ignoring_conflicts(conn, batches).values(
                id=batch_id,
                pipeline=new.pipeline,
                label=new.label,
                options=new.options,
                status=BatchStatus.OPEN,
                chunk_size=new.chunk_size,
                max_in_flight=new.max_in_flight,
                priority=new.priority,
                max_failures=new.max_failures,
                rollout=new.rollout,
                created_at=stamp,
                updated_at=stamp,
            )
        )

    async def request_stop(self, batch_id: str) -> datetime | None:
        """Record that the batch is stopping (cancel, abort), once: every publish checks
        it first (``note_publish``), so nothing is published for the batch after this
        commits. Returns when the batch's last publish began, as of the stop."""
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.stop_requested_at.is_(None))
                .values(stop_requested_at=now())
            )
            found = await conn.execute(
                select(batches.c.last_published_at).where(batches.c.id == batch_id)
            )
            return found.scalar_one_or_none()

    async def note_publish(self, batch_id: str) -> bool:
        """A publish for the batch begins: True (and the time noted) unless the batch
        was stopped. One statement, so a stop either came first or waits for it."""
        params = {"publish_batch_id": batch_id, "publish_stamp": now()}
        return await transaction(self._engine, _note_publish, params)

    async def set_settings(
        self, batch_id: str, *, max_in_flight: int | None, max_failures: str | None
    ) -> None:
        """Keep a running batch's changed window and tolerance (``"off"``: none) for
        the runs that follow (late files, redrives)."""
        values: dict[str, Any] = {"updated_at": now()}
        if max_in_flight is not None:
            values["max_in_flight"] = max_in_flight
        if max_failures is not None:
            values["max_failures"] = None if max_failures == "off" else max_failures
        async with write_transaction(self._engine) as conn:
            await conn.execute(update(batches).where(batches.c.id == batch_id).values(**values))

    async def set_status(
        self,
        batch_id: str,
        status: str,
        summary: dict[str, Any] | None = None,
        *,
        only_from: str | None = None,
    ) -> None:
        """Move the batch to ``status`` (only from ``only_from``, when given);
        a summary marks it finished."""
        values: dict[str, Any] = {"status": status, "updated_at": now()}
        if summary is not None:
            values |= {"summary": summary, "finished_at": now()}
        where = batches.c.id == batch_id
        if only_from is not None:
            where = where & (batches.c.status == only_from)
        async with write_transaction(self._engine) as conn:
            await conn.execute(update(batches).where(where).values(**values))
