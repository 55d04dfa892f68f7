"""Staged rollouts: waves, their failure gates and manual approval, on the
time-skipping server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from fleetbatch.config import CommandSettings
from fleetbatch.domain.rollout import Rollout, parse_waves, wave_ends
from fleetbatch.errors import BatchConflictError, ConfigError
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.services import control
from fleetbatch.workflows import ApproveWave, BatchWorkflow
from support import harness, vins

# The breaker would open on these failure rates first, and the command type's rate
# would take minutes over 10,000 items: the gate decides here, at full speed.
_NO_BREAKER = {
    "breaker_min_calls": 1_000_000,
    "commands": {"lock_doors": CommandSettings(rate="off")},
}


def _gated(waves: str, on_gate_failure: str = "abort", **kwargs: object) -> Rollout:
    rollout = parse_waves(waves)
    rollout.gate_failures, rollout.gate_min_items = "5%", 20
    rollout.on_gate_failure = on_gate_failure
    for name, value in kwargs.items():
        setattr(rollout, name, value)
    return rollout


async def test_a_failing_first_wave_stops_the_batch_before_the_second(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with harness(
        time_skipping_env.client, tmp_path, failure_rate=0.5, chunk_size=30, **_NO_BREAKER
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(10_000), rollout=_gated("1%,10%,100%"))
            counts = await h.result(upload.batch_id)
        progress = await h.progress(upload.batch_id)
        stored = await h.store.batches.get(upload.batch_id)
    # The first wave is 100 items (30 + 30 + 30 + a chunk cut to 10), all out at
    # once (the window holds 20 chunks): nothing past them was ever sent, first or
    # re-published. The overshoot beyond a wave is zero.
    assert len(h.domain.delivered) <= 100
    assert sum(h.domain.delivered.values()) == len(h.domain.delivered)
    assert counts["failed"] + counts["succeeded"] + counts["cancelled"] == 10_000
    assert counts["cancelled"] >= 9_900
    assert stored.status == "aborted"
    # The gate judges as chunks report, past 20 executed items: the first report.
    assert stored.summary is not None
    found = re.fullmatch(
        r"wave 1 of 3: (\d+) of (\d+) items failed \(([\d.]+)%\), more than the gate's 5%",
        stored.summary["reason"],
    )
    assert found is not None, stored.summary["reason"]
    failed, executed = int(found[1]), int(found[2])
    assert 20 <= executed <= 100 and failed / executed > 0.05
    assert float(found[3]) == pytest.approx(failed / executed * 100, abs=0.1)
    assert (progress.wave, progress.waves_total, progress.gate) == (1, 3, "failed")
    assert progress.gate_reason == stored.summary["reason"]


async def test_a_healthy_batch_runs_every_wave(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with harness(time_skipping_env.client, tmp_path, chunk_size=100, **_NO_BREAKER) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(10_000), rollout=_gated("1%,10%,100%"))
            counts = await h.result(upload.batch_id)
        progress = await h.progress(upload.batch_id)
        stored = await h.store.batches.get(upload.batch_id)
    assert counts["succeeded"] == 10_000
    assert sorted(set(h.domain.delivered.values())) == [1]
    assert stored.status == "completed"
    assert (progress.wave, progress.waves_total, progress.gate) == (3, 3, "holding")


async def test_a_gate_that_pauses_holds_the_next_wave_until_resumed(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(400)
    failing = set(batch[:10])  # 10 of the first wave's 40 (one chunk): 25 %

    def decide(message: object) -> Decision:
        return Decision.FAIL if getattr(message, "vin", None) in failing else Decision.SUCCEED

    async with harness(
        time_skipping_env.client, tmp_path, decide=decide, chunk_size=40, **_NO_BREAKER
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch, rollout=_gated("10%,all", on_gate_failure="pause"))
            paused = await h.until_progress(
                upload.batch_id, lambda p: p.phase == "paused" and p.in_flight_chunks == 0
            )
            sent = len(h.domain.delivered)
            with pytest.raises(BatchConflictError) as rejected:
                await control.approve_wave(h.client, h.store, upload.batch_id, 2)
            await control.resume(h.client, h.store, upload.batch_id)
            counts = await h.result(upload.batch_id)
        progress = await h.progress(upload.batch_id)
    assert sent == 40
    assert paused.gate == "failed"
    assert paused.gate_reason == (
        "wave 1 of 2: 10 of 40 items failed (25%), more than the gate's 5%"
    )
    assert str(rejected.value) == (
        f"batch {upload.batch_id!r} is not waiting for a wave's approval"
    )
    # Resumed: the operator waived the gate, and the next wave ran.
    assert (counts["succeeded"], counts["failed"]) == (390, 10)
    assert (progress.wave, progress.gate) == (2, "holding")


async def test_a_wave_waits_for_approval_through_the_update(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with harness(time_skipping_env.client, tmp_path, chunk_size=10) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(200), rollout=_gated("10%,50%,all", approve=True))
            waiting = await h.until_progress(
                upload.batch_id, lambda p: p.awaiting_approval is not None
            )
            sent_first = len(h.domain.delivered)
            handle = h.batch(upload.batch_id)
            with pytest.raises(WorkflowUpdateFailedError) as wrong:
                await handle.execute_update(BatchWorkflow.approve_wave, ApproveWave(3))
            approved = await handle.execute_update(BatchWorkflow.approve_wave, ApproveWave(2))
            third = await h.until_progress(upload.batch_id, lambda p: p.awaiting_approval == 3)
            sent_second = len(h.domain.delivered)
            await control.approve_wave(h.client, h.store, upload.batch_id, 3)
            counts = await h.result(upload.batch_id)
    assert (waiting.wave, waiting.waves_total, waiting.awaiting_approval) == (1, 3, 2)
    assert sent_first == 20 and sent_second == 100
    assert isinstance(wrong.value.cause, ApplicationError)
    assert wrong.value.cause.message == (
        f"batch {upload.batch_id!r} waits for approval of wave 2, not wave 3"
    )
    assert (approved.wave, approved.awaiting_approval) == (2, None)
    assert third.wave == 2
    assert counts["succeeded"] == 200


@pytest.mark.parametrize(
    ("text", "ends"),
    [
        ("1%,10%,100%", [100, 1000, 10_000]),
        ("50,500,all", [50, 500, 10_000]),
        ("50x2", [50, 150, 350, 750, 1550, 3150, 6350, 10_000]),
        ("1%,10%", [100, 1000, 10_000]),
    ],
)
def test_wave_ends(text: str, ends: list[int]) -> None:
    assert wave_ends(parse_waves(text), 10_000) == ends


def test_unreadable_waves_are_refused() -> None:
    with pytest.raises(ConfigError, match=re.escape("each wave must end past the one before")):
        parse_waves("10%,1%")
    with pytest.raises(ConfigError, match=re.escape("'all' can only be the last wave")):
        parse_waves("all,50")
