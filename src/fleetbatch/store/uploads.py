"""Storing one uploaded file: all of it in one transaction, or nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fleetbatch.errors import BatchConflictError
from fleetbatch.intake import Accepted, Rejection
from fleetbatch.store.batches import BatchRepository, BatchStatus, NewBatch, now
from fleetbatch.store.db import write_transaction
from fleetbatch.store.items import ItemRepository
from fleetbatch.store.tables import batches, rejections, uploads

FLUSH_ROWS = 1000
REPORT_LIMIT = 1000


@dataclass
class UploadResult:
    """What happened to one file."""

    batch_id: str
    upload_id: int
    command: str
    accepted: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    """The first ``REPORT_LIMIT`` rejections; all of them are in the store."""


STOPPED = (BatchStatus.CANCELLED, BatchStatus.ABORTED)


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
    ) -> UploadResult:
        """Store the rows; if reading them raises, nothing at all is stored.

        Raises:
            BatchConflictError: the batch exists with another command.
            InputFileError: from ``rows``; the transaction is rolled back.
        """
        async with write_transaction(self._engine) as conn:
            await BatchRepository.create(conn, batch_id, new_batch)
            existing = await BatchRepository(self._engine).find(batch_id, conn)
            if existing is not None and existing.command != new_batch.command:
                raise BatchConflictError(
                    f"batch {batch_id!r} runs command {existing.command!r}, "
                    f"not {new_batch.command!r}"
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
            ingest = _Ingest(
                conn, UploadResult(batch_id, int(inserted.scalar_one()), new_batch.command)
            )
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
    """One file's rows going into one open transaction, flushed in bulk."""

    def __init__(self, conn: AsyncConnection, result: UploadResult) -> None:
        self.conn = conn
        self.result = result
        self._accepted: list[Accepted] = []
        self._rejected: list[Rejection] = []

    async def consume(self, rows: Iterable[Accepted | Rejection]) -> None:
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
        await self._flush_rejections()

    def _reject(self, rejection: Rejection) -> None:
        self.result.rejected += 1
        self._rejected.append(rejection)
        if len(self.result.rejections) < REPORT_LIMIT:
            self.result.rejections.append(rejection)

    async def _flush_items(self) -> None:
        rows, self._accepted = self._accepted, []
        if not rows:
            return
        result = self.result
        known = await ItemRepository.existing_lines(
            self.conn, result.batch_id, [r.vin for r in rows]
        )
        fresh: list[tuple[int, str]] = []
        for row in rows:
            first = known.get(row.vin)
            if first is None:
                known[row.vin] = (result.upload_id, row.line)
                fresh.append((row.line, row.vin))
                continue
            where = "" if first[0] == result.upload_id else f" of upload {first[0]}"
            reason = f"duplicate VIN, first seen on line {first[1]}{where}"
            self._reject(Rejection(row.line, row.vin, reason))
        stored = await ItemRepository.insert(self.conn, result.batch_id, result.upload_id, fresh)
        for line, vin in fresh:
            if vin not in stored:
                self._reject(Rejection(line, vin, "duplicate VIN, added by a concurrent upload"))
        result.accepted += len(stored)

    async def _flush_rejections(self) -> None:
        rows, self._rejected = self._rejected, []
        if not rows:
            return
        await self.conn.execute(
            rejections.insert(),
            [
                {
                    "batch_id": self.result.batch_id,
                    "upload_id": self.result.upload_id,
                    "line": r.line,
                    "value": r.value[:100],
                    "reason": r.reason[:200],
                }
                for r in rows
            ],
        )
