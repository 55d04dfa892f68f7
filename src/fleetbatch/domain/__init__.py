"""Pure types and rules: no I/O, no Temporal. Safe to import from workflow code."""

from fleetbatch.domain.breaker import BreakerCount
from fleetbatch.domain.commands import (
    COMMANDS,
    CommandType,
    format_rate,
    get_command,
    parse_rate,
)
from fleetbatch.domain.items import (
    TERMINAL,
    ChunkSpec,
    ItemRef,
    ItemStatus,
    Outcome,
    command_id_for,
)
from fleetbatch.domain.tolerance import check_tolerance, tolerance_exceeded
from fleetbatch.domain.vin import vin_problem

__all__ = [
    "COMMANDS",
    "TERMINAL",
    "BreakerCount",
    "ChunkSpec",
    "CommandType",
    "ItemRef",
    "ItemStatus",
    "Outcome",
    "check_tolerance",
    "command_id_for",
    "format_rate",
    "get_command",
    "parse_rate",
    "tolerance_exceeded",
    "vin_problem",
]
