"""The command types fleetbatch can send, with their per-type rules.

A later configuration layer may add types; the built-in ones follow the
original design's two families (vehicle commands, back-office updates).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    chunk_size: int | None = None
    """Default items per chunk workflow for this type; the settings' default when None."""


COMMANDS: dict[str, CommandType] = {
    c.name: c
    for c in (
        CommandType("lock_doors", domain="vehicle"),
        CommandType("unlock_doors", domain="vehicle"),
        CommandType("flash_lights", domain="vehicle"),
        CommandType("honk_horn", domain="vehicle"),
        CommandType("ota_update", domain="vehicle", response_timeout_seconds=120.0),
        CommandType(
            "backoffice_update",
            domain="backoffice",
            requires_check_digit=False,
            response_timeout_seconds=10.0,
        ),
    )
}


def get_command(name: str) -> CommandType:
    """The command type called ``name``.

    Raises:
        UnknownCommandError: when no such type is configured.
    """
    try:
        return COMMANDS[name]
    except KeyError:
        known = ", ".join(sorted(COMMANDS))
        raise UnknownCommandError(f"unknown command {name!r}; known commands: {known}") from None
