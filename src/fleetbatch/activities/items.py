"""Item activities: paging, claiming and recording a chunk, closing a batch."""

from __future__ import annotations

from dataclasses import replace

from temporalio import activity
from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch import metrics
from fleetbatch.activities.breaker import breaker_gauge
from fleetbatch.activities.types import (
    BEGIN_CHUNK,
    CHUNK_DONE_SIGNAL,
    END_CHUNK,
    FINISH_BATCH,
    INVALID_INPUT,
    NEXT_CHUNKS,
    RECORD_OUTCOMES,
    STOP_BATCH,
    BeginChunkInput,
    BeginChunkResult,
    ChunkResult,
    EndChunkInput,
    FinishBatchInput,
    FinishBatchResult,
    ItemColumns,
    NextChunksInput,
    NextChunksResult,
    RecordOutcomesInput,
    StopBatchInput,
)
from fleetbatch.domain import TERMINAL, Outcome
from fleetbatch.keys import KeyHasher
from fleetbatch.pipelines import get_pipeline
from fleetbatch.store import Store
from fleetbatch.store.counts import CompletedListener


def checked_outcomes(params: RecordOutcomesInput) -> list[Outcome]:
    """The outcomes, each terminal.

    Raises:
        ApplicationError: non-retryable ``InvalidInput``: an unknown or non-terminal
            status, or columns of different lengths.
    """
    try:
        outcomes = params.outcomes()
    except ValueError as exc:  # an unknown status, or columns of different lengths
        raise ApplicationError(
            f"bad outcomes: {exc}", type=INVALID_INPUT, non_retryable=True
        ) from None
    wrong = [o for o in outcomes if o.status not in TERMINAL]
    if wrong:
        raise ApplicationError(
            f"outcome for item {wrong[0].item_id} is not terminal: {wrong[0].status}",
            type=INVALID_INPUT,
            non_retryable=True,
        )
    return outcomes


def count_completions(meter: MetricMeter) -> CompletedListener:
    """``fleetbatch_items_total`` from the store's writes: each item once, when its
    terminal status commits (a retried write changes nothing and counts nothing)."""
    counter = meter.create_counter(metrics.ITEMS, "items that reached a terminal status")

    def count(pipeline: str, label: str, status: str, n: int) -> None:
        counter.add(n, {**get_pipeline(pipeline).metric_labels(label), "status": status})

    return count


class ItemActivities:
    """Store-backed activities; each call is one or two bulk statements."""

    def __init__(self, store: Store, client: Client, hasher: KeyHasher | None = None) -> None:
        self._store = store
        self._client = client
        self._hasher = hasher

    @activity.defn(name=NEXT_CHUNKS)
    async def next_chunks(self, params: NextChunksInput) -> NextChunksResult:
        """The next pending items of the batch, grouped into chunks."""
        if params.chunk_size < 1 or params.max_chunks < 1 or (params.max_items or 1) < 1:
            raise ApplicationError(
                f"chunk_size, max_chunks and max_items must be positive, got "
                f"{params.chunk_size}, {params.max_chunks} and {params.max_items}",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        chunks = await self._store.items.next_chunks(
            params.batch_id,
            params.after_id,
            params.chunk_size,
            params.max_chunks,
            max_items=params.max_items,
        )
        return NextChunksResult(chunks)

    @activity.defn(name=BEGIN_CHUNK)
    async def begin_chunk(self, params: BeginChunkInput) -> BeginChunkResult:
        """Mark the chunk's items in flight and return them."""
        if params.chunk.first_id > params.chunk.last_id:
            raise ApplicationError(
                f"chunk {params.chunk.first_id}..{params.chunk.last_id} is empty",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        refs, blocked = await self._store.items.begin_chunk(
            params.batch_id, params.chunk, params.workflow_id, lease=params.lease
        )
        columns = ItemColumns.of(refs)
        hashes = None if self._hasher is None else self._hasher.hashes(columns.keys)
        return BeginChunkResult(columns, blocked=blocked, search_keys=hashes)

    @activity.defn(name=RECORD_OUTCOMES)
    async def record_outcomes(self, params: RecordOutcomesInput) -> None:
        """Write the chunk's final statuses in one statement, end its leases and count
        its breaker report in the same transaction; then send its batch the report."""
        holders = [] if params.release_leases_of is None else [params.release_leases_of]
        seen = await self._store.items.record_outcomes(
            checked_outcomes(params), holders, params.breaker
        )
        if seen is not None:
            breaker_gauge(seen.key, seen.state)
        # After the write: once told, the batch may close, and every item must be
        # terminal by then. (A retry after a failed signal writes nothing twice.)
        if params.report_to is not None and params.report is not None:
            # The breaker as this write left it: the batch notices its openings.
            report = replace(params.report, breaker=seen)
            await self._report(params.report_to, report)

    async def _report(self, batch_workflow_id: str, report: ChunkResult) -> None:
        """Signal the chunk's report to its batch (whichever run is current). Not
        found: an operator terminated the batch, or this is a second run of the
        activity after the first one's report let the batch finish; either way
        nobody waits for it."""
        try:
            await self._client.get_workflow_handle(batch_workflow_id).signal(
                CHUNK_DONE_SIGNAL, report
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            activity.logger.warning("could not report to %s: %s", batch_workflow_id, exc)

    @activity.defn(name=END_CHUNK)
    async def end_chunk(self, params: EndChunkInput) -> int:
        """Release the chunk's key leases; fail what it left in flight. Returns that count."""
        return await self._store.items.end_chunk(params.workflow_id, params.reason)

    @activity.defn(name=STOP_BATCH)
    async def stop_batch(self, params: StopBatchInput) -> None:
        """Record the batch's stop in the store, which every publish checks first."""
        await self._store.batches.request_stop(params.batch_id)

    @activity.defn(name=FINISH_BATCH)
    async def finish_batch(self, params: FinishBatchInput) -> FinishBatchResult:
        """Close the batch with its summary, unless items are still pending."""
        stop = None
        if params.stop_status is not None:
            stop = (params.stop_status, params.stop_reason or params.stop_status)
        counts, pending = await self._store.items.close_batch(params.batch_id, stop)
        return FinishBatchResult(counts, pending)
