"""The batch page's chart of completions over time: stacked columns per terminal status,
laid out here and drawn as server-side SVG by ``templates/_chart.html`` (no script).

A long batch has thousands of 10-second buckets; they are merged into at most
``MAX_COLUMNS`` columns of a whole number of buckets each, so a column stays wide
enough to see and to point at. Empty columns stay: a pause shows as a gap. A short
batch's axis still spans ``MIN_COLUMNS`` buckets, so one bucket is not one wide slab.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleetbatch.api.display import BAR_ORDER
from fleetbatch.domain import TERMINAL
from fleetbatch.store import TimelineBucket
from fleetbatch.store.counts import BUCKET_SECONDS

MAX_COLUMNS = 60
MIN_COLUMNS = 12
WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24
STACK = [s.value for s in BAR_ORDER if s in TERMINAL]
"""Bottom to top: succeeded, failed, skipped, cancelled."""


@dataclass(frozen=True)
class Rect:
    status: str
    n: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Column:
    start: datetime
    total: int
    counts: dict[str, int]
    rects: list[Rect]


@dataclass(frozen=True)
class Chart:
    columns: list[Column]
    step_seconds: int
    peak: int
    """The tallest column's items: the y axis' top."""
    start: datetime
    end: datetime
    totals: dict[str, int]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    right: int = WIDTH - RIGHT

    @property
    def total(self) -> int:
        return sum(self.totals.values())


def layout(buckets: Iterable[TimelineBucket], bucket_seconds: int = BUCKET_SECONDS) -> Chart | None:
    """The chart of the store's timeline buckets, or None when nothing has settled yet."""
    per_start: dict[datetime, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STACK, 0))
    for b in buckets:
        if b.status in STACK and b.n > 0:
            per_start[b.start][b.status] += b.n
    if not per_start:
        return None
    first, last = min(per_start), max(per_start)
    span = int((last - first).total_seconds() // bucket_seconds) + 1
    factor = math.ceil(span / MAX_COLUMNS)
    step = bucket_seconds * factor
    columns_n = max(MIN_COLUMNS, math.ceil(span / factor))
    merged = [dict.fromkeys(STACK, 0) for _ in range(columns_n)]
    for start, counts in per_start.items():
        column = merged[int((start - first).total_seconds() // step)]
        for status, n in counts.items():
            column[status] += n
    peak = max(sum(c.values()) for c in merged)
    totals = {s: sum(c[s] for c in merged) for s in STACK}
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    width = plot_w / len(merged)
    gap = 1.0 if width > 4 else 0.0
    columns = []
    for i, counts in enumerate(merged):
        x, base, rects = LEFT + i * width, float(HEIGHT - BOTTOM), []
        for status in STACK:
            if counts[status]:
                h = plot_h * counts[status] / peak
                base -= h
                rects.append(Rect(status, counts[status], x, base, width - gap, h))
        start = first + timedelta(seconds=i * step)
        columns.append(Column(start, sum(counts.values()), counts, rects))
    end = first + timedelta(seconds=len(merged) * step)
    return Chart(columns, step, peak, first, end, totals)
