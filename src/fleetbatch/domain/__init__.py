"""Pure types and rules: no I/O, no Temporal. Safe to import from workflow code."""

from fleetbatch.domain.breaker import BreakerCount
from fleetbatch.domain.items import (
    TERMINAL,
    ChunkSpec,
    ItemRef,
    ItemStatus,
    Outcome,
    effect_id_for,
)
from fleetbatch.domain.rates import format_rate, parse_rate
from fleetbatch.domain.tolerance import check_tolerance, tolerance_exceeded

__all__ = [
    "TERMINAL",
    "BreakerCount",
    "ChunkSpec",
    "ItemRef",
    "ItemStatus",
    "Outcome",
    "check_tolerance",
    "effect_id_for",
    "format_rate",
    "parse_rate",
    "tolerance_exceeded",
]
