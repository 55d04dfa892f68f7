"""Staged rollouts: a batch sent in waves, each gated on the last one's failures.

A wave list is cumulative: ``1%,10%,100%`` sends 1 % of the batch, then up to
10 %, then the rest; counts (``50,500,all``) work the same way. ``50x2`` is an
exponential rollout: 50 items, then 100 more, then 200 more, … up to the whole
batch. A list that stops short of the whole batch gets a last wave for the rest.

A rollout also carries the batch's schedule (``domain.schedule``): a start time, an
end time and what happens then, and recurring maintenance windows. A rollout with
a schedule and no waves sends the batch in one wave, and so does one that holds
only a webhook (its notices: the breaker, the batch's end).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from fleetbatch.domain.policies import Policy
from fleetbatch.domain.ramp import RateRamp, check_ramp, parse_ramp
from fleetbatch.domain.schedule import END_ACTIONS, check_windows
from fleetbatch.domain.tolerance import check_tolerance
from fleetbatch.errors import ConfigError

GATE_ACTIONS = ("pause", "abort")
_EXPONENTIAL = re.compile(r"(\d+)\s*x\s*(\d+(?:\.\d+)?)")
_SHARE = re.compile(r"(\d+(?:\.\d+)?)%")


@dataclass
class Rollout:
    """How a batch rolls out; carried in the batch workflow's input."""

    waves: list[str] = field(default_factory=list)
    """Cumulative wave ends: ``"1%"``, ``"500"`` or ``"all"`` (empty: exponential)."""
    base: int = 0
    """Exponential rollout: the first wave's size (0: the ``waves`` list)."""
    factor: float = 2.0
    """Exponential rollout: each wave is this many times the one before."""
    gate_failures: str | None = None
    """A wave's gate: at most this share (``"5%"``) or count of its executed items
    may fail; None: no gate."""
    gate_min_items: int = 0
    """The gate judges once at least this many items executed."""
    approve: bool = False
    """Every wave after the first waits for an operator's approval."""
    on_gate_failure: str = "pause"
    """``pause`` or ``abort`` when a gate fails."""
    webhook_url: str | None = None
    """Signed notices go here: a wave waits for approval, a gate fails, a circuit
    breaker the batch publishes through opens or closes, the batch ends; with or
    without waves."""
    windows: list[str] = field(default_factory=list)
    """Maintenance windows (``"01:00-05:00 Europe/Berlin"``): the batch publishes only
    inside one; empty: at any time."""
    start_at: float | None = None
    """No chunk starts before this time (seconds since the epoch, UTC)."""
    end_at: float | None = None
    """At this time the batch pauses or is cancelled (``on_end``)."""
    on_end: str = "pause"
    """``pause`` or ``cancel`` at ``end_at``."""
    policy: str | None = None
    """The named policy this rollout came from, if any."""
    ramp: RateRamp | None = None
    """The batch's own rate, ramping up with its counts (``domain.ramp``); None: the
    pipeline's rates alone."""
    overshoot: int | None = None
    """With an abort rule (a gate, ``max_failures``): at most this many items past
    what the rule tolerates can be out when it trips (``domain.overshoot``)."""

    def __post_init__(self) -> None:
        if isinstance(self.ramp, dict):  # as stored (the batch's JSON column)
            self.ramp = RateRamp(**self.ramp)

    @property
    def staged(self) -> bool:
        """In waves (else one wave: a schedule, a policy without waves, a webhook, a
        ramp or an overshoot bound alone)."""
        return bool(self.waves) or self.base > 0

    @property
    def scheduled(self) -> bool:
        return bool(self.windows) or self.start_at is not None or self.end_at is not None


def parse_waves(text: str) -> Rollout:
    """A rollout of the waves in ``text`` (``"1%,10%,100%"``, ``"50,500,all"``, ``"50x2"``).

    Raises:
        ConfigError: not a wave list, or one whose waves do not grow.
    """
    spec = text.strip().lower()
    if exponential := _EXPONENTIAL.fullmatch(spec):
        base, factor = int(exponential[1]), float(exponential[2])
        if base < 1 or factor < 1:
            raise ConfigError(
                f"invalid waves {text!r}: an exponential rollout needs a base of at least 1 "
                "and a factor of at least 1"
            )
        return Rollout(base=base, factor=factor)
    waves = [_wave(part, text) for part in spec.split(",")]
    for kind in ("%", ""):
        sizes = [_number(w) for w in waves if w != "all" and w.endswith("%") == (kind == "%")]
        if sizes != sorted(set(sizes)):
            raise ConfigError(f"invalid waves {text!r}: each wave must end past the one before")
    if "all" in waves[:-1]:
        raise ConfigError(f"invalid waves {text!r}: 'all' can only be the last wave")
    return Rollout(waves=waves)


def _wave(part: str, text: str) -> str:
    part = part.strip()
    if part in ("all", "100%"):
        return "all"
    if share := _SHARE.fullmatch(part):
        if not 0 < float(share[1]) <= 100:
            raise ConfigError(f"invalid waves {text!r}: a share is above 0% and at most 100%")
        return f"{float(share[1]):g}%"
    if part.isdigit() and int(part) > 0:
        return str(int(part))
    raise ConfigError(
        f"invalid waves {text!r}: give shares ('1%,10%,100%'), counts ('50,500,all') "
        "or an exponential rollout ('50x2': 50 items, then twice as many each wave)"
    )


def _number(wave: str) -> float:
    return float(wave.rstrip("%"))


def check_rollout(rollout: Rollout) -> Rollout:
    """``rollout`` with its gate normalised.

    Raises:
        ConfigError: an unreadable gate, a negative minimum or an unknown action.
    """
    if rollout.on_gate_failure not in GATE_ACTIONS:
        raise ConfigError(
            f"invalid gate action {rollout.on_gate_failure!r}: "
            f"give one of {', '.join(GATE_ACTIONS)}"
        )
    if rollout.gate_min_items < 0:
        raise ConfigError(f"invalid gate minimum {rollout.gate_min_items}: at least 0 items")
    if rollout.overshoot is not None and rollout.overshoot < 1:
        raise ConfigError(f"invalid overshoot {rollout.overshoot}: at least 1 item")
    gate = rollout.gate_failures
    if gate is not None:
        gate = check_tolerance(gate)
    if rollout.on_end not in END_ACTIONS:
        raise ConfigError(
            f"invalid end action {rollout.on_end!r}: give one of {', '.join(END_ACTIONS)}"
        )
    start, end = rollout.start_at, rollout.end_at
    if start is not None and end is not None and end <= start:
        raise ConfigError("invalid schedule: the end time must come after the start time")
    return Rollout(
        list(rollout.waves),
        rollout.base,
        rollout.factor,
        gate,
        rollout.gate_min_items,
        rollout.approve,
        rollout.on_gate_failure,
        _checked_url(rollout.webhook_url),
        check_windows(rollout.windows),
        start,
        end,
        rollout.on_end,
        rollout.policy,
        None if rollout.ramp is None else check_ramp(rollout.ramp),
        rollout.overshoot,
    )


def _checked_url(url: str | None) -> str | None:
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(f"invalid webhook {url!r}: give an http:// or https:// URL")
    return url


def wave_ends(rollout: Rollout, total: int) -> list[int]:
    """How many of ``total`` items the batch has started by the end of each wave:
    strictly growing, the last one ``total`` (a single wave for an empty batch)."""
    ends: list[int] = []
    if rollout.base:
        size, end = float(rollout.base), 0
        while end < total:
            end = min(total, end + math.ceil(size))
            ends.append(end)
            size *= rollout.factor
    else:
        for wave in rollout.waves:
            if wave == "all":
                end = total
            elif wave.endswith("%"):
                end = max(1, math.ceil(total * _number(wave) / 100))
            else:
                end = int(wave)
            end = min(end, total)
            if not ends or end > ends[-1]:
                ends.append(end)
    if not ends or ends[-1] < total:
        ends.append(total)
    return ends


def gate_failure(rollout: Rollout, waves: str, failed: int, executed: int) -> str | None:
    """Why the gate fails for ``failed`` of ``executed`` items in ``waves`` (``"wave 1
    of 3"``), or None while it holds or has too few executed items to judge."""
    gate = rollout.gate_failures
    if gate is None or executed == 0 or executed < rollout.gate_min_items:
        return None
    share = failed / executed * 100
    if gate.endswith("%"):
        if share <= float(gate[:-1]):
            return None
    elif failed <= int(gate):
        return None
    return (
        f"{waves}: {failed:,} of {executed:,} items failed ({share:.3g}%), "
        f"more than the gate's {gate}"
    )


def rollout_from_options(
    waves: str | None,
    *,
    gate_failures: str | None = None,
    gate_min_items: int | None = None,
    approve_waves: bool = False,
    on_gate_failure: str | None = None,
    webhook_url: str | None = None,
    windows: Sequence[str] = (),
    start_at: float | None = None,
    end_at: float | None = None,
    on_end: str | None = None,
    policy: Policy | None = None,
    ramp: str | None = None,
    overshoot: int | None = None,
    max_failures: str | None = None,
) -> Rollout | None:
    """The rollout that submit options ask for (CLI and API), on top of ``policy``'s
    (an option given wins over the policy's); None without waves, schedule, policy,
    webhook, ramp or overshoot bound.

    Raises:
        ConfigError: unreadable options, gate or approval options without waves, or
            an overshoot bound without a rule to abort on (``max_failures`` or a gate).
    """
    if policy is not None:
        waves = waves if waves is not None else policy.waves
        gate_failures = gate_failures if gate_failures is not None else policy.gate_failures
        if gate_min_items is None:
            gate_min_items = policy.gate_min_items
        approve_waves = approve_waves or policy.approve_waves
        on_gate_failure = on_gate_failure or policy.on_gate_failure
        webhook_url = webhook_url or policy.webhook_url
        windows = windows or policy.windows
        on_end = on_end or policy.on_end
    if waves is None:
        given = [gate_failures, gate_min_items, on_gate_failure]
        if approve_waves or any(option is not None for option in given):
            raise ConfigError("gates and approvals are for waves: give the waves too")
        unscheduled = not windows and start_at is None and end_at is None
        alone = ramp is None and overshoot is None and webhook_url is None
        if policy is None and unscheduled and alone:
            if on_end is not None:
                raise ConfigError("an end action is for an end time: give the end time too")
            return None
    if overshoot is not None and max_failures is None and gate_failures is None:
        raise ConfigError(
            "an overshoot bound needs a rule to abort on: give --max-failures or a gate"
        )
    rollout = parse_waves(waves) if waves is not None else Rollout()
    rollout.gate_failures = gate_failures
    rollout.gate_min_items = gate_min_items or 0
    rollout.approve = approve_waves
    rollout.on_gate_failure = on_gate_failure or "pause"
    rollout.webhook_url = webhook_url
    rollout.windows = list(windows)
    rollout.start_at, rollout.end_at = start_at, end_at
    rollout.on_end = on_end or "pause"
    rollout.policy = None if policy is None else policy.name
    rollout.ramp = None if ramp is None else parse_ramp(ramp)
    rollout.overshoot = overshoot
    return check_rollout(rollout)
