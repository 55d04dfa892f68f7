"""Storing one uploaded file: all of it in one transaction, or nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetbatch.domain import ItemStatus
from fleetbatch.errors import BatchConflictError
from fleetbatch.intake import Accepted, Rejection
from fleetbatch.store.batches import BatchRepository, BatchStatus, NewBatch, now
from fleetbatch.store.counts import Changes, apply
from fleetbatch.store.db import write_transaction
from fleetbatch.store.item_intake import Duplicate, ItemIntake
from fleetbatch.store.tables import batches, items, rejections, uploads

FLUSH_ROWS = 1000
REPORT_LIMIT = 1000


@dataclass
class UploadResult:
    """What happened to one file."""

    batch_id: str
    upload_id: int
    pipeline: str
    label: str
    accepted: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    """The first ``REPORT_LIMIT`` rejections; all of them are in the store."""
    closed: bool = False
    """The batch has no item at all after this file (every row was rejected): it was
    closed at once, ``aborted`` with the reason, and takes no more files."""


STOPPED = (BatchStatus.CANCELLED, BatchStatus.ABORTED)

NO_VALID_ROWS = "no valid rows: every row of its file was rejected"
"""Why a batch whose first file had no valid row was closed at once."""


async def _has_items(conn: AsyncConnection, batch_id: str) -> bool:
    found = await conn.execute(select(items.c.id).where(items.c.batch_id == batch_id).limit(1))
    return found.first() is not None


class UploadWriter:
    """Writes a validated row stream for a batch, finding duplicates on the way."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def store(
        self,
        batch_id: str,
        new_batch: NewBatch,
        filename: str,
        rows: Iterable[Accepted | Rejection],
        key_name: str = "key",
    ) -> UploadResult:
        """Store the rows; if reading them raises, nothing at all is stored.

        Args:
            key_name: what an item's key is called in rejections (``user_id``, say).

        Raises:
            BatchConflictError: the batch exists with another pipeline or label.
            InputFileError: from ``rows``; the transaction is rolled back.
        """
        async with write_transaction(self._engine) as conn:
            await BatchRepository.create(conn, batch_id, new_batch)
            existing = await BatchRepository(self._engine).find(batch_id, conn)
            if existing is not None and (existing.pipeline, existing.label) != (
                new_batch.pipeline,
                new_batch.label,
            ):
                if existing.pipeline != new_batch.pipeline:
                    raise BatchConflictError(
                        f"batch {batch_id!r} is a {existing.pipeline} batch, "
                        f"not {new_batch.pipeline}"
                    )
                raise BatchConflictError(
                    f"batch {batch_id!r} runs {existing.label!r}, not {new_batch.label!r}"
                )
            if existing is not None and existing.status in STOPPED:
                raise BatchConflictError(
                    f"batch {batch_id!r} was {existing.status}; it takes no more files "
                    "(start a new batch)"
                )
            inserted = await conn.execute(
                uploads.insert()
                .values(
                    batch_id=batch_id,
                    filename=filename[:255],
                    accepted=0,
                    rejected=0,
                    created_at=now(),
                )
                .returning(uploads.c.id)
            )
            upload = UploadResult(
                batch_id, int(inserted.scalar_one()), new_batch.pipeline, new_batch.label
            )
            ingest = _Ingest(conn, upload, key_name)
            await ingest.consume(rows)
            result = ingest.result
            result.rejections.sort(key=lambda r: r.line)
            await conn.execute(
                update(uploads)
                .where(uploads.c.id == result.upload_id)
                .values(accepted=result.accepted, rejected=result.rejected)
            )
            if result.accepted:
                await conn.execute(
                    update(batches)
                    .where(batches.c.id == batch_id)
                    .values(status=BatchStatus.OPEN, updated_at=now(), finished_at=None)
                )
                # Last, and once per file: a batch's counts row stays free for its
                # running chunks while a long upload to it is still going in.
                added = Changes()
                added.add(batch_id, ItemStatus.PENDING.value, result.accepted)
                await conn.run_sync(apply, added, now())
            elif not await _has_items(conn, batch_id):
                # Nothing would ever run: an open batch would wait forever.
                result.closed = True
                stamp = now()
                await conn.execute(
                    update(batches)
                    .where(batches.c.id == batch_id)
                    .values(
                        status=BatchStatus.ABORTED,
                        summary={"reason": NO_VALID_ROWS},
                        updated_at=stamp,
                        finished_at=stamp,
                    )
                )
        return result

    async def stream_rejections(
        self, batch_id: str, page: int = 5000
    ) -> AsyncIterator[dict[str, Any]]:
        """Every rejected row of the batch, by upload and line."""
        order = (rejections.c.upload_id, rejections.c.line, rejections.c.id)
        after: tuple[int, int, int] | None = None
        while True:
            query = select(rejections).where(rejections.c.batch_id == batch_id)
            if after is not None:
                query = query.where(tuple_(*order) > tuple_(*after))
            async with self._engine.connect() as conn:
                rows = [
                    dict(r._mapping) for r in await conn.execute(query.order_by(*order).limit(page))
                ]
            if not rows:
                return
            for row in rows:
                yield row
            last = rows[-1]
            after = (last["upload_id"], last["line"], last["id"])


class _Ingest:
    """One file's rows going into one open transaction, flushed in bulk.

    A flush of items runs while the next one is read and validated: the database
    and the parser each have a core of their own. At most one statement is in
    flight on the connection; a flush's duplicates are reported when it settles.
    """

    def __init__(self, conn: AsyncConnection, result: UploadResult, key_name: str) -> None:
        self.conn = conn
        self.result = result
        self._key_name = key_name
        self._accepted: list[Accepted] = []
        self._rejected: list[Rejection] = []
        self._items = ItemIntake(conn, result.batch_id, result.upload_id)
        self._in_flight: asyncio.Task[tuple[int, list[Duplicate]]] | None = None

    async def consume(self, rows: Iterable[Accepted | Rejection]) -> None:
        try:
            for row in rows:
                if isinstance(row, Rejection):
                    self._reject(row)
                else:
                    self._accepted.append(row)
                if len(self._accepted) >= FLUSH_ROWS:
                    await self._flush_items()
                if len(self._rejected) >= FLUSH_ROWS:
                    await self._flush_rejections()
            await self._flush_items()
            await self._settle()
            await self._flush_rejections()
        finally:
            # A file refused midway (or a failed flush): the statement in flight ends
            # before the caller rolls the transaction back on the same connection.
            if self._in_flight is not None:
                await asyncio.gather(self._in_flight, return_exceptions=True)

    def _reject(self, rejection: Rejection) -> None:
        self.result.rejected += 1
        self._rejected.append(rejection)
        if len(self.result.rejections) < REPORT_LIMIT:
            self.result.rejections.append(rejection)

    async def _flush_items(self) -> None:
        """Start inserting a flush's rows, once the one before has settled."""
        rows, self._accepted = self._accepted, []
        await self._settle()
        if rows:
            self._in_flight = asyncio.ensure_future(self._items.add(rows))
            await asyncio.sleep(0)  # let it reach the database before reading on

    async def _settle(self) -> None:
        """Wait for the flush in flight; the database left out each key the batch
        has, and said where its item came from."""
        task, self._in_flight = self._in_flight, None
        if task is None:
            return
        result = self.result
        inserted, left_out = await task
        result.accepted += inserted
        for row in left_out:
            if not row.upload_id:
                reason = f"duplicate {self._key_name}, added by a concurrent upload"
            else:
                where = "" if row.upload_id == result.upload_id else f" of upload {row.upload_id}"
                reason = f"duplicate {self._key_name}, first seen on line {row.first_line}{where}"
            self._reject(Rejection(row.line, row.key, reason))

    async def _flush_rejections(self) -> None:
        await self._settle()  # its connection is free, and its duplicates join these
        rows, self._rejected = self._rejected, []
        await self._items.add_rejections(rows)
