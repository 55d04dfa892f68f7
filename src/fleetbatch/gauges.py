"""The gauges whose series stand for the whole process: one per breaker key, one
per pipeline and command for the chunks in flight, the rollout states and the
ramps' rate, one for the store's dead letters — never one per batch.

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

The rollout gauges work the same way, keyed by run id: each run reports the
states it is in (``metrics.ROLLOUT_STATES``: one wave state, one window state,
``ramping``) and its ramp's allowed rate, and a pipeline and command's series are
the count of runs in each state and the sum of the rates. A replay overwrites its
run's entry, so it never counts a run twice.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from temporalio.common import MetricGauge, MetricGaugeFloat, MetricMeter

from fleetbatch import metrics

Labels = tuple[tuple[str, str], ...]

_breaker: MetricGauge = MetricMeter.noop.create_gauge(metrics.BREAKER_STATE)
_in_flight: MetricGauge = MetricMeter.noop.create_gauge(metrics.CHUNKS_IN_FLIGHT)
_dead_letters: MetricGauge = MetricMeter.noop.create_gauge(metrics.DEAD_LETTERS)
_by_rollout_state: MetricGauge = MetricMeter.noop.create_gauge(metrics.BATCHES_BY_ROLLOUT_STATE)
_ramp_rate: MetricGaugeFloat = MetricMeter.noop.create_gauge_float(metrics.RAMP_ALLOWED_RATE)
_windows: dict[str, tuple[Labels, int]] = {}
"""Chunks in flight by batch workflow run id."""
_rollouts: dict[str, tuple[Labels, frozenset[str], float]] = {}
"""Rollout states and the ramp's allowed rate by batch workflow run id."""


def bind(meter: MetricMeter) -> None:
    """Record through ``meter`` (the worker's runtime's) from now on."""
    global _breaker, _in_flight, _dead_letters, _by_rollout_state, _ramp_rate
    _breaker = meter.create_gauge(
        metrics.BREAKER_STATE, "circuit breaker per key: 0 closed, 1 half-open, 2 open"
    )
    _in_flight = meter.create_gauge(
        metrics.CHUNKS_IN_FLIGHT, "chunk workflows running, by pipeline and command"
    )
    _dead_letters = meter.create_gauge(metrics.DEAD_LETTERS, "dead letters not yet replayed")
    _by_rollout_state = meter.create_gauge(
        metrics.BATCHES_BY_ROLLOUT_STATE, "batch workflow runs by rollout state"
    )
    _ramp_rate = meter.create_gauge_float(
        metrics.RAMP_ALLOWED_RATE, "items per second the rate ramps allow, summed over batches"
    )


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


def report_rollout(
    run_id: str, labels: Mapping[str, str], states: Collection[str], rate: float
) -> None:
    """The batch workflow run ``run_id`` is in ``states`` (of ``metrics.ROLLOUT_STATES``;
    none without a rollout) and its ramp allows ``rate`` items per second (0: no ramp).

    Every run reports, rollout or not, so a pipeline and command's series exist (at
    0) from its first batch on.
    """
    key = tuple(sorted(labels.items()))
    _rollouts[run_id] = (key, frozenset(states), rate)
    _set_rollout(key)


def leave_rollout(run_id: str) -> None:
    """The run ended in this process: it leaves the counts and the rate."""
    entry = _rollouts.pop(run_id, None)
    if entry is not None:
        _set_rollout(entry[0])


def _set_rollout(key: Labels) -> None:
    runs = [(states, rate) for labels, states, rate in _rollouts.values() if labels == key]
    for state in metrics.ROLLOUT_STATES:
        count = sum(state in states for states, _ in runs)
        _by_rollout_state.set(count, {**dict(key), "state": state})
    _ramp_rate.set(sum(rate for _, rate in runs), dict(key))
