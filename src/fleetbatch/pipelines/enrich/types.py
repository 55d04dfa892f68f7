"""The enrichment pipeline's activity and workflow names, inputs and outputs. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

PROCESS_CHUNK = "enrich.process_chunk"
WORKFLOW_NAME = "EnrichChunkWorkflow"
SOURCES = ("service", "cache", "stale_cache", "fallback")
"""Where a user's record came from; ``fallback`` is the record written on failure."""


@dataclass
class EnrichStep:
    """The enrichment step's options, carried in the batch's input."""

    format: str = "jsonl"
    """Output files: ``jsonl`` or ``csv``."""
    heartbeat_timeout_seconds: float = 15.0
    start_to_close_seconds: float = 300.0


@dataclass(frozen=True)
class ProcessChunkInput:
    batch_id: str
    workflow_id: str
    first_id: int
    last_id: int
    item_ids: list[int]
    format: str = "jsonl"


@dataclass(frozen=True)
class ProcessChunkResult:
    counts: dict[str, int] = field(default_factory=dict)
    """Items this activity recorded, by status (what an earlier attempt recorded too)."""
    sources: dict[str, int] = field(default_factory=dict)
    """Items by where their record came from (``SOURCES``)."""
    file: str = ""
    """The chunk's output file, relative to the batch's output directory."""
    resumed_from: int = 0
    """The index the attempt started at (its heartbeat details said where to go on)."""
