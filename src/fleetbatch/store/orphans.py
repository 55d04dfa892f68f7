"""Orphan responses: answers to an item's effect whose chunk workflow was gone or finished.

The downstream acted, but nobody was waiting: the item's recorded outcome may
disagree with what happened, so an operator must be able to see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetbatch.store.batches import now
from fleetbatch.store.db import insert_ignoring_conflicts, write_transaction
from fleetbatch.store.tables import orphan_responses


@dataclass(frozen=True)
class Orphan:
    """One answer nobody was waiting for."""

    effect_id: str
    workflow_id: str
    batch_id: str
    item_key: str
    ok: bool
    error: str | None
    received_at: datetime | None = None


class OrphanRepository:
    """Records orphan responses once each (a redelivered one is not counted twice)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, orphans: Sequence[Orphan]) -> None:
        """Record ``orphans`` in one statement."""
        if not orphans:
            return
        stamp = now()
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                insert_ignoring_conflicts(conn, orphan_responses),
                [
                    {
                        "effect_id": o.effect_id,
                        "workflow_id": o.workflow_id,
                        "batch_id": o.batch_id,
                        "item_key": o.item_key,
                        "ok": o.ok,
                        "error": o.error,
                        "received_at": stamp,
                    }
                    for o in orphans
                ],
            )

    async def list(self, batch_id: str | None = None, limit: int = 100) -> list[Orphan]:
        """Orphans, oldest first, of one batch or of all."""
        query = select(
            orphan_responses.c.effect_id,
            orphan_responses.c.workflow_id,
            orphan_responses.c.batch_id,
            orphan_responses.c.item_key,
            orphan_responses.c.ok,
            orphan_responses.c.error,
            orphan_responses.c.received_at,
        ).order_by(orphan_responses.c.id)
        if batch_id is not None:
            query = query.where(orphan_responses.c.batch_id == batch_id)
        async with self._engine.connect() as conn:
            return [Orphan(**r._mapping) for r in await conn.execute(query.limit(limit))]
