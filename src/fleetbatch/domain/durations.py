"""Durations as operators read them: ``45s``, ``12m 30s``, ``1h 02m``, ``3d 04h``."""

from __future__ import annotations

import math

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def format_duration(seconds: float | None) -> str:
    """``seconds`` in its two largest units, rounded to the smaller one; ``-`` for
    None (no estimate) or a value that is not a finite number. Negative is ``0s``.

    Every ETA and duration fleetbatch shows (CLI and web UI) is written by this.
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    whole = max(0, round(seconds))
    if whole < MINUTE:
        return f"{whole}s"
    if whole < HOUR:
        return f"{whole // MINUTE}m {whole % MINUTE:02d}s"
    minutes = round(whole / MINUTE)
    if minutes < DAY // MINUTE:
        return f"{minutes // 60}h {minutes % 60:02d}m"
    hours = round(whole / HOUR)
    return f"{hours // 24}d {hours % 24:02d}h"
