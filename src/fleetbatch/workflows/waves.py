"""The batch workflow's waves: how far the current wave lets it page, when a wave
is settled, and its gate. Deterministic: state in, decisions out."""

from __future__ import annotations

from dataclasses import dataclass, field

from fleetbatch.domain.rollout import Rollout, gate_failure, wave_ends

GATE_HOLDING = "holding"
GATE_FAILED = "failed"
GATE_WAIVED = "waived"
"""An operator resumed a batch its gate paused: the wave goes on unjudged."""


@dataclass
class WaveState:
    """Where a rolling-out batch is; part of the state carried across runs."""

    index: int = 0
    """The current wave, from 0."""
    paged: int = 0
    """Items paged into chunks (started or ready) since the batch began."""
    counts: dict[str, int] = field(default_factory=dict)
    """Outcomes the gate judges: those of the waves since the last judged gate."""
    counted_from: int = 0
    """The first wave in ``counts``: a wave settled with too few executed items to
    judge hands its outcomes on to the next wave's gate."""
    gate: str = GATE_HOLDING
    gate_reason: str | None = None
    awaiting_approval: int | None = None
    """The wave (from 1) that waits for an operator's approval."""


def room(rollout: Rollout, waves: WaveState, items_total: int) -> int:
    """How many more items the current wave may page."""
    ends = wave_ends(rollout, items_total)
    return max(0, ends[min(waves.index, len(ends) - 1)] - waves.paged)


def total(rollout: Rollout, items_total: int) -> int:
    return len(wave_ends(rollout, items_total))


def label(rollout: Rollout, waves: WaveState, items_total: int) -> str:
    """``"wave 2 of 3"``, or ``"waves 1-2 of 3"`` when outcomes were handed on."""
    first, last, of = waves.counted_from + 1, waves.index + 1, total(rollout, items_total)
    return f"wave {last} of {of}" if first == last else f"waves {first}-{last} of {of}"


def executed(counts: dict[str, int]) -> tuple[int, int]:
    """(failed, executed): skipped and cancelled items were never sent."""
    failed = counts.get("failed", 0)
    return failed, failed + counts.get("succeeded", 0)


def judge(rollout: Rollout, waves: WaveState, items_total: int) -> str | None:
    """Why the current wave's gate fails now, or None (holding, or waived)."""
    if waves.gate != GATE_HOLDING:
        return None
    return gate_failure(rollout, label(rollout, waves, items_total), *executed(waves.counts))


def begin_next(rollout: Rollout, waves: WaveState) -> None:
    """The next wave starts; the gate's outcomes start afresh if it judged them."""
    judged = executed(waves.counts)[1] >= rollout.gate_min_items
    if judged or waves.gate == GATE_WAIVED:
        waves.counts = {}
        waves.counted_from = waves.index + 1
    waves.index += 1
    waves.gate = GATE_HOLDING
    waves.gate_reason = None
    waves.awaiting_approval = None
