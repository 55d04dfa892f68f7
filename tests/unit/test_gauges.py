"""The process-wide gauges: chunks in flight and rollout states summed over batch
workflow runs."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from fleetbatch import gauges
from fleetbatch.domain.ramp import RateRamp
from fleetbatch.domain.rollout import Rollout
from fleetbatch.metrics import ROLLOUT_STATES
from fleetbatch.workflows import waves, windows
from fleetbatch.workflows.rollout_state import rollout_states
from fleetbatch.workflows.waves import WaveState
from fleetbatch.workflows.windows import WindowState


class Recorded:
    """Stands in for a MetricGauge: the last value set per label set."""

    def __init__(self) -> None:
        self.values: dict[frozenset[tuple[str, str]], float] = {}

    def of(self, labels: Mapping[str, str], **more: str) -> float:
        return self.values[frozenset({**labels, **more}.items())]

    def set(self, value: float, additional_attributes: Mapping[str, str] | None = None) -> None:
        self.values[frozenset((additional_attributes or {}).items())] = value


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorded:
    gauge = Recorded()
    monkeypatch.setattr(gauges, "_in_flight", gauge)
    monkeypatch.setattr(gauges, "_windows", {})
    return gauge


LOCK = {"pipeline": "vehicle", "command": "lock_doors"}
FLASH = {"pipeline": "vehicle", "command": "flash_lights"}


def test_runs_with_the_same_labels_add_up(recorded: Recorded) -> None:
    gauges.report_window("run-a", LOCK, 3)
    gauges.report_window("run-b", LOCK, 4)
    gauges.report_window("run-c", FLASH, 2)
    gauges.report_window("run-a", LOCK, 1)
    assert recorded.values == {frozenset(LOCK.items()): 5, frozenset(FLASH.items()): 2}


def test_a_run_that_ends_leaves_the_sum(recorded: Recorded) -> None:
    gauges.report_window("run-a", LOCK, 3)
    gauges.report_window("run-b", LOCK, 4)
    gauges.leave_window("run-a")
    assert recorded.values[frozenset(LOCK.items())] == 4
    gauges.leave_window("run-b")
    assert recorded.values[frozenset(LOCK.items())] == 0
    gauges.leave_window("run-b")  # an unknown run changes nothing
    assert gauges._windows == {}


@pytest.fixture
def rollout_gauges(monkeypatch: pytest.MonkeyPatch) -> tuple[Recorded, Recorded]:
    by_state, rate = Recorded(), Recorded()
    monkeypatch.setattr(gauges, "_by_rollout_state", by_state)
    monkeypatch.setattr(gauges, "_ramp_rate", rate)
    monkeypatch.setattr(gauges, "_rollouts", {})
    return by_state, rate


def test_runs_are_counted_by_state_and_their_rates_add_up(
    rollout_gauges: tuple[Recorded, Recorded],
) -> None:
    by_state, rate = rollout_gauges
    gauges.report_rollout("run-a", LOCK, ["awaiting_approval", "ramping"], 2.0)
    gauges.report_rollout("run-b", LOCK, ["awaiting_approval", "window_open", "ramping"], 1.5)
    gauges.report_rollout("run-c", FLASH, [], 0.0)  # no rollout: its series, at 0
    assert by_state.of(LOCK, state="awaiting_approval") == 2
    assert by_state.of(LOCK, state="window_open") == 1
    assert by_state.of(LOCK, state="ramping") == 2
    assert rate.values == {frozenset(LOCK.items()): 3.5, frozenset(FLASH.items()): 0}
    # Every state has a series per pipeline and command, and none other.
    assert len(by_state.values) == 2 * len(ROLLOUT_STATES)
    assert all(by_state.of(FLASH, state=state) == 0 for state in ROLLOUT_STATES)


def test_a_run_reporting_again_replaces_its_state(
    rollout_gauges: tuple[Recorded, Recorded],
) -> None:
    """An approval moves the run, and a replay reporting its past states counts it once."""
    by_state, _ = rollout_gauges
    for _ in range(2):
        gauges.report_rollout("run-a", LOCK, ["wave_running"], 0.0)
        gauges.report_rollout("run-a", LOCK, ["awaiting_approval"], 0.0)
    assert by_state.of(LOCK, state="awaiting_approval") == 1
    assert by_state.of(LOCK, state="wave_running") == 0
    gauges.report_rollout("run-a", LOCK, ["wave_running"], 0.0)
    assert by_state.of(LOCK, state="awaiting_approval") == 0
    assert by_state.of(LOCK, state="wave_running") == 1


def test_a_run_that_ends_leaves_the_counts(rollout_gauges: tuple[Recorded, Recorded]) -> None:
    by_state, rate = rollout_gauges
    gauges.report_rollout("run-a", LOCK, ["gate_failed", "ramping"], 4.0)
    gauges.report_rollout("run-b", LOCK, ["ramping"], 1.0)
    gauges.leave_rollout("run-a")
    assert by_state.of(LOCK, state="gate_failed") == 0
    assert by_state.of(LOCK, state="ramping") == 1
    assert rate.of(LOCK) == 1.0
    gauges.leave_rollout("run-b")
    gauges.leave_rollout("run-b")  # an unknown run changes nothing
    assert by_state.of(LOCK, state="ramping") == 0 and rate.of(LOCK) == 0
    assert gauges._rollouts == {}


STAGED = Rollout(waves=["10%", "all"], approve=True, gate_failures="5%")


@pytest.mark.parametrize(
    ("rollout", "wave", "window", "states"),
    [
        (None, WaveState(), WindowState(), []),
        (STAGED, WaveState(), WindowState(), ["wave_running"]),
        (STAGED, WaveState(awaiting_approval=2), WindowState(), ["awaiting_approval"]),
        (STAGED, WaveState(gate=waves.GATE_FAILED), WindowState(), ["gate_failed"]),
        (STAGED, WaveState(gate=waves.GATE_WAIVED), WindowState(), ["wave_running"]),
        (
            Rollout(windows=["01:00-05:00 UTC"], ramp=RateRamp(base=1.0)),
            WaveState(),
            WindowState(state=windows.WINDOW_WAITING),
            ["window_waiting", "ramping"],
        ),
        (
            Rollout(waves=["50%", "all"], end_at=1.0),
            WaveState(),
            WindowState(state=windows.WINDOW_ENDED),
            ["wave_running", "window_ended"],
        ),
        (Rollout(windows=["01:00-05:00 UTC"]), WaveState(), WindowState(), ["window_open"]),
    ],
)
def test_a_batch_counts_in_one_state_of_each_kind(
    rollout: Rollout | None, wave: WaveState, window: WindowState, states: list[str]
) -> None:
    assert rollout_states(rollout, wave, window) == states
    assert set(states) <= set(ROLLOUT_STATES)
