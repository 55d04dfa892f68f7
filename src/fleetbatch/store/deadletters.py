"""Dead letters: bus messages no handler could process, kept for operators to list and replay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetbatch.store.batches import now
from fleetbatch.store.db import write_transaction
from fleetbatch.store.tables import dead_letters


@dataclass(frozen=True)
class DeadLetter:
    """One message the bus gave up on."""

    id: int
    subject: str
    payload: bytes
    error: str
    deliveries: int
    created_at: datetime
    replayed_at: datetime | None


class DeadLetterRepository:
    """Adds, lists and marks dead letters."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, subject: str, payload: bytes, error: str, deliveries: int) -> None:
        """Keep one message (the bus's dead-letter sink)."""
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                dead_letters.insert().values(
                    subject=subject,
                    payload=payload,
                    error=error,
                    deliveries=deliveries,
                    created_at=now(),
                )
            )

    async def count(self) -> int:
        """Dead letters not yet replayed."""
        query = select(func.count()).where(dead_letters.c.replayed_at.is_(None))
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def list(
        self, *, ids: Sequence[int] = (), include_replayed: bool = False, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters, oldest first: the given ``ids``, or all not yet replayed."""
        query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
        if ids:
            query = query.where(dead_letters.c.id.in_(ids))
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        async with self._engine.connect() as conn:
            return [DeadLetter(**r._mapping) for r in await conn.execute(query)]

    async def mark_replayed(self, ids: Sequence[int]) -> None:
        """Record that these were published again."""
        if not ids:
            return
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                update(dead_letters).where(dead_letters.c.id.in_(ids)).values(replayed_at=now())
            )
