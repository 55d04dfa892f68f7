"""The write batcher: many workflows' small writes become few bulk writes.

Callers signal ``WriteRequest``s (signal-with-start, so the first one starts the
shard's batcher). A flush writes up to ``max_batch`` requests in one activity when
that many wait or when the oldest has waited ``max_wait_seconds``; a failed flush
is retried with the requests kept. Then every caller gets a ``WriteAck`` signal from
an activity that treats a gone caller as done, so none blocks the others. Requests
whose id is pending or among the last ``dedup_window`` written are dropped (a
written one is acknowledged again). The run continues-as-new when Temporal suggests
it or after ``max_requests_per_run`` requests, carrying only the pending requests
and the dedup window; it first lets every signal handler and acknowledgement finish,
and a signal that lands during the hand-over makes the server re-run the task with
it, so it is carried too.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from fleetbatch import metrics
    from fleetbatch.activities.batcher_types import (
        ACK_WRITES,
        BATCHER_WORKFLOW,
        FLUSH_WRITES,
        STATS_QUERY,
        WRITE_SIGNAL,
        AckWritesInput,
        BatcherInput,
        BatcherState,
        BatcherStatus,
        FlushMetrics,
        FlushWritesInput,
        WriteRequest,
    )
    from fleetbatch.workflows.options import RETRY, STORE_TIMEOUT

ACK_TIMEOUT = timedelta(seconds=60)


@workflow.defn(name=BATCHER_WORKFLOW)
class WriteBatcherWorkflow:
    @workflow.init
    def __init__(self, params: BatcherInput) -> None:
        # From the input: the signal that started this run is handled before run().
        self._params = params
        self._state = params.state or BatcherState()
        self._pending_ids = {r.request_id for r in self._state.pending}
        self._recent = set(self._state.recent)
        self._received_this_run = 0
        self._acks_in_flight = 0
        self._labels = {"shard": str(params.shard)}

    @workflow.signal(name=WRITE_SIGNAL)
    def write(self, request: WriteRequest) -> None:
        """Queue a request; drop it if its id is pending or was written lately."""
        stats = self._state.stats
        stats.received += 1
        self._received_this_run += 1
        if request.request_id in self._pending_ids or request.request_id in self._recent:
            stats.duplicates_dropped += 1
            if request.request_id in self._recent:
                # Written already; the caller may have missed the acknowledgement.
                self._acknowledge([request], None)
            return
        self._state.pending.append(request)
        self._state.arrived.append(workflow.now().timestamp())
        self._pending_ids.add(request.request_id)
        self._report_sizes()

    @workflow.query(name=STATS_QUERY)
    def stats(self) -> BatcherStatus:
        return BatcherStatus(
            shard=self._params.shard,
            pending=len(self._state.pending),
            dedup_window_size=len(self._state.recent),
            acks_in_flight=self._acks_in_flight,
            stats=replace(self._state.stats),
        )

    @workflow.run
    async def run(self, params: BatcherInput) -> None:
        while True:
            if self._run_full(params):
                await self._hand_over(params)
            reason = self._flush_reason(params)
            if reason is not None:
                await self._flush(params, reason)
            else:
                await self._wait(params)

    def _run_full(self, params: BatcherInput) -> bool:
        return (
            workflow.info().is_continue_as_new_suggested()
            or self._received_this_run >= params.max_requests_per_run
        )

    def _flush_reason(self, params: BatcherInput) -> str | None:
        pending = self._state.pending
        if len(pending) >= params.max_batch:
            return "size"
        if pending and self._oldest_waited() >= params.max_wait_seconds:
            return "time"
        return None

    def _oldest_waited(self) -> float:
        return workflow.now().timestamp() - self._state.arrived[0]

    async def _wait(self, params: BatcherInput) -> None:
        """Until the batch is full, the first request arrives, the oldest is due or
        the run is full."""
        empty = not self._state.pending
        timeout = None if empty else max(params.max_wait_seconds - self._oldest_waited(), 0.001)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    len(self._state.pending) >= params.max_batch
                    or (empty and bool(self._state.pending))
                    or self._received_this_run >= params.max_requests_per_run
                ),
                timeout=timeout,
            )

    async def _flush(self, params: BatcherInput, reason: str) -> None:
        state, stats = self._state, self._state.stats
        batch = state.pending[: params.max_batch]
        report = FlushMetrics(
            shard=params.shard,
            reason=reason,
            oldest_arrival=state.arrived[0],
            received=stats.received - state.reported.received,
            duplicates=stats.duplicates_dropped - state.reported.duplicates_dropped,
            continued=stats.continued_as_new - state.reported.continued_as_new,
        )
        error = None
        try:
            await workflow.execute_activity(
                FLUSH_WRITES,
                FlushWritesInput.of(batch, report),
                result_type=int,
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=RETRY,
            )
        except ActivityError as exc:
            # Only bad data ends the retries; every caller learns why, none waits in vain.
            error = f"the write batcher could not write: {exc.cause or exc}"
            workflow.logger.warning("flush of %d requests failed: %s", len(batch), error)
        latency = self._oldest_waited()
        state.reported.received += report.received
        state.reported.duplicates_dropped += report.duplicates
        state.reported.continued_as_new += report.continued
        del state.pending[: len(batch)]
        del state.arrived[: len(batch)]
        self._pending_ids.difference_update(r.request_id for r in batch)
        if error is None:
            self._remember(params, [r.request_id for r in batch])
            stats.written += len(batch)
        else:
            stats.failed += len(batch)
        stats.flushes += 1
        if reason == "size":
            stats.flushed_by_size += 1
        else:
            stats.flushed_by_time += 1
        stats.last_flush_latency_seconds = latency
        stats.max_flush_latency_seconds = max(stats.max_flush_latency_seconds, latency)
        self._report_sizes()
        self._acknowledge(batch, error)

    def _remember(self, params: BatcherInput, request_ids: list[str]) -> None:
        recent = self._state.recent
        recent.extend(request_ids)
        self._recent.update(request_ids)
        overflow = len(recent) - params.dedup_window
        if overflow > 0:
            self._recent.difference_update(recent[:overflow])
            del recent[:overflow]

    def _acknowledge(self, requests: list[WriteRequest], error: str | None) -> None:
        """Acknowledge in the background: the next flush need not wait for the callers."""
        self._acks_in_flight += 1
        ack = AckWritesInput([r.caller for r in requests], [r.request_id for r in requests], error)

        async def send() -> None:
            try:
                await workflow.execute_activity(
                    ACK_WRITES, ack, start_to_close_timeout=ACK_TIMEOUT, retry_policy=RETRY
                )
            finally:
                self._acks_in_flight -= 1

        asyncio.get_running_loop().create_task(send())

    async def _hand_over(self, params: BatcherInput) -> None:
        """Continue-as-new once signal handlers and acknowledgements are done."""
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and self._acks_in_flight == 0
        )
        self._state.stats.continued_as_new += 1
        workflow.continue_as_new(replace(params, state=self._state))

    def _report_sizes(self) -> None:
        meter = workflow.metric_meter()
        meter.create_gauge(metrics.BATCHER_PENDING, "write requests waiting for a flush").set(
            len(self._state.pending), self._labels
        )
        meter.create_gauge(metrics.BATCHER_DEDUP_WINDOW, "request ids in the dedup window").set(
            len(self._state.recent), self._labels
        )
