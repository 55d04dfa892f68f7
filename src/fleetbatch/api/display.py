"""How the web UI writes values: timestamps with their zone, rates and the status bar
(durations are ``domain.format_duration``'s, as everywhere).

Registered as Jinja filters and globals in ``context.templates()``; ``static/batch.js``
writes the same shapes when it updates a page live.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fleetbatch.domain import ItemStatus

BAR_ORDER = (
    ItemStatus.SUCCEEDED,
    ItemStatus.FAILED,
    ItemStatus.SKIPPED,
    ItemStatus.CANCELLED,
    ItemStatus.IN_FLIGHT,
    ItemStatus.PENDING,
)
"""The progress bar's segments left to right: settled outcomes first, then what is to come."""


def utc(value: datetime | None) -> str:
    """``2026-12-02 01:35:44 UTC``; a naive value is taken as UTC (the store writes UTC)."""
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{aware:%Y-%m-%d %H:%M:%S} UTC"


def iso(value: datetime | None) -> str:
    """ISO 8601 with the offset, for ``<time datetime=…>``."""
    if value is None:
        return ""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat(timespec="seconds")


def per_minute(value: float | None) -> str:
    """A rate in items per minute as shown: ``1,200``; one decimal under 10 (``0.2``), so
    a slow ramp never reads as 0."""
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    percent: float
    """Share of the batch's items, 0-100."""

    @property
    def label(self) -> str:
        return self.status.replace("_", " ")


def segments(counts: dict[str, int], total: int) -> list[Segment]:
    """The bar's segments in ``BAR_ORDER``, every status present (zero-width when none)."""
    return [
        Segment(
            s.value,
            counts.get(s.value, 0),
            round(100.0 * counts.get(s.value, 0) / total, 3) if total else 0.0,
        )
        for s in BAR_ORDER
    ]
