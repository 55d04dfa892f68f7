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


@dataclass(frozen=True)
class BreakerSeen:
    """A breaker's state as a chunk's write left it, for the chunk's batch."""

    key: str
    state: str
    """``closed``, ``open`` or ``half_open``."""
    since: float
    """Open or half-open: when it opened, which names the opening; closed: when its
    window began (at the latest, when it closed). Seconds since the epoch, from the
    store's clock."""

    @property
    def open(self) -> bool:
        """Open, or half-open (letting one probe through): calls wait."""
        return self.state != "closed"
