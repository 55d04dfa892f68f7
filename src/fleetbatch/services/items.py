"""One item in detail, as an operator looks it up: by batch and key as typed."""

from __future__ import annotations

from fleetbatch.pipelines import get_pipeline
from fleetbatch.store import ItemHistory, Store


async def item_history(store: Store, batch_id: str, key: str) -> ItemHistory:
    """The batch's item ``key`` with its attempts; the key is read as the batch's
    pipeline reads keys (a VIN in any case).

    Raises:
        BatchNotFoundError: no such batch.
        ItemNotFoundError: the batch has no such item.
    """
    batch = await store.batches.get(batch_id)
    return await store.attempts.for_item(batch_id, get_pipeline(batch.pipeline).normalise_key(key))
