"""The gauges whose series stand for the whole process: one per breaker key, one
per pipeline and command for the chunks in flight, one for the store's dead
letters — never one per batch.

They are set through the worker's runtime meter (``bind``), not an activity's or a
workflow's: those add the activity type, task queue or workflow type to every
series, and a breaker seen from four activities on two queues came out as many
series. Until ``bind`` (replay tests, a process without a worker) they record
nothing.

``fleetbatch_chunks_in_flight`` carries no batch id: one series per batch would
grow without bound and outlive its batch. A batch workflow run reports its
window here, and the series for its labels is the sum over every batch workflow
run this process holds with those labels. A run leaves the sum when it ends — it
finishes, continues as new, or is evicted from this worker's cache (the worker
that runs it next reports it). The workflow meter would drop what is recorded
while replaying (an eviction counts as replay), but a run leaving must still
lower the sum; replaying a history moves the sum through the run's past windows
and ends at its current one.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio.common import MetricGauge, MetricMeter

from fleetbatch import metrics

Labels = tuple[tuple[str, str], ...]

_breaker: MetricGauge = MetricMeter.noop.create_gauge(metrics.BREAKER_STATE)
_in_flight: MetricGauge = MetricMeter.noop.create_gauge(metrics.CHUNKS_IN_FLIGHT)
_dead_letters: MetricGauge = MetricMeter.noop.create_gauge(metrics.DEAD_LETTERS)
_windows: dict[str, tuple[Labels, int]] = {}
"""Chunks in flight by batch workflow run id."""


def bind(meter: MetricMeter) -> None:
    """Record through ``meter`` (the worker's runtime's) from now on."""
    global _breaker, _in_flight, _dead_letters
    _breaker = meter.create_gauge(
        metrics.BREAKER_STATE, "circuit breaker per key: 0 closed, 1 half-open, 2 open"
    )
    _in_flight = meter.create_gauge(
        metrics.CHUNKS_IN_FLIGHT, "chunk workflows running, by pipeline and command"
    )
    _dead_letters = meter.create_gauge(metrics.DEAD_LETTERS, "dead letters not yet replayed")


def dead_letters(count: int) -> None:
    """The store holds ``count`` dead letters not yet replayed."""
    _dead_letters.set(count)


def breaker_state(key: str, state: int) -> None:
    """The breaker ``key`` as this process last saw it (0 closed, 1 half-open, 2 open)."""
    _breaker.set(state, {"breaker": key})


def report_window(run_id: str, labels: Mapping[str, str], chunks: int) -> None:
    """The batch workflow run ``run_id`` has ``chunks`` chunk workflows running."""
    key = tuple(sorted(labels.items()))
    _windows[run_id] = (key, chunks)
    _set_in_flight(key)


def leave_window(run_id: str) -> None:
    """The run ended in this process: its chunks leave the sum."""
    entry = _windows.pop(run_id, None)
    if entry is not None:
        _set_in_flight(entry[0])


def _set_in_flight(key: Labels) -> None:
    total = sum(n for labels, n in _windows.values() if labels == key)
    _in_flight.set(total, dict(key))
