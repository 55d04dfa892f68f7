"""Rates as operators write them: ``"600/min"``, ``"10/s"``, ``"off"``."""

from __future__ import annotations

import re

from fleetbatch.errors import ConfigError

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute))?\s*", re.IGNORECASE)
UNLIMITED = ("off", "none", "unlimited", "default")


def parse_rate(text: str | float | None) -> float | None:
    """Items per second from ``"600/min"``, ``"10/s"``, ``"10"`` or ``10``;
    None for ``"off"`` (no limit).

    Raises:
        ConfigError: the text is not a rate, or the rate is not positive.
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        value, unit = float(text), "s"
    else:
        if text.strip().lower() in UNLIMITED:
            return None
        match = _RATE.fullmatch(text)
        if match is None:
            raise ConfigError(
                f"invalid rate {text!r}: write items per second or minute, "
                "like '10/s' or '600/min', or 'off' for no limit"
            )
        value, unit = float(match[1]), (match[2] or "s").lower()
    if value <= 0:
        raise ConfigError(f"invalid rate {text!r}: a rate must be above zero (or 'off')")
    return value / 60 if unit.startswith("m") else value


def format_rate(per_second: float | None) -> str:
    """A rate as an operator reads it."""
    if per_second is None:
        return "off"
    per_minute = per_second * 60
    if per_second < 1 or (per_minute.is_integer() and not per_second.is_integer()):
        return f"{per_minute:g}/min"
    return f"{per_second:g}/s"
