"""What a circuit breaker counts: how one chunk's calls to a downstream fared."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BreakerCount:
    """One attempt of one chunk, as the breaker of its key counts it."""

    key: str
    """The breaker's name: the downstream the pipeline protects with it."""
    successes: int
    failures: int
    """Calls the downstream rejected or did not answer in time."""
    probe: bool = False
    """The chunk was the half-open breaker's probe."""
