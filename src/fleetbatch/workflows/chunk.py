"""The chunk workflow: consent → publish → wait for responses → re-publish → record.

One workflow commands 1..N vehicles. With one item it is the per-VIN workflow
of the original design. A failed item is an outcome, never a workflow failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from fleetbatch import metrics
    from fleetbatch.activities.batcher_types import WRITE_ACKED_SIGNAL, WriteAck
    from fleetbatch.activities.types import (
        BEGIN_CHUNK,
        CHECK_CONSENT,
        CHUNK_DONE_SIGNAL,
        END_CHUNK,
        PUBLISH_COMMANDS,
        RECORD_OUTCOMES,
        REPORT_TO_BREAKER,
        START_ROUND,
        BeginChunkInput,
        BeginChunkResult,
        ChunkResult,
        ConsentInput,
        ConsentResult,
        EndChunkInput,
        ItemColumns,
        PublishInput,
        PublishResult,
        RecordOutcomesInput,
        StartRoundInput,
        StartRoundResult,
    )
    from fleetbatch.domain import BreakerCount, ChunkSpec, ItemRef, ItemStatus, Outcome
    from fleetbatch.workflows import search_attributes as sa
    from fleetbatch.workflows.batched_write import BatchedWriter
    from fleetbatch.workflows.options import (
        BUS_TIMEOUT,
        CONSENT_TIMEOUT,
        RETRY,
        STORE_TIMEOUT,
    )


CANCEL_SIGNAL = "cancel"
LOCAL_ACTIVITIES_PATCH = "local-activities"
LEASE_RETRY_FIRST = timedelta(seconds=1)
LEASE_RETRY_MAX = timedelta(seconds=30)
T = TypeVar("T")


@dataclass
class ChunkInput:
    batch_id: str
    batch_workflow_id: str
    chunk: ChunkSpec
    command: str
    domain: str
    response_timeout_seconds: float
    max_attempts: int
    search_vins_max: int = 100
    publish_task_queue: str | None = None
    """The command type's rate-limited queue: set, the chunk publishes there in slices;
    None (a type without a rate) publishes in a local activity of the chunk."""
    publish_slice: int = 0
    """Items per publish activity; 0 is the whole chunk in one."""
    priority: float = 1.0
    """The batch's fairness weight on the publish queue."""
    leases: bool = False
    """Lease VINs and report to the breaker. Older histories: implied by a publish queue
    (and without one, no leases, no breaker)."""
    report_with_outcomes: bool = False
    """The last breaker report and the batch's report go with the write of the last
    outcomes, in one local activity: a chunk then takes two workflow tasks, not four."""
    write_shards: int = 0
    """Record outcomes through this many write batchers (the shard is the VIN's);
    0 (older histories too) records them with one direct store call."""
    write_ack_timeout_seconds: float = 120.0
    """With write batchers: how long to wait for the write's acknowledgement."""
    start_in_one: bool = False
    """A leased round without a publish queue begins, checks consent and publishes its
    first attempt in one local activity (``START_ROUND``), not three. Older histories:
    three."""


@dataclass
class CancelChunk:
    reason: str


@dataclass
class Response:
    """A domain response for one command, as signalled in by the responder."""

    command_id: str
    ok: bool
    error: str | None = None


@dataclass
class Responses:
    """Every response the responder collected for this workflow since its last signal,
    column by column (lists of strings decode far faster than lists of objects)."""

    command_ids: list[str] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    """The first release's row-by-row form, still read when old histories replay."""

    @classmethod
    def of(cls, responses: Sequence[Response]) -> Responses:
        return cls(
            [r.command_id for r in responses],
            [r.ok for r in responses],
            [r.error for r in responses],
        )

    def columns(self) -> Iterator[tuple[str, bool, str | None]]:
        """(command id, ok, error) per response, whichever form the signal came in."""
        if self.responses:
            return ((r.command_id, r.ok, r.error) for r in self.responses)
        return zip(self.command_ids, self.ok, self.errors, strict=True)


@workflow.defn
class ChunkWorkflow:
    def __init__(self) -> None:
        self._waiting: dict[str, ItemRef] = {}
        self._attempts: dict[str, int] = {}
        self._outcomes: dict[str, Outcome] = {}
        self._counts: dict[str, int] = {}
        self._answered = [0, 0]
        """This attempt's [accepted, rejected] responses, for the breaker."""
        self._published_at: datetime | None = None
        self._labels: dict[str, str] = {}
        self._batch_id = ""
        self._local = True
        self._leased = False
        self._cancelled: str | None = None
        self._last_breaker_report: BreakerCount | None = None
        self._reported = False
        self._writer = BatchedWriter()

    @workflow.signal
    def responses(self, batch: Responses) -> None:
        """Settle every waiting item the batch answers; others (late, unknown) are ignored."""
        latency = workflow.metric_meter().create_histogram_timedelta(
            metrics.RESPONSE_LATENCY, "publish to domain response", "s"
        )
        for command_id, ok, reason in batch.columns():
            item = self._waiting.pop(command_id, None)
            if item is None:
                continue
            if self._published_at is not None:
                latency.record(workflow.now() - self._published_at, self._labels)
            attempts = self._attempts[command_id]
            self._answered[0 if ok else 1] += 1
            if ok:
                outcome = Outcome(item.id, ItemStatus.SUCCEEDED, attempts)
            else:
                error = f"domain rejected the command: {reason or 'no reason given'}"
                outcome = Outcome(item.id, ItemStatus.FAILED, attempts, error)
                self._log_failure(item, error)
            self._outcomes[command_id] = outcome

    @workflow.signal(name=WRITE_ACKED_SIGNAL)
    def write_acked(self, ack: WriteAck) -> None:
        """The write batcher wrote (or could not write) this chunk's outcomes."""
        self._writer.acked(ack)

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel(self, request: CancelChunk) -> None:
        """Stop: items not yet answered end ``cancelled``; nothing more is published."""
        self._cancelled = self._cancelled or request.reason

    @workflow.run
    async def run(self, params: ChunkInput) -> ChunkResult:
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
        info = workflow.info()
        started = workflow.now()
        self._labels = {"command": params.command}
        self._batch_id = params.batch_id
        # Short store, consent and bus calls run as local activities: no task-queue
        # round trip each. Histories from before the patch replay the old way; chunks
        # started since the report went with the outcomes skip the patch's marker and
        # its search attribute (a visibility write per chunk).
        self._local = params.report_with_outcomes or workflow.patched(LOCAL_ACTIVITIES_PATCH)
        self._leased = params.leases or params.publish_task_queue is not None
        if self._leased:
            size = await self._leased_rounds(params)
        else:
            size = await self._round(params, searchable=True)
        self._record_metrics(self._counts, workflow.now() - started)
        return ChunkResult(info.workflow_id, size, self._counts)

    async def _leased_rounds(self, params: ChunkInput) -> int:
        """Rounds over the items whose VINs this chunk could lease; the rest wait,
        with backoff, for the other batches' chunks to let go of them."""
        size = 0
        retry = LEASE_RETRY_FIRST
        while True:
            begun, started = await self._start_round(params)
            try:
                size += await self._round(
                    params,
                    begun,
                    started,
                    searchable=size == 0,
                    done_before=size,
                    last=not begun.blocked,
                )
            except (Exception, asyncio.CancelledError):
                # The saga's compensation: give the leases back; items the failed
                # step left in flight fail. (A round that ends well releases them
                # in the same write as its outcomes.) Not on BaseException: an
                # evicted workflow's coroutines are closed, and must not compensate.
                await self._activity(
                    END_CHUNK,
                    EndChunkInput(
                        workflow.info().workflow_id, "its chunk failed before recording outcomes"
                    ),
                    STORE_TIMEOUT,
                )
                raise
            if not begun.blocked or self._cancelled:
                return size
            workflow.logger.info("%d items wait for VINs other batches command", begun.blocked)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._cancelled is not None, timeout=retry)
            retry = min(retry * 2, LEASE_RETRY_MAX)

    async def _start_round(
        self, params: ChunkInput
    ) -> tuple[BeginChunkResult, StartRoundResult | None]:
        """Begin a round; with ``start_in_one``, consent and the first publish go with it
        (and come back as the second element)."""
        if not params.start_in_one or params.publish_task_queue is not None or self._cancelled:
            return await self._begin(params), None
        workflow_id = workflow.info().workflow_id
        start = StartRoundInput(
            params.batch_id, params.chunk, workflow_id, params.domain, params.command
        )
        started = await self._activity(START_ROUND, start, STORE_TIMEOUT, StartRoundResult)
        return started.begun, started

    async def _begin(self, params: ChunkInput) -> BeginChunkResult:
        return await self._activity(
            BEGIN_CHUNK,
            BeginChunkInput(params.batch_id, params.chunk, workflow.info().workflow_id),
            STORE_TIMEOUT,
            BeginChunkResult,
        )

    async def _round(
        self,
        params: ChunkInput,
        begun: BeginChunkResult | None = None,
        started: StartRoundResult | None = None,
        *,
        searchable: bool,
        done_before: int = 0,
        last: bool = True,
    ) -> int:
        """Consent, command and record the items ``begun`` (begun here when None);
        ``started``: consent was checked and the first attempt published with the begin.
        ``last``: no items wait for another round, so the chunk reports with this one."""
        begun = begun or await self._begin(params)
        items = begun.refs()
        if searchable and items and len(items) <= params.search_vins_max:
            workflow.upsert_search_attributes([sa.VINS.value_set([i.vin for i in items])])
        if not items:
            return 0
        if self._cancelled:
            self._settle(items, ItemStatus.CANCELLED, f"batch stopped: {self._cancelled}")
        else:
            await self._check_consent(items, started.denied if started else None)
            await self._command(params, started)
        info = workflow.info()
        outcomes = list(self._outcomes.values())
        self._outcomes.clear()
        leased = info.workflow_id if self._leased else None
        if params.write_shards:
            record = RecordOutcomesInput.of(outcomes, leased)
            self._count(await self._write_batched(params, items, record, outcomes))
            return len(items)
        self._count(outcomes)
        report = None
        if params.report_with_outcomes and (last or self._cancelled):
            report = ChunkResult(info.workflow_id, done_before + len(items), dict(self._counts))
        record = RecordOutcomesInput.of(
            outcomes,
            leased,
            breaker=self._last_breaker_report,
            report_to=params.batch_workflow_id if report else None,
            report=report,
        )
        self._last_breaker_report = None
        await self._activity(RECORD_OUTCOMES, record, STORE_TIMEOUT)
        self._reported = record.report is not None
        return len(items)

    async def _write_batched(
        self,
        params: ChunkInput,
        items: list[ItemRef],
        record: RecordOutcomesInput,
        outcomes: list[Outcome],
    ) -> list[Outcome]:
        """Record the outcomes through the write batcher of the first VIN's shard; the
        outcomes as they stand. A batcher write that fails or is not acknowledged in
        time fails the items still in flight, with why (a write that landed meanwhile
        stands); the chunk then reports by its own signal."""
        timeout = timedelta(seconds=params.write_ack_timeout_seconds)
        error = await self._writer.write(record, items[0].vin, params.write_shards, timeout)
        if error is None:
            return outcomes
        workflow.logger.warning("batched write failed: %s", error)
        end = EndChunkInput(workflow.info().workflow_id, error)
        if await self._activity(END_CHUNK, end, STORE_TIMEOUT, int):
            return [Outcome(o.item_id, ItemStatus.FAILED, o.attempts, error) for o in outcomes]
        return outcomes

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self._counts[outcome.status.value] = self._counts.get(outcome.status.value, 0) + 1

    def _settle(self, items: Sequence[ItemRef], status: ItemStatus, reason: str) -> None:
        for item in items:
            attempts = self._attempts.get(item.command_id, 0)
            self._outcomes[item.command_id] = Outcome(item.id, status, attempts, reason)
            if status == ItemStatus.FAILED:
                self._log_failure(item, reason)

    def _log_failure(self, item: ItemRef, reason: str) -> None:
        workflow.logger.warning(
            "item failed: %s",
            reason,
            extra={"batch_id": self._batch_id, "vin": item.vin, "command_id": item.command_id},
        )

    def _record_metrics(self, counts: dict[str, int], duration: timedelta) -> None:
        meter = workflow.metric_meter()
        done = meter.create_counter(metrics.ITEMS, "items that reached a terminal status")
        for status, n in counts.items():
            done.add(n, {**self._labels, "status": status})
        meter.create_histogram_timedelta(
            metrics.CHUNK_DURATION, "chunk start to recorded outcomes", "s"
        ).record(duration, self._labels)

    async def _check_consent(self, items: list[ItemRef], denied_vins: list[str] | None) -> None:
        """Settle the items without consent; the others wait. ``denied_vins``: already
        checked (with the round's start), else asked here."""
        if denied_vins is None:
            consent = await self._activity(
                CHECK_CONSENT, ConsentInput([i.vin for i in items]), CONSENT_TIMEOUT, ConsentResult
            )
            denied_vins = consent.denied
        denied = set(denied_vins)
        if denied:
            workflow.metric_meter().create_counter(
                metrics.CONSENT_DENIED, "items skipped for missing consent"
            ).add(len(denied), self._labels)
        for item in items:
            if item.vin in denied:
                self._outcomes[item.command_id] = Outcome(
                    item.id, ItemStatus.SKIPPED_NO_CONSENT, 0, "owner has not consented"
                )
            else:
                self._waiting[item.command_id] = item
                self._attempts[item.command_id] = 0

    async def _command(self, params: ChunkInput, started: StartRoundResult | None = None) -> None:
        """Publish, wait, and re-publish what timed out with the same command ids
        (the first attempt is already published when the round ``started`` with it)."""
        timeout = timedelta(seconds=params.response_timeout_seconds)
        for attempt in range(1, params.max_attempts + 1):
            if not self._waiting or self._cancelled:
                break
            for command_id in self._waiting:
                self._attempts[command_id] = attempt
            if attempt > 1:
                workflow.metric_meter().create_counter(
                    metrics.REPUBLISHES, "commands re-published after a response timeout"
                ).add(len(self._waiting), self._labels)
            self._published_at = workflow.now()
            self._answered = [0, 0]
            if attempt == 1 and started is not None:
                probe = started.probe
            else:
                probe = await self._publish(params, attempt)
            if self._cancelled:
                break
            try:
                await workflow.wait_condition(
                    lambda: not self._waiting or self._cancelled is not None, timeout=timeout
                )
            except TimeoutError:
                workflow.logger.info(
                    "%d of the chunk's commands unanswered after attempt %d",
                    len(self._waiting),
                    attempt,
                )
            if self._leased and not self._cancelled:
                again = bool(self._waiting) and attempt < params.max_attempts
                await self._report_to_breaker(params, probe, last=not again)
        if self._cancelled:
            reason = f"batch stopped: {self._cancelled}"
            self._settle(list(self._waiting.values()), ItemStatus.CANCELLED, reason)
        else:
            reason = (
                f"no response after {params.max_attempts} attempts "
                f"({params.response_timeout_seconds:g}s each)"
            )
            self._settle(list(self._waiting.values()), ItemStatus.FAILED, reason)
        self._waiting.clear()

    async def _publish(self, params: ChunkInput, attempt: int) -> bool:
        """Publish what waits; True if this chunk is the breaker's half-open probe."""

        def publish_input(items: Sequence[ItemRef]) -> PublishInput:
            return PublishInput(
                domain=params.domain,
                command=params.command,
                batch_id=params.batch_id,
                reply_to=workflow.info().workflow_id,
                attempt=attempt,
                items=ItemColumns.of(items),
            )

        waiting = list(self._waiting.values())
        if params.publish_task_queue is None:
            if not self._leased:  # older histories: a result-less publish
                await self._activity(PUBLISH_COMMANDS, publish_input(waiting), BUS_TIMEOUT)
                return False
            published = await self._activity(
                PUBLISH_COMMANDS, publish_input(waiting), BUS_TIMEOUT, PublishResult
            )
            return published.probe
        # The queue's server-side rate limit counts activities: one per slice.
        size = params.publish_slice or len(waiting)
        slices = [
            workflow.start_activity(
                PUBLISH_COMMANDS,
                publish_input(waiting[i : i + size]),
                task_queue=params.publish_task_queue,
                result_type=PublishResult,
                start_to_close_timeout=BUS_TIMEOUT,
                retry_policy=RETRY,
                priority=Priority(fairness_key=params.batch_id, fairness_weight=params.priority),
                # On cancel the chunk stops waiting at once; a slice already queued
                # publishes nothing, as its items are no longer in flight.
                cancellation_type=ActivityCancellationType.ABANDON,
            )
            for i in range(0, len(waiting), size)
        ]
        await workflow.wait_condition(
            lambda: all(s.done() for s in slices) or self._cancelled is not None
        )
        probe = False
        for publish in slices:
            if not publish.done():
                publish.cancel()
            try:
                probe = (await publish).probe or probe
            except (ActivityError, asyncio.CancelledError):
                if not self._cancelled:
                    raise
        return probe

    async def _report_to_breaker(self, params: ChunkInput, probe: bool, *, last: bool) -> None:
        """Count this attempt's answers in the breaker; the last attempt's count goes
        with the outcomes' write when the chunk reports with it."""
        accepted, rejected = self._answered
        failures = rejected + len(self._waiting)
        if not accepted + failures:
            return
        report = BreakerCount(params.command, accepted, failures, probe)
        if last and params.report_with_outcomes and not params.write_shards:
            self._last_breaker_report = report
            return
        await self._activity(REPORT_TO_BREAKER, report, STORE_TIMEOUT, str)

    async def _activity(
        self, name: str, arg: Any, timeout: timedelta, result_type: type[T] | None = None
    ) -> T:
        if self._local:
            return await workflow.execute_local_activity(  # type: ignore[no-any-return]
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=timeout,
                retry_policy=RETRY,
            )
        return await workflow.execute_activity(  # type: ignore[no-any-return]
            name, arg, result_type=result_type, start_to_close_timeout=timeout, retry_policy=RETRY
        )

    async def _report(self, batch_workflow_id: str, result: ChunkResult) -> None:
        """Tell the batch by signal, so the report reaches whichever run it is now."""
        handle = workflow.get_external_workflow_handle(batch_workflow_id)
        try:
            await handle.signal(CHUNK_DONE_SIGNAL, result)
        except Exception as exc:  # the batch was terminated by an operator
            workflow.logger.warning("could not report to %s: %s", batch_workflow_id, exc)
