"""How the web UI writes values and lays out its chart: zones on timestamps,
the status bar's segments, and the completions chart's columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleetbatch.api import chart, display
from fleetbatch.store import TimelineBucket as B

T0 = datetime(2026, 12, 2, 1, 35, 40, tzinfo=UTC)


def test_timestamps_carry_their_zone() -> None:
    cet = timezone(timedelta(hours=1))
    assert display.utc(datetime(2026, 12, 2, 2, 35, 44, tzinfo=cet)) == "2026-12-02 01:35:44 UTC"
    assert display.utc(datetime(2026, 12, 2, 1, 35, 44)) == "2026-12-02 01:35:44 UTC"
    assert display.iso(datetime(2026, 12, 2, 2, 35, 44, 999, tzinfo=cet)) == (
        "2026-12-02T01:35:44+00:00"
    )
    assert display.utc(None) == display.iso(None) == ""


def test_rates_per_minute_never_read_as_zero() -> None:
    assert display.per_minute(1200.0) == "1,200"
    assert display.per_minute(600.0) == "600"
    assert display.per_minute(0.2) == "0.2"
    assert display.per_minute(None) == ""


def test_segments_in_bar_order_as_shares_of_the_total() -> None:
    counts = {"pending": 1, "in_flight": 2, "succeeded": 4, "failed": 1, "cancelled": 0}
    segments = display.segments(counts, 8)
    assert [(s.status, s.count, s.percent) for s in segments] == [
        ("succeeded", 4, 50.0),
        ("failed", 1, 12.5),
        ("skipped", 0, 0.0),
        ("cancelled", 0, 0.0),
        ("in_flight", 2, 25.0),
        ("pending", 1, 12.5),
    ]
    assert segments[4].label == "in flight"
    assert all(s.percent == 0.0 for s in display.segments({}, 0))


def test_no_chart_before_anything_settled() -> None:
    assert chart.layout([]) is None
    assert chart.layout([B(T0, "pending", 3), B(T0, "succeeded", 0)]) is None


def test_columns_stack_statuses_and_keep_gaps() -> None:
    buckets = [
        B(T0, "succeeded", 6),
        B(T0, "failed", 2),
        B(T0 + timedelta(seconds=30), "skipped", 4),
        B(T0 + timedelta(seconds=30), "in_flight", 9),  # not settled: not drawn
    ]
    c = chart.layout(buckets)
    assert c is not None
    assert (c.step_seconds, c.peak, c.start) == (10, 8, T0)
    assert c.totals == {"succeeded": 6, "failed": 2, "skipped": 4, "cancelled": 0}
    # A short batch still spans MIN_COLUMNS buckets; the empty ones between stay.
    assert len(c.columns) == chart.MIN_COLUMNS
    assert c.end == T0 + timedelta(seconds=10 * chart.MIN_COLUMNS)
    assert [col.total for col in c.columns[:4]] == [8, 0, 0, 4]
    first = c.columns[0].rects
    assert [r.status for r in first] == ["succeeded", "failed"]
    # The tallest column fills the plot; succeeded at the bottom, failed on top of it.
    plot = c.bottom - c.top
    assert first[0].height + first[1].height == pytest.approx(plot)
    assert first[0].y + first[0].height == pytest.approx(c.bottom)
    assert first[1].y + first[1].height == pytest.approx(first[0].y)
    assert c.columns[3].rects[0].height == pytest.approx(plot / 2)


def test_a_long_batch_merges_buckets_into_at_most_max_columns() -> None:
    hour = [B(T0 + timedelta(seconds=10 * i), "succeeded", 1) for i in range(360)]
    c = chart.layout(hour)
    assert c is not None
    assert c.step_seconds == 60  # 360 buckets of 10 s in 60 columns of a minute each
    assert len(c.columns) == chart.MAX_COLUMNS
    assert {col.total for col in c.columns} == {6}
    assert c.total == 360
    assert c.columns[-1].rects[0].x + c.columns[-1].rects[0].width <= c.right
