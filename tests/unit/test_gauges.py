"""The process-wide gauges: chunks in flight summed over batch workflow runs."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from fleetbatch import gauges


class Recorded:
    """Stands in for a MetricGauge: the last value set per label set."""

    def __init__(self) -> None:
        self.values: dict[frozenset[tuple[str, str]], float] = {}

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
