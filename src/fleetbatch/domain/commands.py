"""The command types fleetbatch can send, with their per-type rules.

The built-in types follow the original design's two families (vehicle
commands at 600/min, back-office updates at 3,000/min). Settings may change
any field of a built-in type or add new types (``FLEETBATCH_COMMANDS``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from fleetbatch.errors import ConfigError, UnknownCommandError

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*", re.IGNORECASE)
UNLIMITED = ("off", "none", "unlimited", "default")


def parse_rate(text: str | float | None) -> float | None:
    """Items per second from ``"600/min"``, ``"10/s"``, ``"10"`` or ``10``;
    None for ``"off"`` (no limit).

    Raises:
        ConfigError: the text is not a rate, or the rate is not positive.
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        value, unit = float(text), "s"
    else:
        if text.strip().lower() in UNLIMITED:
            return None
        match = _RATE.fullmatch(text)
        if match is None:
            raise ConfigError(
                f"invalid rate {text!r}: write items per second or minute, "
                "like '10/s' or '600/min', or 'off' for no limit"
            )
        value, unit = float(match[1]), (match[2] or "s").lower()
    if value <= 0:
        raise ConfigError(f"invalid rate {text!r}: a rate must be above zero (or 'off')")
    return value / 60 if unit.startswith("m") else value


def format_rate(per_second: float | None) -> str:
    """A rate as an operator reads it."""
    if per_second is None:
        return "off"
    per_minute = per_second * 60
    if per_second < 1 or (per_minute.is_integer() and not per_second.is_integer()):
        return f"{per_minute:g}/min"
    return f"{per_second:g}/s"


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
    publish_slice: int = 10
    """Items per publish activity: the server's rate limit counts activities, so a
    slice of n items is limited at rate / n. Smaller slices spread items more evenly."""
    chunk_size: int | None = None
    """Default items per chunk workflow for this type; the settings' default when None."""
    max_in_flight: int | None = None
    """Default window of chunk workflows per batch; the settings' default when None."""

    @property
    def publishes_in_chunk(self) -> bool:
        """No rate, so no rate-limited queue: chunks publish in a local activity."""
        return self.rate_per_second is None

    def tasks_per_second(self, items_per_second: float) -> float:
        """The publish queue's activity rate for an item rate: each activity carries
        ``publish_slice`` items."""
        return items_per_second / self.publish_slice

    def items_per_second(self, tasks_per_second: float) -> float:
        """The item rate a publish queue's activity rate allows."""
        return tasks_per_second * self.publish_slice


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
        UnknownCommandError: when no such type is configured.
    """
    try:
        return types[name]
    except KeyError:
        known = ", ".join(sorted(types))
        raise UnknownCommandError(f"unknown command {name!r}; known commands: {known}") from None
