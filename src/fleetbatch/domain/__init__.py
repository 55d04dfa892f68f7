"""Pure types and rules: no I/O, no Temporal. Safe to import from workflow code."""

from fleetbatch.domain.breaker import BreakerCount, BreakerSeen
from fleetbatch.domain.durations import format_duration
from fleetbatch.domain.items import (
    TERMINAL,
    ChunkSpec,
    ItemRef,
    ItemStatus,
    Outcome,
    effect_id_for,
)
from fleetbatch.domain.names import closest, unknown_name
from fleetbatch.domain.rates import format_rate, parse_rate
from fleetbatch.domain.tolerance import check_tolerance, tolerance_exceeded

__all__ = [
    "TERMINAL",
    "BreakerCount",
    "BreakerSeen",
    "ChunkSpec",
    "ItemRef",
    "ItemStatus",
    "Outcome",
    "check_tolerance",
    "closest",
    "effect_id_for",
    "format_duration",
    "format_rate",
    "parse_rate",
    "tolerance_exceeded",
    "unknown_name",
]
