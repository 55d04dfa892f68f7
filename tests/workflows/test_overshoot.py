"""Abort rules that bound the overshoot, counted at the domain simulator, on the
time-skipping server (``docs/rollouts.md``, "The overshoot bound")."""

from __future__ import annotations

import contextlib
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from fleetbatch.config import CommandSettings
from fleetbatch.domain.ramp import parse_ramp
from fleetbatch.domain.rollout import Rollout, parse_waves
from fleetbatch.pipelines import all_pipelines
from fleetbatch.store import BatchRecord
from fleetbatch.temporal.converter import DATA_CONVERTER
from fleetbatch.workflows import WORKFLOWS
from support import Harness, harness, vins

# The breaker would open first; without a rate the batch runs at full speed.
_NO_BREAKER = {
    "breaker_min_calls": 1_000_000,
    "commands": {"lock_doors": CommandSettings(rate="off")},
}


def _failed_at_domain(results: dict[str, object]) -> int:
    return sum(not getattr(answer, "ok", True) for answer in results.values())


def _against(
    env: WorkflowEnvironment, tmp_path: Path, failure_rate: float, chunk_size: int
) -> contextlib.AbstractAsyncContextManager[Harness]:
    """The harness against a domain failing ``failure_rate`` of the commands, in
    chunks of ``chunk_size``, with neither the breaker nor a rate in the way."""
    return harness(
        env.client, tmp_path, failure_rate=failure_rate, chunk_size=chunk_size, **_NO_BREAKER
    )


async def _the_issues_batch(
    env: WorkflowEnvironment, tmp_path: Path, failure_rate: float
) -> tuple[Harness, dict[str, int], BatchRecord]:
    """The issue's batch (1,200 items, --max-failures 2%, chunks of 100, a window of
    20, --overshoot 10) against a domain failing ``failure_rate`` of the commands:
    the harness (its domain as the batch left it), the counts and the stored batch."""
    async with _against(env, tmp_path, failure_rate, chunk_size=100) as h:
        with env.auto_time_skipping_disabled():
            upload = await h.submit(
                vins(1200), max_failures="2%", max_in_flight=20, rollout=Rollout(overshoot=10)
            )
            counts = await h.result(upload.batch_id)
        stored = await h.store.batches.get(upload.batch_id)
    return h, counts, stored


async def test_max_failures_with_a_bound_stops_within_it_against_a_failing_domain(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The issue's batch: 1,200 items, --max-failures 2% (24 tolerated), chunks of 100,
    a window of 20; without a bound every item was out from the first second. With
    --overshoot 10 against a domain failing every command, the 34 the rule can afford
    go out, all fail, and the batch aborts: not one command more."""
    h, counts, stored = await _the_issues_batch(time_skipping_env, tmp_path, failure_rate=1.0)
    assert len(h.domain.delivered) == 24 + 10
    assert sum(h.domain.delivered.values()) == 34  # no repeats
    assert (counts["failed"], counts["cancelled"]) == (34, 1166)
    assert stored.status == "aborted"
    assert stored.summary is not None
    assert stored.summary["reason"] == "34 items failed, more than the tolerated 2%"


async def test_a_sometimes_failing_domain_never_fails_more_than_the_rule_plus_the_bound(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """5 % failing against 2 % tolerated: the window grows and shrinks with the budget
    left; the batch aborts with at most 24 + 10 failed commands, long before the end."""
    h, counts, stored = await _the_issues_batch(time_skipping_env, tmp_path, failure_rate=0.05)
    failed = _failed_at_domain(dict(h.domain.results))
    assert stored.status == "aborted"
    assert 24 < failed <= 24 + 10
    assert counts["failed"] == failed
    assert len(h.domain.delivered) < 1200
    assert counts["cancelled"] == 1200 - len(h.domain.delivered)


async def test_a_wave_gate_with_a_bound_stops_within_it(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The waves test's failing batch with a bound of 5: before the gate can judge (20
    executed) it affords 19 failures, so 24 commands go out, not the wave's 100."""
    rollout = parse_waves("1%,10%,100%")
    rollout.gate_failures, rollout.gate_min_items = "5%", 20
    rollout.on_gate_failure, rollout.overshoot = "abort", 5
    async with _against(time_skipping_env, tmp_path, failure_rate=0.5, chunk_size=30) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(10_000), rollout=rollout)
            counts = await h.result(upload.batch_id)
        progress = await h.progress(upload.batch_id)
    assert len(h.domain.delivered) == 19 + 5
    assert counts["cancelled"] == 10_000 - 24
    assert (progress.gate, progress.wave) == ("failed", 1)


async def test_a_ramped_bounded_batch_replays_from_its_history(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The new paths (paced chunk starts on timers, the allowance) are deterministic:
    the batch's history and a chunk's replay against today's code."""
    rollout = Rollout(ramp=parse_ramp("base=300/min,factor=2,after=20"), overshoot=3)
    async with _against(time_skipping_env, tmp_path, failure_rate=0.1, chunk_size=5) as h:
        upload = await h.submit(vins(40), max_failures="10", rollout=rollout)
        counts = await h.result(upload.batch_id)
        batch_history = await h.batch(upload.batch_id).fetch_history()
        chunk_id = next(iter((await h.items(upload.batch_id)).values()))["workflow_id"]
        chunk_history = await h.client.get_workflow_handle(chunk_id).fetch_history()
    assert counts["succeeded"] + counts["failed"] == 40
    # 40 items at 5 then 10 a second: more than the lead, so the batch slept on timers.
    assert any(e.HasField("timer_started_event_attributes") for e in batch_history.events)
    replayed = [*WORKFLOWS, *(w for p in all_pipelines() for w in p.workflows())]
    replayer = Replayer(workflows=replayed, data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(batch_history)
    await replayer.replay_workflow(chunk_history)


async def test_the_bound_holds_under_a_rate_ramp_too(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Paced chunk starts page ahead of the schedule; what they start still fits the
    allowance: 20 tolerated + 5 commands against a domain failing every one."""
    rollout = Rollout(ramp=parse_ramp("base=1200/min,factor=2,after=10"), overshoot=5)
    async with _against(time_skipping_env, tmp_path, failure_rate=1.0, chunk_size=100) as h:
        upload = await h.submit(vins(500), max_failures="20", rollout=rollout)
        counts = await h.result(upload.batch_id)
    assert len(h.domain.delivered) == 20 + 5
    assert (counts["failed"], counts["cancelled"]) == (25, 475)
