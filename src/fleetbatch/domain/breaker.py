"""What a circuit breaker counts: how one chunk's commands of a type fared."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BreakerCount:
    """One attempt of one chunk, as its command type's breaker counts it."""

    command: str
    successes: int
    failures: int
    """Commands the domain rejected or did not answer in time."""
    probe: bool = False
    """The chunk was the half-open breaker's probe."""
