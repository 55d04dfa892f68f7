"""ETAs and durations in the two largest units: ``format_duration``."""

from __future__ import annotations

import math

import pytest

from fleetbatch.domain import format_duration


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (math.inf, "-"),
        (math.nan, "-"),
        (-5.0, "0s"),
        (0.0, "0s"),
        (0.4, "0s"),
        (0.6, "1s"),
        (59.4, "59s"),
        (59.6, "1m 00s"),
        (60, "1m 00s"),
        (65, "1m 05s"),
        (750, "12m 30s"),
        (3599, "59m 59s"),
        (3600, "1h 00m"),
        (3720, "1h 02m"),
        (3749, "1h 02m"),  # rounded to the minute
        (3750, "1h 02m"),  # half to even: 62.5 minutes
        (3751, "1h 03m"),
        (86_369, "23h 59m"),
        (86_399, "1d 00h"),  # 1,440 minutes once rounded: a day
        (90_000, "1d 01h"),
        (1_000_000, "11d 14h"),
    ],
)
def test_format_duration(seconds: float | None, shown: str) -> None:
    assert format_duration(seconds) == shown
