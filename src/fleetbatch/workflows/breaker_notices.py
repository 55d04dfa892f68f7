"""Which breaker changes a batch notifies its webhook of: each opening once, and
the closing after it. Deterministic: state in, decisions out.

Chunks report the breaker as their last write left it (``ChunkResult.breaker``),
and reports arrive in any order: one sent late may show an opening already
noticed, or a breaker closed before the opening the batch knows of. An opening is
named by when it opened, so neither is noticed twice or out of turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fleetbatch.domain import BreakerSeen

BREAKER_OPENED = "breaker_opened"
BREAKER_CLOSED = "breaker_closed"


@dataclass
class BreakerNotices:
    """What the batch noticed of its breakers; part of the state carried across runs."""

    opened: dict[str, float] = field(default_factory=dict)
    """Per breaker key, when the last opening noticed opened."""
    open: list[str] = field(default_factory=list)
    """Keys noticed open and not yet noticed closed."""


def change(noticed: BreakerNotices, seen: BreakerSeen) -> tuple[str, dict[str, Any]] | None:
    """The notice (event, details) that ``seen`` calls for, if any; records it."""
    last = noticed.opened.get(seen.key)
    if seen.open:
        if last is not None and seen.since <= last:
            return None  # this opening (or an older one) was noticed
        noticed.opened[seen.key] = seen.since
        if seen.key not in noticed.open:
            noticed.open.append(seen.key)
        return BREAKER_OPENED, {"breaker": seen.key, "opened_at": seen.since}
    # Closed: its window began after the noticed opening only if it closed since.
    if seen.key in noticed.open and last is not None and seen.since > last:
        noticed.open.remove(seen.key)
        return BREAKER_CLOSED, {"breaker": seen.key}
    return None
