"""The batch workflow's in-flight allowance under an overshoot bound
(``domain.overshoot``): how many more items the abort rules let it have in flight,
and which ready chunks fit. Deterministic: state in, decisions out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fleetbatch.domain import ChunkSpec
from fleetbatch.domain.overshoot import gate_budget, in_flight_allowance, tolerance_budget
from fleetbatch.domain.rollout import Rollout
from fleetbatch.workflows import waves
from fleetbatch.workflows.waves import WaveState


class AllowedState(Protocol):
    """What the allowance reads of the batch's state (``BatchState``)."""

    counts: dict[str, int]
    items_total: int
    in_flight: dict[str, int]
    max_failures: str | None
    waves: WaveState


@dataclass
class Allowance:
    """Bounds a batch's items in flight by its abort rules (``--max-failures``, a
    wave's gate) plus its rollout's overshoot bound."""

    rollout: Rollout
    overshoot: int
    """The rollout's bound (``--overshoot``)."""
    state: AllowedState

    def total(self) -> int | None:
        """Items the batch may have in flight now; None while no rule limits it."""
        rollout, s = self.rollout, self.state
        budgets = [tolerance_budget(s.max_failures, s.counts.get("failed", 0), s.items_total)]
        if rollout.gate_failures is not None and s.waves.gate == waves.GATE_HOLDING:
            failed, executed = waves.executed(s.waves.counts)
            budgets.append(
                gate_budget(rollout.gate_failures, rollout.gate_min_items, failed, executed)
            )
        return in_flight_allowance(budgets, self.overshoot)

    def room(self) -> int | None:
        """More items the batch may have in flight now; None while no rule limits it."""
        total = self.total()
        return None if total is None else total - sum(self.state.in_flight.values())


def fitting(chunks: list[ChunkSpec], room: int) -> list[ChunkSpec]:
    """The first ``chunks`` that fit in ``room`` items."""
    fits: list[ChunkSpec] = []
    for chunk in chunks:
        if chunk.size > room:
            break
        fits.append(chunk)
        room -= chunk.size
    return fits
