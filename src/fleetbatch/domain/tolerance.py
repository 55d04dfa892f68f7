"""How many failed items a batch tolerates before it aborts: a share or a count."""

from __future__ import annotations

import re

from fleetbatch.errors import ConfigError

_FORM = re.compile(r"(\d+(?:\.\d+)?)(%?)")


def check_tolerance(text: str) -> str:
    """``text`` normalised (``"5%"``, ``"100"``).

    Raises:
        ConfigError: not a percentage from 0 to 100 nor a whole count.
    """
    match = _FORM.fullmatch(text.strip())
    if match is None or (not match[2] and "." in match[1]):
        raise ConfigError(
            f"invalid failure tolerance {text!r}: give a share like '5%' or a count like '100'"
        )
    if match[2] and float(match[1]) > 100:
        raise ConfigError(f"invalid failure tolerance {text!r}: a share is at most 100%")
    return f"{float(match[1]):g}%" if match[2] else str(int(match[1]))


def tolerance_exceeded(tolerance: str | None, failed: int, items_total: int) -> str | None:
    """Why the batch must abort, or None while ``failed`` stays within ``tolerance``.

    A share is of every item the batch accepted so far.
    """
    if tolerance is None:
        return None
    share = tolerance.endswith("%")
    limit = items_total * float(tolerance[:-1]) / 100 if share else int(tolerance)
    if failed <= limit:
        return None
    return f"{failed:,} items failed, more than the tolerated {tolerance}"
