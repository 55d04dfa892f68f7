"""Reads the JSON API and the web UI share: one batch in detail, a page of its items."""

from __future__ import annotations

from fleetbatch.api.context import ApiContext
from fleetbatch.api.schemas import (
    BatchDetail,
    BatchPublic,
    ItemHistoryPublic,
    ItemPage,
    ItemPublic,
    ProgressPublic,
)
from fleetbatch.pipelines import get_pipeline
from fleetbatch.services.items import item_history
from fleetbatch.services.progress import snapshot
from fleetbatch.workflows.ids import batch_workflow_id


async def batch_detail(context: ApiContext, batch_id: str) -> BatchDetail:
    """The batch with its live progress.

    Raises:
        BatchNotFoundError: no such batch.
    """
    batch = await context.store.batches.get(batch_id)
    snap = await snapshot(context.client, context.store, batch_id)
    workflow_id = batch_workflow_id(batch_id)
    return BatchDetail(
        **BatchPublic.model_validate(batch).model_dump(),
        progress=ProgressPublic.of(snap),
        workflow_id=workflow_id,
        temporal_url=context.temporal_url(workflow_id),
    )


async def item_page(
    context: ApiContext,
    batch_id: str,
    *,
    after: int = 0,
    limit: int = 50,
    status: str | None = None,
    key: str | None = None,
) -> ItemPage:
    """A page of the batch's items, filtered.

    Raises:
        BatchNotFoundError: no such batch.
    """
    batch = await context.store.batches.get(batch_id)
    if key:
        key = get_pipeline(batch.pipeline).normalise_key(key)
    rows = await context.store.items.page(
        batch_id, after=after, limit=limit + 1, status=status, key=key
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return ItemPage(
        items=[ItemPublic.of(r, context.temporal_url(r["workflow_id"])) for r in rows],
        next_after=rows[-1]["id"] if more else None,
    )


async def item_detail(context: ApiContext, batch_id: str, key: str) -> ItemHistoryPublic:
    """One item of the batch with its attempts.

    Raises:
        BatchNotFoundError: no such batch.
        ItemNotFoundError: the batch has no item ``key``.
    """
    history = await item_history(context.store, batch_id, key)
    return ItemHistoryPublic.of(history, context.temporal_url(history.item["workflow_id"]))
