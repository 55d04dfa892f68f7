"""The batch workflow's rate ramp (``domain.ramp``): how large the chunks it pages
are, when the next one may start, and each one's publish slot. Deterministic:
counts and workflow time in, decisions out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fleetbatch.domain.ramp import (
    CATCH_UP_SECONDS,
    LEAD_SECONDS,
    NOTIFIED,
    RateRamp,
    chunk_limit,
    chunks_to_page,
    ramp_rate,
)


class PacedState(Protocol):
    """What the pacer reads and keeps of the batch's state (``BatchState``)."""

    counts: dict[str, int]
    ramp_notified: int
    ramp_next_at: float


@dataclass
class Pacer:
    """Paces a batch's chunk starts under its rollout's rate ramp."""

    ramp: RateRamp
    state: PacedState
    """The batch's state: the pacer's schedule carries across runs with it."""

    def rate(self) -> float:
        """Items per second the ramp allows now: from counts, never from time alone."""
        return ramp_rate(self.ramp, self._counted())

    def page(self, size: int, chunks: int) -> tuple[int, int]:
        """The chunk size and number of chunks to page, at most ``size`` and ``chunks``:
        chunks that suit the current rate, as many as it may start while catching up."""
        counted = self._counted()
        size = chunk_limit(self.ramp, counted, size)
        return size, min(chunks, chunks_to_page(self.ramp, counted, size))

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until the next chunk may start (not above zero: now).
        It starts ahead of its slot, and its publish waits for the slot, on time."""
        return self.state.ramp_next_at - LEAD_SECONDS - now

    def slot(self, size: int, now: float) -> tuple[float, float]:
        """A chunk of ``size`` starts at ``now``: its slot in the schedule (when it may
        publish, and at what rate); the next chunk's slot is ``size / rate`` later (a
        token bucket in workflow time). Slots follow each other, so a timer that fires
        late does not slow the rate; a batch held back longer (its window, a pause)
        catches up with at most ``CATCH_UP_SECONDS`` of its rate."""
        s = self.state
        due = max(s.ramp_next_at, now - CATCH_UP_SECONDS) if s.ramp_next_at else now
        rate = self.rate()
        s.ramp_next_at = due + size / rate
        s.ramp_notified += size
        return due, rate

    def _counted(self) -> int:
        if self.ramp.counts == NOTIFIED:
            return self.state.ramp_notified
        return self.state.counts.get("succeeded", 0)
