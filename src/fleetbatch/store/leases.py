"""Per-VIN leases: no two chunk workflows, of any batches, command a vehicle at once.

A chunk takes the leases of its VINs in the same transaction that puts its
items in flight, and gives them back when its items are terminal. A VIN held
elsewhere stays pending in its own batch until the holder lets go.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from fleetbatch.store.batches import now
from fleetbatch.store.db import insert_ignoring_conflicts
from fleetbatch.store.tables import vin_leases


async def acquire(
    conn: AsyncConnection, batch_id: str, holder: str, vins: Sequence[str]
) -> set[str]:
    """Take every free lease among ``vins`` for ``holder``; returns the VINs it holds
    (also those it took before: safe to repeat)."""
    if vins:
        stamp = now()
        await conn.execute(
            insert_ignoring_conflicts(conn, vin_leases),
            [
                {"vin": v, "batch_id": batch_id, "holder": holder, "acquired_at": stamp}
                for v in vins
            ],
        )
    held = await conn.execute(select(vin_leases.c.vin).where(vin_leases.c.holder == holder))
    return set(held.scalars())


async def release_holder(conn: AsyncConnection, holder: str) -> int:
    """Give back every lease ``holder`` has; returns how many."""
    return await release_holders(conn, [holder])


async def release_holders(conn: AsyncConnection, holders: Sequence[str]) -> int:
    """Give back every lease of each of ``holders``, in one statement; returns how many."""
    result = await conn.execute(delete(vin_leases).where(vin_leases.c.holder.in_(holders)))
    return result.rowcount or 0


async def release_batch(conn: AsyncConnection, batch_id: str) -> int:
    """Give back every lease the batch's chunks still have (a chunk that never
    ended, e.g. terminated by an operator); returns how many."""
    result = await conn.execute(delete(vin_leases).where(vin_leases.c.batch_id == batch_id))
    return result.rowcount or 0
