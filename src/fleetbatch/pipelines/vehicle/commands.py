"""The command types fleetbatch can send, with their per-type rules.

The built-in types follow the original design's two families (vehicle
commands at 600/min, back-office updates at 3,000/min). Settings may change
any field of a built-in type or add new types (``FLEETBATCH_COMMANDS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fleetbatch.domain.names import unknown_name
from fleetbatch.errors import UnknownCommandError


@dataclass(frozen=True)
class CommandType:
    """One kind of command and how fleetbatch treats it."""

    name: str
    domain: str
    """Bus subject suffix: which downstream domain receives the command."""
    requires_check_digit: bool = True
    response_timeout_seconds: float = 30.0
    max_attempts: int = 3
    rate_per_second: float | None = None
    """Commands per second for this type across every worker and batch; None is no limit."""
    chunk_size: int | None = None
    """Default items per chunk workflow for this type; the settings' default when None."""
    max_in_flight: int | None = None
    """Default window of chunk workflows per batch; the settings' default when None."""
    policy: str | None = None
    """The rollout policy (``domain.policies``) of a new batch whose submit names none
    and gives no rollout option; None sends it at once."""

    @property
    def publishes_in_chunk(self) -> bool:
        """No rate, so no rate-limited queue: chunks publish in a local activity."""
        return self.rate_per_second is None


VEHICLE_RATE = 600 / 60
"""The original design's 600 vehicle commands per minute."""


COMMANDS: dict[str, CommandType] = {
    c.name: c
    for c in (
        CommandType("lock_doors", "vehicle", rate_per_second=VEHICLE_RATE),
        CommandType("unlock_doors", "vehicle", rate_per_second=VEHICLE_RATE),
        CommandType("flash_lights", "vehicle", rate_per_second=VEHICLE_RATE),
        CommandType("honk_horn", "vehicle", rate_per_second=VEHICLE_RATE),
        CommandType(
            "ota_update",
            "vehicle",
            response_timeout_seconds=120.0,
            rate_per_second=VEHICLE_RATE,
            policy="cautious-ota",
        ),
        CommandType(
            "backoffice_update",
            domain="backoffice",
            requires_check_digit=False,
            response_timeout_seconds=10.0,
            rate_per_second=3000 / 60,
        ),
    )
}
"""The built-in command types."""


def get_command(name: str, types: Mapping[str, CommandType] = COMMANDS) -> CommandType:
    """The command type called ``name``.

    Raises:
        UnknownCommandError: when no such type is configured (with the unknown_name known
            name, when one is close).
    """
    try:
        return types[name]
    except KeyError:
        raise UnknownCommandError(
            unknown_name("command", name, sorted(types), "known commands")
        ) from None


def publish_task_queue(task_queue: str, command: str) -> str:
    """The activity task queue a command type's publishes run on; its rate limit is
    the command type's rate."""
    return f"{task_queue}-publish-{command}"
