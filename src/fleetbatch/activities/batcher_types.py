"""The write batcher's names, inputs, signals and shard routing. Pure: workflow code
imports this module, and so do the activities that start and answer the batchers.

Callers send a ``WriteRequest`` to the batcher of their shard (signal-with-start);
the batcher writes many requests in one store call and answers each caller with a
``WriteAck`` signal.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetbatch.activities.types import RecordOutcomesInput, optional_column

BATCHER_WORKFLOW = "WriteBatcherWorkflow"
WRITE_SIGNAL = "write"
"""The batcher's signal: one ``WriteRequest``."""
WRITE_ACKED_SIGNAL = "write_acked"
"""The caller's signal: one ``WriteAck``."""
STATS_QUERY = "stats"

SUBMIT_WRITE = "batcher.submit"
FLUSH_WRITES = "batcher.flush"
ACK_WRITES = "batcher.ack"


def shard_for(key: str, shards: int) -> int:
    """The shard of ``key``: a stable hash (CRC-32, the same in every process and
    Python version, unlike ``hash()``), so one key's writes always meet in one batcher."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, got {shards}")
    return zlib.crc32(key.encode()) % shards


def batcher_workflow_id(task_queue: str, shard: int) -> str:
    """The stable id of a shard's batcher; one set of batchers per task queue."""
    return f"{task_queue}-batcher-{shard}"


@dataclass
class WriteRequest:
    request_id: str
    """Stable across the caller's retries: a request already pending or recently
    written is dropped (and acknowledged again if written)."""
    caller: str
    """The workflow id the acknowledgement is signalled to."""
    write: RecordOutcomesInput


@dataclass
class WriteAck:
    request_id: str
    error: str | None = None
    """Why the write was not made; None when it was."""


@dataclass
class BatcherStats:
    """Counts over every run of a batcher (carried across continue-as-new)."""

    received: int = 0
    duplicates_dropped: int = 0
    flushes: int = 0
    flushed_by_size: int = 0
    flushed_by_time: int = 0
    written: int = 0
    """Requests written (each once)."""
    failed: int = 0
    """Requests whose write failed for good (acknowledged with an error)."""
    continued_as_new: int = 0
    last_flush_latency_seconds: float = 0.0
    """The last flush: its oldest request's arrival to the write done."""
    max_flush_latency_seconds: float = 0.0


@dataclass
class BatcherState:
    """What one run hands to the next: pending requests and the dedup window only."""

    pending: list[WriteRequest] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)
    """Each pending request's arrival, unix seconds of workflow time."""
    recent: list[str] = field(default_factory=list)
    """Ids of the last written requests, oldest first, at most ``dedup_window``."""
    stats: BatcherStats = field(default_factory=BatcherStats)
    reported: BatcherStats = field(default_factory=BatcherStats)
    """The counters as far as the flush activities have put them into metrics."""


@dataclass
class BatcherInput:
    shard: int
    max_batch: int = 100
    max_wait_seconds: float = 2.0
    dedup_window: int = 5000
    max_requests_per_run: int = 1000
    """Continue-as-new after this many requests, or earlier when Temporal suggests it."""
    state: BatcherState | None = None


@dataclass(frozen=True)
class BatcherConfig:
    """How a batcher started by this worker flushes and hands over (see BatcherInput)."""

    max_batch: int = 100
    max_wait_seconds: float = 2.0
    dedup_window: int = 5000
    max_requests_per_run: int = 1000

    def start_input(self, shard: int) -> BatcherInput:
        return BatcherInput(
            shard,
            max_batch=self.max_batch,
            max_wait_seconds=self.max_wait_seconds,
            dedup_window=self.dedup_window,
            max_requests_per_run=self.max_requests_per_run,
        )


@dataclass
class BatcherStatus:
    """The batcher's ``stats`` query."""

    shard: int
    pending: int
    dedup_window_size: int
    acks_in_flight: int
    stats: BatcherStats


@dataclass(frozen=True)
class SubmitWriteInput:
    request: WriteRequest
    key: str
    """Routes the request: its shard is ``shard_for(key, shards)``."""
    shards: int


@dataclass(frozen=True)
class FlushMetrics:
    """What the flush activity adds to the batcher's metrics once it has written.
    Counted there, not in workflow code, so that a workflow task the server
    rejects and re-runs (as when signals arrive during a hand-over) counts once."""

    shard: int = 0
    reason: str = "size"
    """``size`` or ``time``."""
    oldest_arrival: float = 0.0
    """Unix seconds the flush's oldest request arrived: its latency starts there."""
    received: int = 0
    """Requests received since the last flush's report (duplicates included)."""
    duplicates: int = 0
    continued: int = 0
    """Continue-as-new hand-overs since the last report."""


@dataclass(frozen=True)
class FlushWritesInput:
    """Many requests' writes as one: their outcomes' columns end to end."""

    outcomes: RecordOutcomesInput
    release_leases_of: list[str] = field(default_factory=list)
    metrics: FlushMetrics = field(default_factory=FlushMetrics)

    @classmethod
    def of(
        cls, requests: Sequence[WriteRequest], metrics: FlushMetrics | None = None
    ) -> FlushWritesInput:
        writes = [r.write for r in requests]
        return cls(
            RecordOutcomesInput(
                [i for w in writes for i in w.item_ids],
                [s for w in writes for s in w.statuses],
                [a for w in writes for a in w.attempts],
                [e for w in writes for e in w.errors],
                answered_at=optional_column(
                    [a for w in writes for a in w.answered_at or [None] * len(w.item_ids)]
                ),
                attempt_timeouts=optional_column(
                    [t for w in writes for t in w.attempt_timeouts or [None] * len(w.item_ids)]
                ),
            ),
            [w.release_leases_of for w in writes if w.release_leases_of is not None],
            metrics or FlushMetrics(),
        )


@dataclass(frozen=True)
class AckWritesInput:
    callers: list[str]
    request_ids: list[str]
    error: str | None = None


@dataclass(frozen=True)
class AckWritesResult:
    acked: int
    gone: int
    """Callers that no longer run (finished, timed out, terminated): nothing to tell."""
