"""The batch list: each batch with the status an operator means (``paused`` for a
running batch that waits for ``resume``), its progress, counts by status, rate and
duration. Counts are the store's; status and rate come through the same progress
snapshot as ``status`` and the batch page.

The CLI's ``list`` reads it; the web UI's and the API's batch lists are meant to.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client

from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.services.progress import Snapshot, snapshot
from fleetbatch.store import BatchRecord, BatchStatus, Store
from fleetbatch.store.batches import now

PAUSED = "paused"
WORKFLOW_ENDS = ("failed", "terminated", "timed_out", "canceled", "not started")
"""What a batch's status is when its workflow ended (or never started) without
closing the batch in the store."""
LISTED_STATUSES = (
    BatchStatus.OPEN,
    BatchStatus.RUNNING,
    PAUSED,
    *BatchStatus.FINISHED,
    *WORKFLOW_ENDS,
)
"""Every status the list shows, and so every status it filters by."""
LIVE_SCAN = 1000
"""At most this many open and running batches are read to filter by a status only
the workflow knows (``paused``, ``running`` without the paused ones, a workflow's
end). Live batches are few; finished ones are filtered by the store itself."""
_SNAPSHOTS_AT_ONCE = 16


@dataclass(frozen=True)
class BatchSummary:
    """One batch in the list."""

    id: str
    pipeline: str
    label: str
    status: str
    """One of ``LISTED_STATUSES``: the store's, but ``paused`` for a running batch
    waiting for ``resume`` and the workflow's end (``failed``, ``terminated``…) when
    it ended without closing the batch."""
    total: int
    counts: dict[str, int]
    """Items by status, every status present."""
    items_per_second: float
    stop_reason: str | None
    """Why it was cancelled or aborted."""
    created_at: datetime
    finished_at: datetime | None
    duration_seconds: float
    """From creation to its end, or to now while it is not finished."""

    @property
    def done(self) -> int:
        """Items in a terminal status."""
        return sum(self.counts[s.value] for s in TERMINAL)

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / self.total, 1) if self.total else 0.0


def listed_status(batch: BatchRecord, snap: Snapshot) -> str:
    """The status the list shows for ``batch``, given its snapshot."""
    if snap.waits_for_resume:
        return PAUSED
    if snap.settled:
        return snap.phase  # the store's final status, or how the workflow ended
    return batch.status


def summarise(batch: BatchRecord, snap: Snapshot) -> BatchSummary:
    """The list's row of ``batch`` from its snapshot (whose counts are the store's)."""
    end = batch.finished_at or now()
    counts = snap.counts
    return BatchSummary(
        id=batch.id,
        pipeline=batch.pipeline,
        label=batch.label,
        status=listed_status(batch, snap),
        total=sum(counts.values()),
        counts={s.value: counts.get(s.value, 0) for s in ItemStatus},
        items_per_second=snap.items_per_second,
        stop_reason=snap.stop_reason,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
        duration_seconds=max(0.0, (end - batch.created_at).total_seconds()),
    )


async def list_batches(
    client: Client,
    store: Store,
    *,
    status: str | None = None,
    label: str | None = None,
    pipeline: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[BatchSummary], int]:
    """A page of batches, newest first, with how many match the filters in all.

    ``status`` is one of ``LISTED_STATUSES``; ``label`` is what the batch does (its
    command type, or its pipeline's name).
    """
    if status is None or status in BatchStatus.FINISHED:
        records, total = await store.batches.list(
            limit, offset, status=status, label=label, pipeline=pipeline
        )
        return await _summaries(client, store, records), total
    # Paused, running-and-not-paused, or a workflow's end: the store holds these as
    # open or running, the snapshot tells which they are.
    live: list[BatchRecord] = []
    for stored in (BatchStatus.OPEN, BatchStatus.RUNNING):
        found, _ = await store.batches.list(
            LIVE_SCAN, status=stored, label=label, pipeline=pipeline
        )
        live += found
    live.sort(key=lambda b: (b.created_at, b.id), reverse=True)
    matching = [s for s in await _summaries(client, store, live) if s.status == status]
    return matching[offset : offset + limit], len(matching)


async def _summaries(
    client: Client, store: Store, records: list[BatchRecord]
) -> list[BatchSummary]:
    gate = asyncio.Semaphore(_SNAPSHOTS_AT_ONCE)

    async def one(batch: BatchRecord) -> BatchSummary:
        async with gate:
            snap = await snapshot(client, store, batch.id)
            return summarise(batch, snap)

    return list(await asyncio.gather(*(one(b) for b in records)))
