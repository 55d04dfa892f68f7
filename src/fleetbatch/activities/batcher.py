"""The write batcher's activities: hand a request to its shard's batcher, write a
flush in one store call, and acknowledge the callers."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch import metrics
from fleetbatch.activities.batcher_types import (
    ACK_WRITES,
    BATCHER_WORKFLOW,
    FLUSH_WRITES,
    SUBMIT_WRITE,
    WRITE_ACKED_SIGNAL,
    WRITE_SIGNAL,
    AckWritesInput,
    AckWritesResult,
    BatcherConfig,
    FlushMetrics,
    FlushWritesInput,
    SubmitWriteInput,
    WriteAck,
    batcher_workflow_id,
    shard_for,
)
from fleetbatch.activities.items import checked_outcomes
from fleetbatch.activities.types import INVALID_INPUT
from fleetbatch.store import Store

log = logging.getLogger(__name__)


def _record_flush(m: FlushMetrics) -> None:
    meter = activity.metric_meter()
    labels = {"shard": str(m.shard)}
    meter.create_counter(metrics.BATCHER_REQUESTS, "write requests received").add(
        m.received, labels
    )
    meter.create_counter(metrics.BATCHER_DUPLICATES, "write requests dropped as duplicates").add(
        m.duplicates, labels
    )
    meter.create_counter(metrics.BATCHER_CONTINUED, "batcher runs continued as new").add(
        m.continued, labels
    )
    meter.create_counter(metrics.BATCHER_FLUSHES, "bulk writes").add(
        1, {**labels, "reason": m.reason}
    )
    meter.create_histogram_timedelta(
        metrics.BATCHER_FLUSH_LATENCY, "oldest request's arrival to its flush written", "s"
    ).record(timedelta(seconds=max(time.time() - m.oldest_arrival, 0.0)), labels)


BATCHER_MEMO = "description"
"""The batcher's memo key: what it is, for whoever finds it idle in the Web UI."""


def batcher_summary(task_queue: str, shard: int) -> str:
    """The one line the Temporal Web UI shows for a batcher."""
    return (
        f"write batcher shard {shard} of task queue {task_queue}: flushes many workflows' "
        "outcome writes; idle between flushes by design"
    )


def batcher_details(task_queue: str, shard: int, config: BatcherConfig) -> str:
    """The batcher's details in the Web UI (Markdown)."""
    return (
        f"**Write batcher, shard {shard} of task queue `{task_queue}`.** Per-item chunk "
        "workflows (chunk size 1, `FLEETBATCH_WRITE_SHARDS` > 0) signal their items' "
        "outcomes here (`write`) instead of writing to the database one by one. It "
        f"writes up to {config.max_batch} of them in one statement when that many wait "
        f"or when the oldest has waited {config.max_wait_seconds:g} s, acknowledges each "
        "caller with a `write_acked` signal, and continues as new every "
        f"{config.max_requests_per_run} requests.\n\n"
        "Between flushes it waits for a signal or its timer, so it often looks idle, "
        "and it keeps running when no batch does: that is by design, not a stuck "
        "workflow. Its `stats` query shows the requests pending and the flushes made."
    )


class BatcherActivities:
    """Built with the store the batchers write to and the client they and their
    callers are signalled through; batchers run on ``task_queue``."""

    def __init__(
        self, store: Store, client: Client, task_queue: str, config: BatcherConfig | None = None
    ) -> None:
        self._store = store
        self._client = client
        self._task_queue = task_queue
        self._config = config or BatcherConfig()

    @activity.defn(name=SUBMIT_WRITE)
    async def submit(self, params: SubmitWriteInput) -> str:
        """Signal-with-start the request's shard; returns the batcher's workflow id.

        Raises:
            ApplicationError: non-retryable ``InvalidInput`` for bad outcomes or shards < 1,
                so bad data never reaches a batcher's shared flush.
        """
        checked_outcomes(params.request.write)
        if params.shards < 1:
            raise ApplicationError(
                f"shards must be at least 1, got {params.shards}",
                type=INVALID_INPUT,
                non_retryable=True,
            )
        shard = shard_for(params.key, params.shards)
        workflow_id = batcher_workflow_id(self._task_queue, shard)
        summary = batcher_summary(self._task_queue, shard)
        try:
            await self._client.start_workflow(
                BATCHER_WORKFLOW,
                self._config.start_input(shard),
                id=workflow_id,
                task_queue=self._task_queue,
                start_signal=WRITE_SIGNAL,
                start_signal_args=[params.request],
                # The Web UI shows these on the run started here; the memo is carried
                # to every run that continues it as new (the summary is not).
                static_summary=summary,
                static_details=batcher_details(self._task_queue, shard, self._config),
                memo={BATCHER_MEMO: summary},
            )
        except WorkflowAlreadyStartedError:
            # Seen while a batcher hands over to its next run (continue-as-new):
            # the new run exists, so the request goes to it as a plain signal.
            await self._client.get_workflow_handle(workflow_id).signal(WRITE_SIGNAL, params.request)
        return workflow_id

    @activity.defn(name=FLUSH_WRITES)
    async def flush(self, params: FlushWritesInput) -> int:
        """Write every request of the flush in one store call, then count it in the
        batcher's metrics; returns the outcomes written."""
        try:
            outcomes = checked_outcomes(params.outcomes)
        except ApplicationError:
            _record_flush(params.metrics)  # not retried: this flush ends here
            raise
        await self._store.items.record_outcomes(outcomes, params.release_leases_of)
        _record_flush(params.metrics)
        return len(outcomes)

    @activity.defn(name=ACK_WRITES)
    async def ack(self, params: AckWritesInput) -> AckWritesResult:
        """Signal each caller its acknowledgement, all at once. A caller that is gone
        counts as done; if any other signal failed, the activity fails after trying
        every caller and is retried (callers ignore an acknowledgement they already have).
        """
        pairs = list(zip(params.callers, params.request_ids, strict=True))
        results = await asyncio.gather(
            *(self._ack_one(caller, rid, params.error) for caller, rid in pairs)
        )
        failed = [r for r in results if isinstance(r, str)]
        if failed:
            raise ApplicationError(
                f"{len(failed)} of {len(pairs)} acknowledgements failed, first: {failed[0]}"
            )
        return AckWritesResult(acked=sum(r is True for r in results), gone=results.count(False))

    async def _ack_one(self, caller: str, request_id: str, error: str | None) -> bool | str:
        """True when signalled, False when the caller is gone, else the error."""
        try:
            await self._client.get_workflow_handle(caller).signal(
                WRITE_ACKED_SIGNAL, WriteAck(request_id, error)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                log.info("write acknowledgement for %s: caller %s is gone", request_id, caller)
                return False
            return f"{caller}: {exc}"
        return True
