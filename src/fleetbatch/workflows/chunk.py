"""The engine's side of a chunk workflow: begin → the pipeline's step → record → report.

A chunk workflow processes 1..N items of a batch (Spring Batch's chunk-oriented
step; Step Functions' child execution per ItemBatcher batch). The engine owns
what every pipeline needs: putting the chunk's items in flight (leasing their
keys when the pipeline asks, retrying with backoff while other batches hold
some), giving leases back and failing what a failed step left in flight (the
saga's compensation), recording outcomes in one bulk write (or through the
write batcher), cancellation, metrics, and the report to the batch.

A pipeline subclasses :class:`ChunkWorkflowBase`, decorates it with
``@workflow.defn`` and a ``@workflow.run`` that calls :meth:`run_chunk`, and
implements :meth:`process` — its ItemProcessor — which settles each item
through :meth:`settle` or says what its own activities recorded
(:meth:`recorded`). A failed item is an outcome, never a workflow failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from fleetbatch import metrics
    from fleetbatch.activities.batcher_types import WRITE_ACKED_SIGNAL, WriteAck
    from fleetbatch.activities.types import (
        BEGIN_CHUNK,
        CHUNK_DONE_SIGNAL,
        END_CHUNK,
        RECORD_OUTCOMES,
        REPORT_TO_BREAKER,
        BeginChunkInput,
        BeginChunkResult,
        ChunkResult,
        EndChunkInput,
        RecordOutcomesInput,
    )
    from fleetbatch.domain import BreakerCount, ChunkSpec, ItemRef, ItemStatus, Outcome
    from fleetbatch.workflows import search_attributes as sa
    from fleetbatch.workflows.batched_write import BatchedWriter
    from fleetbatch.workflows.options import RETRY, STORE_TIMEOUT


CANCEL_SIGNAL = "cancel"
HOLD_SIGNAL = "hold"
LEASE_RETRY_FIRST = timedelta(seconds=1)
LEASE_RETRY_MAX = timedelta(seconds=30)
T = TypeVar("T")


@dataclass
class ChunkInput:
    batch_id: str
    batch_workflow_id: str
    chunk: ChunkSpec
    pipeline: str
    step: dict[str, Any] = field(default_factory=dict)
    """The pipeline's step options, as the batch carries them (the pipeline decodes them)."""
    lease: bool = True
    """Lease the items' keys across batches (see ``store.leases``)."""
    priority: float = 1.0
    """The batch's fairness weight, for steps that use a shared rate-limited queue."""
    search_keys_max: int = 100
    """A chunk of at most this many items lists their keys in a search attribute."""
    write_shards: int = 0
    """Record outcomes through this many write batchers (the shard is the first
    item's key's); 0 records them with one direct store call."""
    write_ack_timeout_seconds: float = 120.0
    """With write batchers: how long to wait for the write's acknowledgement."""
    window_end: float | None = None
    """When the batch's maintenance window closes (seconds since the epoch): the step
    publishes nothing from then on. None: no windows."""
    publish_at: float | None = None
    """A batch with a rate ramp: the chunk's slot (unix time) in the batch's schedule;
    a step that publishes sends nothing before it..."""
    publish_pace: float | None = None
    """...and then one item each ``1 / publish_pace`` seconds (the ramp's rate now)."""


@dataclass
class CancelChunk:
    reason: str


@dataclass
class HoldChunk:
    """A batch's maintenance window closed (``held``) or opened again."""

    held: bool
    window_end: float | None = None
    """Not held: when the open window closes (``ChunkInput.window_end``)."""


class ChunkWorkflowBase:
    """The engine's chunk workflow; a pipeline's chunk workflow subclasses it."""

    def __init__(self) -> None:
        self.cancelled: str | None = None
        """Why the batch stopped, once it did: settle what is open as cancelled."""
        self.labels: dict[str, str] = {}
        """Metric labels of this chunk (the pipeline's, and what the step adds)."""
        self.breaker_report: BreakerCount | None = None
        """The step's last breaker count: counted in the same write as the outcomes."""
        self.held = False
        """Outside the batch's maintenance window: publish nothing until it opens."""
        self.window_end: float | None = None
        """When the batch's window closes (``ChunkInput.window_end``); None: no windows."""
        self._window_told = False
        self._outcomes: dict[int, Outcome] = {}
        self._counts: dict[str, int] = {}
        self._reported = False
        self._writer = BatchedWriter()

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel(self, request: CancelChunk) -> None:
        """Stop: items not yet settled end ``cancelled``; the step starts nothing new."""
        self.cancelled = self.cancelled or request.reason

    @workflow.signal(name=HOLD_SIGNAL)
    def hold(self, request: HoldChunk) -> None:
        """The batch's window closed: start nothing that publishes until it opens again
        (answers to what was published before still settle items)."""
        self.held = request.held
        if not request.held:
            self.window_end = request.window_end
            self._window_told = True

    def window_closed(self, end: float | None) -> None:
        """A publish given the window's ``end`` found it passed: hold until the batch
        releases the chunk with the next window's end (unless that came meanwhile)."""
        if end == self.window_end:
            self.held = True

    async def released(self) -> None:
        """Wait while held, or past the window's end until the batch releases the chunk
        (returns at once otherwise, and on a cancel)."""
        if self.window_end is not None and workflow.now().timestamp() >= self.window_end:
            self.held = True  # the batch's hold is on its way
        if self.held:
            # Only when held: a chunk never held records exactly what it did before.
            await workflow.wait_condition(lambda: not self.held or self.cancelled is not None)

    @workflow.signal(name=WRITE_ACKED_SIGNAL)
    def write_acked(self, ack: WriteAck) -> None:
        """The write batcher wrote (or could not write) this chunk's outcomes."""
        self._writer.acked(ack)

    async def process(self, params: ChunkInput, items: list[ItemRef]) -> None:
        """The pipeline's step over the items a round put in flight: settle each."""
        raise NotImplementedError

    async def begin(self, params: ChunkInput) -> BeginChunkResult:
        """Put a round's items in flight; a pipeline may fold its first step in."""
        return await self.activity(
            BEGIN_CHUNK,
            BeginChunkInput(
                params.batch_id, params.chunk, workflow.info().workflow_id, params.lease
            ),
            STORE_TIMEOUT,
            BeginChunkResult,
        )

    def settle(
        self,
        item_id: int,
        status: ItemStatus,
        attempts: int,
        error: str | None = None,
        *,
        answered_at: float | None = None,
        attempt_timeout: float | None = None,
    ) -> None:
        """Record an item's final state (written when the round ends); a step that
        publishes attempts says when the last one was answered and, if any timed
        out, after how long (see ``Outcome``), to close the item's attempts."""
        self._outcomes[item_id] = Outcome(
            item_id, status, attempts, error, answered_at, attempt_timeout
        )

    def recorded(self, counts: dict[str, int]) -> None:
        """Items the step's own activity already recorded in the store, by status."""
        self._count_statuses(counts)

    async def run_chunk(self, params: ChunkInput) -> ChunkResult:
        """The whole chunk; the pipeline's ``@workflow.run`` calls this."""
        self.labels.setdefault("pipeline", params.pipeline)
        if not self._window_told:  # a release handled before the run is newer
            self.window_end = params.window_end
        try:
            result = await self._run(params)
        except ActivityError:
            # Bad data failed the chunk: the batch must still free its window slot.
            # Its items stay in flight; the batch marks them failed when it closes.
            await self._report(
                params.batch_workflow_id, ChunkResult(workflow.info().workflow_id, 0)
            )
            raise
        if not self._reported:
            await self._report(params.batch_workflow_id, result)
        return result

    async def _run(self, params: ChunkInput) -> ChunkResult:
        started = workflow.now()
        size = 0
        retry = LEASE_RETRY_FIRST
        while True:
            # A pipeline's begin may publish (the vehicle step's first attempt).
            await self.released()
            # Once cancelled, only the engine's begin: a pipeline's may start its step.
            begun = await (
                ChunkWorkflowBase.begin(self, params) if self.cancelled else self.begin(params)
            )
            last = not begun.blocked or self.cancelled is not None
            try:
                size += await self._round(
                    params, begun, first=size == 0, done_before=size, last=last
                )
            except (Exception, asyncio.CancelledError):
                # The saga's compensation: give the leases back; items the failed
                # step left in flight fail. (A round that ends well releases them
                # in the same write as its outcomes.) Not on BaseException: an
                # evicted workflow's coroutines are closed, and must not compensate.
                await self.activity(
                    END_CHUNK,
                    EndChunkInput(
                        workflow.info().workflow_id, "its chunk failed before recording outcomes"
                    ),
                    STORE_TIMEOUT,
                )
                raise
            if last:
                break
            workflow.logger.info("%d items wait for keys other batches' chunks hold", begun.blocked)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self.cancelled is not None, timeout=retry)
            retry = min(retry * 2, LEASE_RETRY_MAX)
        self._record_metrics(workflow.now() - started)
        return ChunkResult(workflow.info().workflow_id, size, self._counts)

    async def _round(
        self,
        params: ChunkInput,
        begun: BeginChunkResult,
        *,
        first: bool,
        done_before: int,
        last: bool,
    ) -> int:
        """Process and record the items ``begun``. ``last``: no items wait for another
        round, so the chunk reports with this one's write."""
        items = begun.refs()
        if first and items and len(items) <= params.search_keys_max:
            workflow.upsert_search_attributes([sa.KEYS.value_set(begun.searchable())])
        if not items:
            return 0
        if self.cancelled:
            for item in items:
                self.settle(item.id, ItemStatus.CANCELLED, 0, f"batch stopped: {self.cancelled}")
        else:
            await self.process(params, items)
        info = workflow.info()
        outcomes = list(self._outcomes.values())
        self._outcomes.clear()
        holder = info.workflow_id if params.lease else None
        if params.write_shards:
            if self.breaker_report is not None:  # a batcher's write carries no breaker count
                await self.activity(REPORT_TO_BREAKER, self.breaker_report, STORE_TIMEOUT, str)
                self.breaker_report = None
            record = RecordOutcomesInput.of(outcomes, holder)
            self._count(await self._write_batched(params, items, record, outcomes))
            return len(items)
        self._count(outcomes)
        report = None
        if last:
            report = ChunkResult(info.workflow_id, done_before + len(items), dict(self._counts))
        record = RecordOutcomesInput.of(
            outcomes,
            holder,
            breaker=self.breaker_report,
            report_to=params.batch_workflow_id if report else None,
            report=report,
        )
        self.breaker_report = None
        await self.activity(RECORD_OUTCOMES, record, STORE_TIMEOUT)
        self._reported = report is not None
        return len(items)

    async def _write_batched(
        self,
        params: ChunkInput,
        items: list[ItemRef],
        record: RecordOutcomesInput,
        outcomes: list[Outcome],
    ) -> list[Outcome]:
        """Record the outcomes through the write batcher of the first item's shard; the
        outcomes as they stand. A batcher write that fails or is not acknowledged in
        time fails the items still in flight, with why (a write that landed meanwhile
        stands); the chunk then reports by its own signal."""
        timeout = timedelta(seconds=params.write_ack_timeout_seconds)
        error = await self._writer.write(record, items[0].key, params.write_shards, timeout)
        if error is None:
            return outcomes
        workflow.logger.warning("batched write failed: %s", error)
        end = EndChunkInput(workflow.info().workflow_id, error)
        if await self.activity(END_CHUNK, end, STORE_TIMEOUT, int):
            return [Outcome(o.item_id, ItemStatus.FAILED, o.attempts, error) for o in outcomes]
        return outcomes

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self._counts[outcome.status.value] = self._counts.get(outcome.status.value, 0) + 1

    def _count_statuses(self, counts: dict[str, int]) -> None:
        for status, n in counts.items():
            self._counts[status] = self._counts.get(status, 0) + n

    def _record_metrics(self, duration: timedelta) -> None:
        # Items are counted where their status is written (store.counts' listener):
        # a workflow task that runs again after a crash would count them twice here.
        meter = workflow.metric_meter()
        meter.create_histogram_timedelta(
            metrics.CHUNK_DURATION, "chunk start to recorded outcomes", "s"
        ).record(duration, self.labels)

    async def report_to_breaker(self, count: BreakerCount, *, last: bool) -> None:
        """Count a step's calls in its breaker; the last count goes with the outcomes'
        write (one local activity less per chunk)."""
        if last:
            self.breaker_report = count
            return
        await self.activity(REPORT_TO_BREAKER, count, STORE_TIMEOUT, str)

    async def activity(
        self, name: str, arg: Any, timeout: timedelta, result_type: type[T] | None = None
    ) -> T:
        """A short store or service call as a local activity: no task-queue round trip."""
        return await workflow.execute_local_activity(  # type: ignore[no-any-return]
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timeout,
            retry_policy=RETRY,
        )

    async def _report(self, batch_workflow_id: str, result: ChunkResult) -> None:
        """Tell the batch by signal, so the report reaches whichever run it is now."""
        handle = workflow.get_external_workflow_handle(batch_workflow_id)
        try:
            await handle.signal(CHUNK_DONE_SIGNAL, result)
        except Exception as exc:  # the batch was terminated by an operator
            workflow.logger.warning("could not report to %s: %s", batch_workflow_id, exc)
