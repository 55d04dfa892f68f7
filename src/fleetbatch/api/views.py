"""Reads the JSON API and the web UI share: one batch in detail, a page of its items,
a page of batches with their progress."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fleetbatch.api import chart
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
from fleetbatch.services.progress import Snapshot, snapshot
from fleetbatch.store import BatchRecord
from fleetbatch.store.batches import now
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
    error: str | None = None,
) -> ItemPage:
    """A page of the batch's items, filtered (``error``: exactly this error text).

    Raises:
        BatchNotFoundError: no such batch.
    """
    batch = await context.store.batches.get(batch_id)
    if key:
        key = get_pipeline(batch.pipeline).normalise_key(key)
    rows = await context.store.items.page(
        batch_id, after=after, limit=limit + 1, status=status, key=key, error=error or None
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return ItemPage(
        items=[ItemPublic.of(r, context.temporal_url(r["workflow_id"])) for r in rows],
        next_after=rows[-1]["id"] if more else None,
    )


@dataclass(frozen=True)
class Reason:
    status: str
    error: str
    n: int


@dataclass(frozen=True)
class BatchRow:
    """A batch in the list: as stored, with its live progress."""

    batch: BatchPublic
    progress: ProgressPublic

    @property
    def shown_status(self) -> str:
        """The store's status, but ``paused`` for a running batch that waits for resume
        (not one that was paused and is now stopping or finishing)."""
        return "paused" if self.progress.phase == "paused" else self.batch.status

    @property
    def duration_seconds(self) -> float:
        """From creation to the end, or to now while it runs."""
        end = self.batch.finished_at or now()
        return max(0.0, (end - self.batch.created_at).total_seconds())


LIST_READS_AT_ONCE = 8
"""Snapshots of a list page read side by side: a few, not a page's worth of connections."""


async def batch_rows(context: ApiContext, found: list[BatchRecord]) -> list[BatchRow]:
    """The batches with their progress (a running one's pause from its workflow)."""
    gate = asyncio.Semaphore(LIST_READS_AT_ONCE)

    async def read(batch_id: str) -> Snapshot:
        async with gate:
            return await snapshot(context.client, context.store, batch_id)

    snaps = await asyncio.gather(*(read(b.id) for b in found))
    return [
        BatchRow(BatchPublic.model_validate(b), ProgressPublic.of(s))
        for b, s in zip(found, snaps, strict=True)
    ]


async def failure_reasons(context: ApiContext, batch_id: str, limit: int = 20) -> list[Reason]:
    """The batch's unsuccessful items by status and exact error, largest first."""
    return [Reason(*r) for r in await context.store.items.failure_reasons(batch_id, limit)]


async def timeline_chart(context: ApiContext, batch_id: str) -> chart.Chart | None:
    """The chart of the batch's settled items over time; None before any settled."""
    return chart.layout(await context.store.counts.timeline(batch_id))


async def item_detail(context: ApiContext, batch_id: str, key: str) -> ItemHistoryPublic:
    """One item of the batch with its attempts.

    Raises:
        BatchNotFoundError: no such batch.
        ItemNotFoundError: the batch has no item ``key``.
    """
    history = await item_history(context.store, batch_id, key)
    return ItemHistoryPublic.of(history, context.temporal_url(history.item["workflow_id"]))
