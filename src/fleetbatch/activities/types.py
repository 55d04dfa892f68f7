"""Activity names, inputs and outputs. Pure: workflow code imports this module."""

from __future__ import annotations

from dataclasses import dataclass, field

from fleetbatch.domain import ChunkSpec, ItemRef, Outcome

NEXT_CHUNKS = "items.next_chunks"
BEGIN_CHUNK = "items.begin_chunk"
RECORD_OUTCOMES = "items.record_outcomes"
FINISH_BATCH = "items.finish_batch"
CHECK_CONSENT = "consent.check"
PUBLISH_COMMANDS = "dispatch.publish_commands"

INVALID_INPUT = "InvalidInput"
"""ApplicationError type for bad data; never retried."""


@dataclass(frozen=True)
class NextChunksInput:
    batch_id: str
    after_id: int
    chunk_size: int
    max_chunks: int


@dataclass(frozen=True)
class NextChunksResult:
    chunks: list[ChunkSpec]


@dataclass(frozen=True)
class BeginChunkInput:
    batch_id: str
    chunk: ChunkSpec
    workflow_id: str


@dataclass(frozen=True)
class BeginChunkResult:
    items: list[ItemRef]


@dataclass(frozen=True)
class ConsentInput:
    vins: list[str]


@dataclass(frozen=True)
class ConsentResult:
    denied: list[str]
    """VINs whose owners have not consented."""


@dataclass(frozen=True)
class PublishInput:
    domain: str
    command: str
    batch_id: str
    reply_to: str
    attempt: int
    items: list[ItemRef]


@dataclass(frozen=True)
class RecordOutcomesInput:
    outcomes: list[Outcome]


@dataclass(frozen=True)
class FinishBatchInput:
    batch_id: str


@dataclass(frozen=True)
class FinishBatchResult:
    counts: dict[str, int] = field(default_factory=dict)
    open_items: int = 0
    """Items still pending or in flight; non-zero means the batch must go on."""
