"""Activity names, inputs and outputs. Pure: workflow code imports this module.

Per-item data travels column by column (lists of ids, keys, …), not as a list
of small objects: the payload converter decodes a list of 500 strings far
faster than 500 dataclasses, and the JSON is smaller in history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fleetbatch.domain import BreakerCount, BreakerSeen, ChunkSpec, ItemRef, ItemStatus, Outcome

NEXT_CHUNKS = "items.next_chunks"
BEGIN_CHUNK = "items.begin_chunk"
RECORD_OUTCOMES = "items.record_outcomes"
END_CHUNK = "items.end_chunk"
FINISH_BATCH = "items.finish_batch"
STOP_BATCH = "items.stop_batch"
REPORT_TO_BREAKER = "breaker.report"
NOTIFY = "notify.webhook"

CHUNK_DONE_SIGNAL = "chunk_done"
"""The batch workflow's signal for a chunk's report (a ChunkResult): sent by the
chunk, or by the activity that records the chunk's last outcomes."""

INVALID_INPUT = "InvalidInput"
"""ApplicationError type for bad data; never retried."""
CIRCUIT_OPEN = "CircuitOpen"
"""ApplicationError type of a call held back by an open breaker; retried after the cool-down."""


@dataclass(frozen=True)
class NextChunksInput:
    batch_id: str
    after_id: int
    chunk_size: int
    max_chunks: int
    max_items: int | None = None
    """At most this many items (a wave's end): the last chunk may be smaller."""


@dataclass(frozen=True)
class Notice:
    """A batch's notification for its webhook."""

    batch_id: str
    url: str
    event: str
    """``wave_waiting``, ``gate_failed``, ``breaker_opened``, ``breaker_closed`` or
    ``finished``."""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NextChunksResult:
    chunks: list[ChunkSpec]


@dataclass(frozen=True)
class BeginChunkInput:
    batch_id: str
    chunk: ChunkSpec
    workflow_id: str
    lease: bool = True
    """Lease the items' keys (see ``store.leases``): items whose key another chunk
    holds wait for a later round."""


@dataclass(frozen=True)
class ItemColumns:
    """A chunk's items as parallel lists."""

    ids: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    effect_ids: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, refs: Sequence[ItemRef]) -> ItemColumns:
        return cls([r.id for r in refs], [r.key for r in refs], [r.effect_id for r in refs])

    def refs(self) -> list[ItemRef]:
        return [ItemRef(*row) for row in zip(self.ids, self.keys, self.effect_ids, strict=True)]


@dataclass(frozen=True)
class BeginChunkResult:
    columns: ItemColumns = field(default_factory=ItemColumns)
    blocked: int = 0
    """Open items whose key another chunk holds: they stay pending for a later try."""
    search_keys: list[str] | None = None
    """What the chunk lists in its ``FleetbatchKeys`` search attribute: the keyed
    hash of each item's key when a hash secret is configured (``keys.KeyHasher``),
    else None and the keys themselves."""

    def refs(self) -> list[ItemRef]:
        return self.columns.refs()

    def searchable(self) -> list[str]:
        """The values of the chunk's ``FleetbatchKeys`` search attribute."""
        return self.columns.keys if self.search_keys is None else self.search_keys


@dataclass(frozen=True)
class RecordOutcomesInput:
    item_ids: list[int]
    statuses: list[str]
    attempts: list[int]
    errors: list[str | None]
    release_leases_of: str | None = None
    """The chunk workflow whose key leases end with these outcomes, in the same write."""
    breaker: BreakerCount | None = None
    """The chunk's last breaker report, counted after the write."""
    report_to: str | None = None
    """The batch workflow to send ``report`` to once the outcomes are written."""
    report: ChunkResult | None = None
    answered_at: list[float | None] = field(default_factory=list)
    """Per outcome, when its last attempt was answered (``Outcome.answered_at``);
    empty when none was (a step that keeps no attempts sends nothing more)."""
    attempt_timeouts: list[float | None] = field(default_factory=list)
    """Per outcome, ``Outcome.attempt_timeout``; empty when no attempt timed out."""

    @classmethod
    def of(
        cls,
        outcomes: Sequence[Outcome],
        release_leases_of: str | None = None,
        *,
        breaker: BreakerCount | None = None,
        report_to: str | None = None,
        report: ChunkResult | None = None,
    ) -> RecordOutcomesInput:
        return cls(
            [o.item_id for o in outcomes],
            [o.status.value for o in outcomes],
            [o.attempts for o in outcomes],
            [o.error for o in outcomes],
            release_leases_of,
            breaker,
            report_to,
            report,
            optional_column([o.answered_at for o in outcomes]),
            optional_column([o.attempt_timeout for o in outcomes]),
        )

    def outcomes(self) -> list[Outcome]:
        """The outcomes; raises ValueError for a status that is not an ItemStatus, or
        columns of different lengths."""
        size = len(self.item_ids)
        return [
            Outcome(item_id, ItemStatus(status), attempts, error, answered, timeout)
            for item_id, status, attempts, error, answered, timeout in zip(
                self.item_ids,
                self.statuses,
                self.attempts,
                self.errors,
                self.answered_at or [None] * size,
                self.attempt_timeouts or [None] * size,
                strict=True,
            )
        ]


def optional_column(values: list[float | None]) -> list[float | None]:
    """``values``, or an empty list when every one is None (nothing to carry)."""
    return values if any(v is not None for v in values) else []


@dataclass(frozen=True)
class EndChunkInput:
    workflow_id: str
    reason: str
    """Why items the chunk leaves in flight failed (none when it recorded every outcome)."""


@dataclass
class ChunkResult:
    """A chunk's report to its batch: how many items it settled, by status."""

    workflow_id: str
    size: int
    counts: dict[str, int] = field(default_factory=dict)
    breaker: BreakerSeen | None = None
    """The chunk's breaker as its last write left it (set by ``record_outcomes``,
    which sends the report); None when that write counted no breaker."""


@dataclass(frozen=True)
class StopBatchInput:
    batch_id: str


@dataclass(frozen=True)
class FinishBatchInput:
    batch_id: str
    stop_status: str | None = None
    """``cancelled`` or ``aborted`` when the batch was stopped; pending items are cancelled."""
    stop_reason: str | None = None


@dataclass(frozen=True)
class FinishBatchResult:
    counts: dict[str, int] = field(default_factory=dict)
    open_items: int = 0
    """Items still pending; non-zero means the batch must go on."""
