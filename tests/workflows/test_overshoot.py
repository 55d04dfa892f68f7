"""Abort rules that bound the overshoot, counted at the domain simulator, on the
time-skipping server (``docs/rollouts.md``, "The overshoot bound")."""

from __future__ import annotations

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from fleetbatch.config import CommandSettings
from fleetbatch.domain.rollout import Rollout, parse_waves
from support import harness, vins

# The breaker would open first; without a rate the batch runs at full speed.
_NO_BREAKER = {
    "breaker_min_calls": 1_000_000,
    "commands": {"lock_doors": CommandSettings(rate="off")},
}


def _failed_at_domain(results: dict[str, object]) -> int:
    return sum(not getattr(answer, "ok", True) for answer in results.values())


async def test_max_failures_with_a_bound_stops_within_it_against_a_failing_domain(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The issue's batch: 1,200 items, --max-failures 2% (24 tolerated), chunks of 100,
    a window of 20; without a bound every item was out from the first second. With
    --overshoot 10 against a domain failing every command, the 34 the rule can afford
    go out, all fail, and the batch aborts: not one command more."""
    async with harness(
        time_skipping_env.client, tmp_path, failure_rate=1.0, chunk_size=100, **_NO_BREAKER
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(
                vins(1200), max_failures="2%", max_in_flight=20, rollout=Rollout(overshoot=10)
            )
            counts = await h.result(upload.batch_id)
        stored = await h.store.batches.get(upload.batch_id)
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
    async with harness(
        time_skipping_env.client, tmp_path, failure_rate=0.05, chunk_size=100, **_NO_BREAKER
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(
                vins(1200), max_failures="2%", max_in_flight=20, rollout=Rollout(overshoot=10)
            )
            counts = await h.result(upload.batch_id)
        stored = await h.store.batches.get(upload.batch_id)
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
    async with harness(
        time_skipping_env.client, tmp_path, failure_rate=0.5, chunk_size=30, **_NO_BREAKER
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(10_000), rollout=rollout)
            counts = await h.result(upload.batch_id)
        progress = await h.progress(upload.batch_id)
    assert len(h.domain.delivered) == 19 + 5
    assert counts["cancelled"] == 10_000 - 24
    assert (progress.gate, progress.wave) == ("failed", 1)
