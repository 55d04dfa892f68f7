"""The vehicle pipeline's chunk workflow: consent → publish → wait for responses →
re-publish → record.

One workflow commands 1..N vehicles. With one item it is the per-VIN workflow
of the original design. The step waits on timers and on the responder's
signals, so it runs in the workflow, not in an activity.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ActivityError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from fleetbatch import metrics
    from fleetbatch.activities.types import BeginChunkResult, ChunkResult, ItemColumns
    from fleetbatch.domain import BreakerCount, ItemRef, ItemStatus
    from fleetbatch.pipelines.vehicle.types import (
        ADMIT,
        CHECK_CONSENT,
        PUBLISH_COMMANDS,
        START_ROUND,
        AdmitInput,
        AdmitResult,
        ConsentInput,
        ConsentResult,
        PublishInput,
        PublishResult,
        StartRoundInput,
        StartRoundResult,
    )
    from fleetbatch.workflows.chunk import ChunkInput, ChunkWorkflowBase
    from fleetbatch.workflows.options import BUS_TIMEOUT, RETRY, STORE_TIMEOUT

CONSENT_TIMEOUT = timedelta(seconds=30)
WORKFLOW_NAME = "VehicleChunkWorkflow"
RESPONSES_SIGNAL = "responses"


@dataclass
class VehicleStep:
    """The vehicle step's options, carried in the batch's input (``ChunkInput.step``)."""

    command: str
    domain: str
    response_timeout_seconds: float
    max_attempts: int
    publish_task_queue: str | None = None
    """The command type's rate-limited queue: set, the chunk publishes there, one
    activity per item (the server's limit counts activities, so the rate is in items
    per second whatever the chunk size); None (a type without a rate) publishes the
    whole round in a local activity of the chunk."""


@dataclass
class Responses:
    """Every response the responder collected for this workflow since its last signal,
    column by column (lists of strings decode far faster than lists of objects)."""

    command_ids: list[str] = field(default_factory=list)
    ok: list[bool] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)


@workflow.defn(name=WORKFLOW_NAME)
class VehicleChunkWorkflow(ChunkWorkflowBase):
    def __init__(self) -> None:
        super().__init__()
        self._step: VehicleStep | None = None
        self._waiting: dict[str, ItemRef] = {}
        """Items waiting for an answer, by command id."""
        self._attempts: dict[str, int] = {}
        self._answered = [0, 0]
        """This attempt's [accepted, rejected] responses, for the breaker."""
        self._published_at: datetime | None = None
        self._started: StartRoundResult | None = None
        self._batch_id = ""

    @workflow.signal(name=RESPONSES_SIGNAL)
    def responses(self, batch: Responses) -> None:
        """Settle every waiting item the batch answers; others (late, unknown) are ignored."""
        latency = workflow.metric_meter().create_histogram_timedelta(
            metrics.RESPONSE_LATENCY, "publish to domain response", "s"
        )
        answered_at = workflow.now().timestamp()
        for command_id, ok, reason in zip(batch.command_ids, batch.ok, batch.errors, strict=True):
            item = self._waiting.pop(command_id, None)
            if item is None:
                continue
            if self._published_at is not None:
                latency.record(workflow.now() - self._published_at, self.labels)
            attempts = self._attempts[command_id]
            self._answered[0 if ok else 1] += 1
            status, error = ItemStatus.SUCCEEDED, None
            if not ok:
                status = ItemStatus.FAILED
                error = f"domain rejected the command: {reason or 'no reason given'}"
                self._log_failure(item, error)
            timeout = self._timeout(attempts - 1)  # answered: those before it timed out
            self.settle(
                item.id, status, attempts, error, answered_at=answered_at, attempt_timeout=timeout
            )

    @workflow.run
    async def run(self, params: ChunkInput) -> ChunkResult:
        self._step = VehicleStep(**params.step)
        self._batch_id = params.batch_id
        self.labels["command"] = self._step.command
        return await self.run_chunk(params)

    @property
    def step(self) -> VehicleStep:
        assert self._step is not None
        return self._step

    async def begin(self, params: ChunkInput) -> BeginChunkResult:
        """Without a publish queue, a round begins, checks consent and publishes its
        first attempt in one local activity (``START_ROUND``), not three."""
        self._started = None
        if self.step.publish_task_queue is not None:
            return await super().begin(params)
        start = StartRoundInput(
            params.batch_id,
            params.chunk,
            workflow.info().workflow_id,
            self.step.domain,
            self.step.command,
            self.window_end,
            params.publish_at,
            params.publish_pace,
        )
        self._started = await self.activity(START_ROUND, start, STORE_TIMEOUT, StartRoundResult)
        if self._started.window_closed:
            self.window_closed(start.window_end)
        return self._started.begun

    async def process(self, params: ChunkInput, items: list[ItemRef]) -> None:
        started = self._started
        await self._check_consent(items, started.denied if started else None)
        await self._command(params, started)

    def _log_failure(self, item: ItemRef, reason: str) -> None:
        workflow.logger.warning(
            "item failed: %s",
            reason,
            extra={
                "batch_id": self._batch_id,
                "item_id": item.id,
                "vin": item.key,  # by keyed hash outside development: telemetry.ItemKeyFilter
                "command_id": item.effect_id,
            },
        )

    async def _check_consent(self, items: list[ItemRef], denied_vins: list[str] | None) -> None:
        """Skip the items without consent; the others wait. ``denied_vins``: already
        checked (with the round's start), else asked here."""
        if denied_vins is None:
            consent = await self.activity(
                CHECK_CONSENT, ConsentInput([i.key for i in items]), CONSENT_TIMEOUT, ConsentResult
            )
            denied_vins = consent.denied
        denied = set(denied_vins)
        if denied:
            workflow.metric_meter().create_counter(
                metrics.CONSENT_DENIED, "items skipped for missing consent"
            ).add(len(denied), self.labels)
        for item in items:
            if item.key in denied:
                self.settle(item.id, ItemStatus.SKIPPED, 0, "owner has not consented")
            else:
                self._waiting[item.effect_id] = item
                self._attempts[item.effect_id] = 0

    async def _command(self, params: ChunkInput, started: StartRoundResult | None) -> None:
        """Publish, wait, and re-publish what timed out with the same command ids
        (the first attempt is already published when the round ``started`` with it)."""
        step = self.step
        timeout = timedelta(seconds=step.response_timeout_seconds)
        published: list[datetime] = []
        for attempt in range(1, step.max_attempts + 1):
            if not self._waiting or self.cancelled:
                break
            for command_id in self._waiting:
                self._attempts[command_id] = attempt
            if attempt > 1:
                workflow.metric_meter().create_counter(
                    metrics.REPUBLISHES, "commands re-published after a response timeout"
                ).add(len(self._waiting), self.labels)
            self._answered = [0, 0]
            # Response latency counts from the attempt's start; on a rate-limited
            # queue answers come in while the rest of the attempt is still queued.
            self._published_at = workflow.now()
            if attempt == 1 and started is not None and not started.window_closed:
                probe = started.probe
            else:
                probe = await self._publish(params, attempt)
            if self.cancelled:
                break
            # The response timeout counts from when the attempt was out, not from
            # when it was asked for: a rate-limited queue may hold publishes a while.
            published.append(workflow.now())
            try:
                await workflow.wait_condition(
                    lambda: not self._waiting or self.cancelled is not None, timeout=timeout
                )
            except TimeoutError:
                workflow.logger.info(
                    "%d of the chunk's commands unanswered after attempt %d",
                    len(self._waiting),
                    attempt,
                )
            if params.lease and not self.cancelled:
                again = bool(self._waiting) and attempt < step.max_attempts
                await self._report_to_breaker(probe, last=not again)
        if self.cancelled:
            self._settle_waiting(ItemStatus.CANCELLED, f"batch stopped: {self.cancelled}")
        else:
            times = ", ".join(f"{t:%H:%M:%S}" for t in published)
            self._settle_waiting(
                ItemStatus.FAILED,
                f"no response within {step.response_timeout_seconds:g}s of any of "
                f"{len(published)} attempts (published at {times} UTC)",
            )

    def _settle_waiting(self, status: ItemStatus, reason: str) -> None:
        """Settle the unanswered: their last attempt timed out too, unless cancelled."""
        for command_id, item in self._waiting.items():
            attempts = self._attempts.get(command_id, 0)
            # A failed item's last attempt timed out too; a cancelled one's was cut short.
            timed_out = attempts if status == ItemStatus.FAILED else attempts - 1
            timeout = self._timeout(timed_out)
            self.settle(item.id, status, attempts, reason, attempt_timeout=timeout)
            if status == ItemStatus.FAILED:
                self._log_failure(item, reason)
        self._waiting.clear()

    def _timeout(self, timed_out: int) -> float | None:
        """The response timeout when ``timed_out`` attempts timed out, else None."""
        return self.step.response_timeout_seconds if timed_out > 0 else None

    async def _publish(self, params: ChunkInput, attempt: int) -> bool:
        """Publish what waits; True if this chunk is the breaker's half-open probe."""
        step = self.step

        def publish_input(items: Sequence[ItemRef], slot: int | None = None) -> PublishInput:
            """``slot``: one item's place in a ramping batch's schedule (queue path)."""
            not_before, pace = None, None
            if attempt == 1 and params.publish_at is not None and params.publish_pace:
                not_before, pace = params.publish_at, params.publish_pace
                if slot is not None:
                    not_before, pace = not_before + slot / pace, None
            return PublishInput(
                domain=step.domain,
                command=step.command,
                batch_id=params.batch_id,
                reply_to=workflow.info().workflow_id,
                attempt=attempt,
                items=ItemColumns.of(items),
                window_end=self.window_end,
                not_before=not_before,
                pace=pace,
            )

        await self._in_window()  # a maintenance window closed: re-publish in the next
        if self.cancelled:
            return False
        waiting = list(self._waiting.values())
        if step.publish_task_queue is None:
            while True:
                sent = publish_input(waiting)
                published = await self.activity(PUBLISH_COMMANDS, sent, BUS_TIMEOUT, PublishResult)
                if not published.window_closed:
                    return published.probe
                self.window_closed(sent.window_end)
                await self._in_window()
                if self.cancelled:
                    return False
        # Optimistic first: with the breaker closed (the common case) no admission
        # call. Items the breaker held back wait for admission on durable timers,
        # not in retried activities on the queue. Items whose publish found the
        # window closed wait for the next window, on the same attempt.
        end = self.window_end
        probe, held, closed = await self._publish_each(params, step, waiting, publish_input)
        while (held or closed) and not self.cancelled:
            if closed:
                self.window_closed(end)
            await self._in_window()
            if self.cancelled:
                break
            if held:
                admission = await self._admission(step)
                if admission is None:
                    break  # cancelled while waiting
                probe = probe or admission.probe
            end = self.window_end
            again, held, closed = await self._publish_each(
                params, step, held + closed, publish_input
            )
            probe = probe or again
        return probe

    async def _in_window(self) -> None:
        """Wait while the chunk holds for a maintenance window; after a wait, response
        latency counts from the release (the held items were published then)."""
        before = workflow.now()
        await self.released()
        if workflow.now() > before:
            self._published_at = workflow.now()

    async def _admission(self, step: VehicleStep) -> AdmitResult | None:
        """Wait, on durable timers, until the command type's breaker lets this chunk
        publish (closed, or half-open with this chunk as its probe); None if the batch
        stopped meanwhile. Waiting here, not in retried activities, leaves the queue's
        rate to the chunks that may publish: the half-open probe goes through at once."""
        caller = workflow.info().workflow_id
        while not self.cancelled:
            admission = await self.activity(
                ADMIT, AdmitInput(step.command, caller), STORE_TIMEOUT, AdmitResult
            )
            if admission.allowed:
                return admission
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.cancelled is not None,
                    timeout=timedelta(seconds=max(admission.retry_after, 0.5)),
                )
        return None

    async def _publish_each(
        self,
        params: ChunkInput,
        step: VehicleStep,
        items: list[ItemRef],
        publish_input: Callable[[Sequence[ItemRef], int | None], PublishInput],
    ) -> tuple[bool, list[ItemRef], list[ItemRef]]:
        """One publish activity per item on the rate-limited queue. Returns whether this
        chunk is the half-open breaker's probe, the items whose publish the breaker
        held back, and those whose publish found the maintenance window closed."""
        assert step.publish_task_queue is not None
        publishes = [
            workflow.start_activity(
                PUBLISH_COMMANDS,
                publish_input([item], slot),
                task_queue=step.publish_task_queue,
                result_type=PublishResult,
                start_to_close_timeout=BUS_TIMEOUT,
                retry_policy=RETRY,
                priority=Priority(fairness_key=params.batch_id, fairness_weight=params.priority),
                # On cancel the chunk stops waiting at once; a publish already queued
                # sends nothing, as its batch is stopped and its item no longer in flight.
                cancellation_type=ActivityCancellationType.ABANDON,
            )
            for slot, item in enumerate(items)
        ]
        await workflow.wait_condition(
            lambda: all(s.done() for s in publishes) or self.cancelled is not None
        )
        held: list[ItemRef] = []
        closed: list[ItemRef] = []
        probe = False
        for item, publish in zip(items, publishes, strict=True):
            if not publish.done():
                publish.cancel()
            try:
                result = await publish
            except (ActivityError, asyncio.CancelledError):
                if not self.cancelled:
                    raise
                continue
            probe = probe or result.probe
            if result.window_closed:
                closed.append(item)
            elif result.held:
                held.append(item)
        return probe, held, closed

    async def _report_to_breaker(self, probe: bool, *, last: bool) -> None:
        """Count this attempt's answers in the command type's breaker."""
        accepted, rejected = self._answered
        failures = rejected + len(self._waiting)
        if accepted + failures:
            count = BreakerCount(self.step.command, accepted, failures, probe)
            await self.report_to_breaker(count, last=last)
