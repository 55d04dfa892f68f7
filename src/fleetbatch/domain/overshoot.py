"""Abort rules that bound the overshoot: how many items a batch may have in flight.

A batch with an abort rule (``--max-failures``, a wave's failure gate) and an
overshoot bound ``K`` (``--overshoot K``) starts a chunk only if, afterwards,

    items in flight <= budget + K

where the *budget* is how many more failures the strictest rule tolerates if
every item in flight failed (the rules judge outcomes the batch has seen).
Every item ever sent was either settled and seen by the batch, or in flight;
so at each chunk start the failures among all items sent are at most
``failed seen + in flight <= failed seen + budget + K``, which is the rule's
threshold plus ``K``, and between chunk starts no new item goes out (a retry
repeats an item's effect id). Hence: **when the rule trips, at most K items
beyond what it tolerates can have been out** — the window and each chunk's
size shrink as the budget runs down, down to ``K`` at the threshold.
"""

from __future__ import annotations

import math
from fractions import Fraction


def _share(rule: str) -> Fraction:
    return Fraction(rule[:-1]) / 100


def tolerance_budget(tolerance: str | None, failed: int, items_total: int) -> int | None:
    """More failures ``--max-failures`` tolerates (``tolerance_exceeded`` trips past
    ``failed <= limit``); None without the rule."""
    if tolerance is None:
        return None
    if tolerance.endswith("%"):
        limit = math.floor(_share(tolerance) * items_total)
    else:
        limit = int(tolerance)
    return max(0, limit - failed)


def gate_budget(gate: str | None, min_items: int, failed: int, executed: int) -> int | None:
    """More failures a wave's gate tolerates (``gate_failure`` trips once at least
    ``min_items`` executed and ``failed`` is past its share or count); None without
    a gate, or with one that tolerates every failure (100 %)."""
    if gate is None:
        return None
    unjudged = max(0, min_items - 1 - executed)
    """Failures that leave the gate below its minimum, so unjudged."""
    if not gate.endswith("%"):
        return max(unjudged, int(gate) - failed, 0)
    share = _share(gate)
    if share >= 1:
        return None
    # (failed + x) <= share * (executed + x)  <=>  x <= (share * executed - failed) / (1 - share)
    return max(unjudged, math.floor((share * executed - failed) / (1 - share)), 0)


def in_flight_allowance(budgets: list[int | None], overshoot: int) -> int | None:
    """Items the batch may have in flight: the strictest budget plus the bound; None
    when no rule limits it."""
    known = [b for b in budgets if b is not None]
    return None if not known else min(known) + overshoot
