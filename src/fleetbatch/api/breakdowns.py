"""A batch's items broken down for its page: failures by reason, settled items over time.

Both are GROUP BY reads of the items table, bounded by the number of distinct
reasons and of 10-second buckets, never by the number of items sent back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, cast, func, select

from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.store import Store
from fleetbatch.store.tables import items

BUCKET_SECONDS = 10
Reason = tuple[str, str, int]
"""``(status, error, n)``."""
Bucket = tuple[datetime, str, int]
"""``(start, status, n)``: ``n`` items reached ``status`` in the bucket from ``start``."""
_SETTLED = [s.value for s in TERMINAL]


async def failure_reasons(store: Store, batch_id: str, limit: int = 20) -> list[Reason]:
    """Items that did not succeed, by status and exact error, largest first."""
    n = func.count().label("n")
    query = (
        select(items.c.status, items.c.error, n)
        .where(
            items.c.batch_id == batch_id,
            items.c.status.in_([s for s in _SETTLED if s != ItemStatus.SUCCEEDED.value]),
            items.c.error.is_not(None),
        )
        .group_by(items.c.status, items.c.error)
        .order_by(n.desc(), items.c.status, items.c.error)
        .limit(limit)
    )
    async with store.engine.connect() as conn:
        return [(str(s), str(e), int(c)) for s, e, c in await conn.execute(query)]


def _epoch_bucket(dialect: str) -> Any:
    """The bucket's number: whole seconds since the epoch over ``BUCKET_SECONDS``."""
    if dialect == "sqlite":
        seconds = cast(func.strftime("%s", items.c.updated_at), Integer)
        return (seconds // BUCKET_SECONDS).label("bucket")
    epoch = func.extract("epoch", items.c.updated_at)
    return cast(func.floor(epoch / BUCKET_SECONDS), Integer).label("bucket")


async def timeline(store: Store, batch_id: str) -> list[Bucket]:
    """Settled items by the 10-second bucket of their last change and their status."""
    bucket = _epoch_bucket(store.engine.dialect.name)
    query = (
        select(bucket, items.c.status, func.count())
        .where(items.c.batch_id == batch_id, items.c.status.in_(_SETTLED))
        .group_by(bucket, items.c.status)
        .order_by(bucket)
    )
    async with store.engine.connect() as conn:
        return [
            (datetime.fromtimestamp(int(b) * BUCKET_SECONDS, UTC), str(s), int(n))
            for b, s, n in await conn.execute(query)
        ]


async def page_with_error(
    store: Store,
    batch_id: str,
    error: str,
    *,
    after: int = 0,
    limit: int = 50,
    status: str | None = None,
    key: str | None = None,
) -> list[dict[str, Any]]:
    """As ``store.items.page``, only items whose error is exactly ``error``."""
    query = select(items).where(
        items.c.batch_id == batch_id, items.c.id > after, items.c.error == error
    )
    if status is not None:
        query = query.where(items.c.status == status)
    if key:
        query = query.where(items.c.key.startswith(key.strip(), autoescape=True))
    async with store.engine.connect() as conn:
        rows = await conn.execute(query.order_by(items.c.id).limit(limit))
        return [dict(r._mapping) for r in rows]
