"""The rollout states a batch workflow run counts in for the
``fleetbatch_batches_by_rollout_state`` gauge. Deterministic: state in, names out.

A run is in at most one state of each kind: its wave (staged rollouts), its
window (scheduled ones) and ``ramping`` (under a rate ramp).
"""

from __future__ import annotations

from fleetbatch import metrics
from fleetbatch.domain.rollout import Rollout
from fleetbatch.workflows import waves, windows
from fleetbatch.workflows.waves import WaveState
from fleetbatch.workflows.windows import WindowState

_WINDOW = {
    windows.WINDOW_OPEN: metrics.WINDOW_OPEN,
    windows.WINDOW_WAITING: metrics.WINDOW_WAITING,
    windows.WINDOW_ENDED: metrics.WINDOW_ENDED,
}


def rollout_states(rollout: Rollout | None, wave: WaveState, window: WindowState) -> list[str]:
    """The states (of ``metrics.ROLLOUT_STATES``) of a batch with ``rollout`` now;
    none without one."""
    if rollout is None:
        return []
    found = []
    if rollout.staged:
        if wave.awaiting_approval is not None:
            found.append(metrics.AWAITING_APPROVAL)
        elif wave.gate == waves.GATE_FAILED:
            found.append(metrics.GATE_FAILED)
        else:  # holding, or waived by an operator's resume
            found.append(metrics.WAVE_RUNNING)
    if rollout.scheduled:
        found.append(_WINDOW[window.state])
    if rollout.ramp is not None:
        found.append(metrics.RAMPING)
    return found
