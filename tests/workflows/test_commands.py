"""Chunk behaviour on the time-skipping server: responses, timeouts, consent.

Automatic time skipping is off in these tests: the server would skip past a
response timer while a response signal is milliseconds away. Timeout tests
use a one-second response timeout in real time instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from fleetbatch.bus import CommandMessage
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.pipelines.vehicle.workflow import VehicleChunkWorkflow
from support import harness, vins


async def test_every_item_succeeds_once(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(25)
    async with harness(time_skipping_env.client, tmp_path, chunk_size=10) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    assert counts["succeeded"] == 25
    assert {row["status"] for row in items.values()} == {"succeeded"}
    assert all(row["attempts"] == 1 for row in items.values())
    assert sorted(h.domain.delivered.values()) == [1] * 25
    assert {row["effect_id"] for row in items.values()} == set(h.domain.executed)


async def test_timeout_republishes_with_same_command_id(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    slow = vins(1)[0]
    seen: list[CommandMessage] = []

    def decide(message: CommandMessage) -> Decision:
        seen.append(message)
        return Decision.DROP if message.attempt == 1 else Decision.SUCCEED

    async with harness(
        time_skipping_env.client, tmp_path, decide=decide, response_timeout_seconds=1
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit([slow])
            counts = await h.result(upload.batch_id)
        item = (await h.items(upload.batch_id))[slow]
    assert counts["succeeded"] == 1
    assert [m.attempt for m in seen] == [1, 2]
    assert seen[0].command_id == seen[1].command_id == item["effect_id"]
    assert item["attempts"] == 2
    assert h.domain.executed[item["effect_id"]] == 1


async def test_max_attempts_exhausted_fails_with_reason(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    lost, fine = vins(2)

    def decide(message: CommandMessage) -> Decision:
        return Decision.DROP if message.vin == lost else Decision.SUCCEED

    async with harness(
        time_skipping_env.client, tmp_path, decide=decide, response_timeout_seconds=1
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit([lost, fine])
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    assert counts["failed"] == 1
    assert counts["succeeded"] == 1
    assert items[lost]["status"] == "failed"
    assert items[lost]["attempts"] == 3
    # The reason says what happened: when each attempt went out.
    reason = re.fullmatch(
        r"no response within 1s of any of 3 attempts \(published at "
        r"(\d\d:\d\d:\d\d), (\d\d:\d\d:\d\d), (\d\d:\d\d:\d\d) UTC\)",
        items[lost]["error"],
    )
    assert reason, items[lost]["error"]
    assert list(reason.groups()) == sorted(reason.groups())
    assert h.domain.delivered[items[lost]["effect_id"]] == 3
    assert h.domain.executed[items[lost]["effect_id"]] == 0


async def test_domain_failure_is_an_outcome(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    bad, good = vins(2)

    def decide(message: CommandMessage) -> Decision:
        return Decision.FAIL if message.vin == bad else Decision.SUCCEED

    async with harness(time_skipping_env.client, tmp_path, decide=decide) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit([bad, good])
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    assert counts == {**counts, "failed": 1, "succeeded": 1}
    assert items[bad]["error"] == "domain rejected the command: vehicle unreachable"
    assert items[bad]["attempts"] == 1


async def test_no_consent_is_skipped_and_never_published(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    denied, allowed = vins(2)
    async with harness(time_skipping_env.client, tmp_path, denied_vins=[denied]) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit([denied, allowed])
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    assert counts["skipped"] == 1
    assert items[denied]["status"] == "skipped"
    assert items[denied]["error"] == "owner has not consented"
    assert items[denied]["effect_id"] not in h.domain.delivered
    assert items[allowed]["status"] == "succeeded"


async def test_per_vin_mode_names_each_workflow_after_its_item(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """One workflow per VIN, named by the item's id: a VIN is never in a workflow id."""
    batch = vins(3)
    async with harness(time_skipping_env.client, tmp_path, chunk_size=1) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    for vin in batch:
        workflow_id = f"fleetbatch-{upload.batch_id}-item-{items[vin]['id']}"
        assert items[vin]["workflow_id"] == workflow_id
        assert vin not in workflow_id
        handle = h.client.get_workflow_handle_for(VehicleChunkWorkflow.run, workflow_id)
        assert (await handle.result()).size == 1
