"""A batch's own rate that ramps up (AWS IoT Jobs' exponential rollout rate).

``base=60/min,factor=2,after=100,max=600/min`` starts at 60 items a minute and
doubles after every 100 items notified (sent), up to 600 a minute;
``succeeded=100`` instead of ``after=100`` counts succeeded items. The rate is
a function of counts, never of time alone: a batch whose items stop succeeding
stays at its rate. It runs under a pipeline's own limits (such as a rate set on
the Temporal server for a type of item), which still hold across batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetbatch.domain.rates import parse_rate
from fleetbatch.errors import ConfigError

NOTIFIED = "notified"
SUCCEEDED = "succeeded"
PACE_SECONDS = 0.5
"""A chunk under a ramp holds at most this long of the current rate, so the batch's
paced chunk starts make a steady per-second rate, not bursts of a whole chunk."""
LEAD_SECONDS = 2.0
"""A chunk under a ramp starts up to this long before its slot in the schedule and
its publish waits for the slot: timers on a Temporal server fire up to about a
second late, so chunks started on time would publish late and in bursts."""
CATCH_UP_SECONDS = 2.0
"""A batch behind its ramp's schedule (a timer that fired late, a full window) may
start at most this long of its rate at once to catch up: timers on a Temporal server
fire up to about a second late, and the rate must not lose that."""
UNCAPPED = 1_000_000.0
"""Items per second of a ramp without a maximum past its last useful step."""
_KEYS = {"base", "factor", "after", NOTIFIED, SUCCEEDED, "max"}
_SYNTAX = "write it like 'base=60/min,factor=2,after=100,max=600/min'"


@dataclass
class RateRamp:
    """The ramp's rule; carried in the batch's rollout."""

    base: float
    """Items per second at the start."""
    factor: float = 2.0
    """The rate is multiplied by this at each step."""
    after: int = 100
    """A step every this many items counted."""
    counts: str = NOTIFIED
    """What a step counts: items ``notified`` (sent) or ``succeeded``."""
    max: float | None = None
    """Items per second at most; None: the factor goes on (under the type's rate)."""


def parse_ramp(text: str) -> RateRamp:
    """The ramp ``text`` describes (``base=60/min,factor=2,after=100,max=600/min``).

    Raises:
        ConfigError: an unknown or missing key, a rate that is not one, a factor below
            1, a step below 1 item or a maximum below the base.
    """
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in _KEYS or key in fields:
            raise ConfigError(f"invalid ramp {text!r}: {_SYNTAX}")
        fields[key] = value.strip()
    if "base" not in fields:
        raise ConfigError(f"invalid ramp {text!r}: it needs a base rate; {_SYNTAX}")
    if len({"after", NOTIFIED, SUCCEEDED} & fields.keys()) > 1:
        raise ConfigError(
            f"invalid ramp {text!r}: give one of after=N (notified), notified=N or succeeded=N"
        )
    base = _rate(fields["base"], text)
    top = _rate(fields["max"], text) if "max" in fields else None
    try:
        factor = float(fields.get("factor", "2"))
        step = fields.get("after") or fields.get(NOTIFIED) or fields.get(SUCCEEDED) or "100"
        after = int(step)
    except ValueError:
        raise ConfigError(f"invalid ramp {text!r}: {_SYNTAX}") from None
    counts = SUCCEEDED if SUCCEEDED in fields else NOTIFIED
    return check_ramp(RateRamp(base, factor, after, counts, top), text)


def _rate(value: str, text: str) -> float:
    try:
        rate = parse_rate(value)
    except ConfigError:
        rate = None
    if rate is None:
        raise ConfigError(
            f"invalid ramp {text!r}: give its rates per second or minute ('5/s', '300/min'), "
            f"not {value!r}"
        )
    return rate


def check_ramp(ramp: RateRamp, text: str | None = None) -> RateRamp:
    """``ramp`` if it is sound.

    Raises:
        ConfigError: as ``parse_ramp``.
    """
    name = text if text is not None else format_ramp(ramp)
    if ramp.base <= 0 or ramp.factor < 1 or ramp.after < 1:
        raise ConfigError(
            f"invalid ramp {name!r}: the base must be above zero, the factor at least 1 "
            "and a step at least 1 item"
        )
    if ramp.counts not in (NOTIFIED, SUCCEEDED):
        raise ConfigError(f"invalid ramp {name!r}: a step counts notified or succeeded items")
    if ramp.max is not None and ramp.max < ramp.base:
        raise ConfigError(f"invalid ramp {name!r}: the maximum is below the base rate")
    return ramp


def format_ramp(ramp: RateRamp) -> str:
    """The ramp as ``parse_ramp`` reads it."""
    key = "after" if ramp.counts == NOTIFIED else SUCCEEDED
    text = f"base={_per_minute(ramp.base)},factor={ramp.factor:g},{key}={ramp.after}"
    return text if ramp.max is None else f"{text},max={_per_minute(ramp.max)}"


def _per_minute(per_second: float) -> str:
    """As AWS IoT Jobs counts a rollout rate: per minute."""
    return f"{per_second * 60:g}/min"


def ramp_rate(ramp: RateRamp, counted: int) -> float:
    """Items per second allowed once ``counted`` items were notified (or succeeded)."""
    top = ramp.max if ramp.max is not None else UNCAPPED
    steps = counted // ramp.after
    if ramp.factor > 1:
        # Past the maximum more steps change nothing (and the power would overflow).
        steps = min(steps, math.ceil(math.log(top / ramp.base) / math.log(ramp.factor)) + 1)
    return min(top, ramp.base * ramp.factor**steps)


def chunks_to_page(ramp: RateRamp, counted: int, size: int) -> int:
    """How many chunks of ``size`` to page at once under the ramp: what it may start
    while catching up, so paged chunks keep a size that suits the rate."""
    return max(1, math.ceil(ramp_rate(ramp, counted) * CATCH_UP_SECONDS / size))


def chunk_limit(ramp: RateRamp, counted: int, chunk_size: int) -> int:
    """A chunk's size under the ramp: at most ``PACE_SECONDS`` of the current rate."""
    return max(1, min(chunk_size, math.ceil(ramp_rate(ramp, counted) * PACE_SECONDS)))
