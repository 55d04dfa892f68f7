"""Leases on item keys: no two chunk workflows, of any batches, work on one key at once.

A chunk takes the leases of its keys in the same transaction that puts its
items in flight, and gives them back when its items are terminal. A key held
elsewhere stays pending in its own batch until the holder lets go.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BindParameter, Connection, Insert, Select, bindparam, delete, literal, select

from fleetbatch.store.db import insert_ignoring_conflicts
from fleetbatch.store.tables import item_leases


def acquire_from(conn: Connection, keys: Select[tuple[str]]) -> Insert:
    """Take every free lease among the keys ``keys`` selects, in one statement inside
    the database (safe to repeat: leases a holder has stay its own). Parameters:
    ``lease_batch_id``, ``lease_holder``, ``lease_acquired_at``.

    Built once per dialect and query by its caller: the statement's cache key is
    then computed once, not on every chunk.
    """
    rows = select(
        keys.subquery().c[0],
        bindparam("lease_batch_id", type_=item_leases.c.batch_id.type),
        bindparam("lease_holder", type_=item_leases.c.holder.type),
        bindparam("lease_acquired_at", type_=item_leases.c.acquired_at.type),
    )
    columns = ["key", "batch_id", "holder", "acquired_at"]
    # WHERE true: SQLite would read ON CONFLICT as a join's ON clause otherwise.
    return insert_ignoring_conflicts(conn, item_leases).from_select(
        columns, rows.where(literal(True))
    )


def held_by(holder: BindParameter[str]) -> Select[tuple[str]]:
    """The keys ``holder`` has leases on (a subquery)."""
    return select(item_leases.c.key).where(item_leases.c.holder == holder)


def release_holder(conn: Connection, holder: str) -> int:
    """Give back every lease ``holder`` has; returns how many."""
    return release_holders(conn, [holder])


_RELEASE_HOLDERS = delete(item_leases).where(
    item_leases.c.holder.in_(bindparam("holders", expanding=True))
)


def release_holders(conn: Connection, holders: Sequence[str]) -> int:
    """Give back every lease of each of ``holders``, in one statement; returns how many."""
    result = conn.execute(_RELEASE_HOLDERS, {"holders": list(holders)})
    return result.rowcount or 0


def release_batch(conn: Connection, batch_id: str) -> int:
    """Give back every lease the batch's chunks still have (a chunk that never
    ended, e.g. terminated by an operator); returns how many."""
    result = conn.execute(delete(item_leases).where(item_leases.c.batch_id == batch_id))
    return result.rowcount or 0
