"""Pure types and rules: no I/O, no Temporal. Safe to import from workflow code."""

from fleetbatch.domain.commands import COMMANDS, CommandType, get_command
from fleetbatch.domain.items import (
    TERMINAL,
    ChunkSpec,
    ItemRef,
    ItemStatus,
    Outcome,
    command_id_for,
)
from fleetbatch.domain.vin import vin_problem

__all__ = [
    "COMMANDS",
    "TERMINAL",
    "ChunkSpec",
    "CommandType",
    "ItemRef",
    "ItemStatus",
    "Outcome",
    "command_id_for",
    "get_command",
    "vin_problem",
]
