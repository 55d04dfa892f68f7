"""Each item's attempts as the chunk workflow publishes and settles them: what went
out when, under which effect id, and what came back (or the timeout).

As in test_commands.py, time skipping is off and the response timeout is one
second of real time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from fleetbatch.bus import CommandMessage
from fleetbatch.config import CommandSettings
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.services import control
from support import harness, vins

# Publishing on the type's rate-limited queue (one activity per item), in the chunk's
# own local activity (a whole round at once), and per-VIN chunks recording their
# outcomes through the write batcher.
PATHS = {
    "queue": {"chunk_size": 5},
    "in-chunk": {"chunk_size": 5, "commands": {"lock_doors": CommandSettings(rate="off")}},
    "batched": {"chunk_size": 1, "write_shards": 2, "write_max_wait_seconds": 0.3},
}


@pytest.mark.parametrize("path", list(PATHS))
async def test_attempts_record_publishes_answers_and_timeouts(
    own_time_skipping_env: WorkflowEnvironment, tmp_path: Path, path: str
) -> None:
    # A server of its own: answers carry the workflow's time and the item's last write
    # the store's, which agree only on a server whose clock no other test skipped.
    time_skipping_env = own_time_skipping_env
    options: dict[str, Any] = PATHS[path]
    late, lost, rejected, fine, denied = vins(5)

    def decide(message: CommandMessage) -> Decision:
        if message.vin == lost or (message.vin == late and message.attempt == 1):
            return Decision.DROP
        return Decision.FAIL if message.vin == rejected else Decision.SUCCEED

    async with harness(
        time_skipping_env.client,
        tmp_path,
        decide=decide,
        denied_vins=[denied],
        response_timeout_seconds=1,
        **options,
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit([late, lost, rejected, fine, denied])
            await h.result(upload.batch_id)
        history = {
            vin: await h.store.attempts.for_item(upload.batch_id, vin)
            for vin in (late, lost, rejected, fine, denied)
        }

    def outcomes(vin: str) -> list[tuple[int, str | None]]:
        return [(a.attempt, a.outcome) for a in history[vin].attempts]

    assert outcomes(late) == [(1, "timed out after 1s"), (2, "succeeded")]
    assert outcomes(lost) == [
        (1, "timed out after 1s"),
        (2, "timed out after 1s"),
        (3, "timed out after 1s"),
    ]
    assert outcomes(rejected) == [(1, "failed: domain rejected the command: vehicle unreachable")]
    assert outcomes(fine) == [(1, "succeeded")]
    assert outcomes(denied) == []
    assert history[denied].item["status"] == "skipped"

    for vin in (late, lost, rejected, fine):
        item, attempts = history[vin].item, history[vin].attempts
        # Every attempt went out under the item's one effect id, in order, as counted.
        assert {a.effect_id for a in attempts} == {item["effect_id"]}
        assert len(attempts) == item["attempts"]
        published = [a.published_at for a in attempts]
        assert published == sorted(published)
        assert all(
            t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 for t in published
        )
    # A re-publish waited for the timeout: a second or more after the first.
    first, second = history[late].attempts
    assert (second.published_at - first.published_at).total_seconds() >= 1
    # Answers carry their time, between the publish and the item's final write;
    # timeouts have none.
    answered = second.answered_at
    assert (
        answered is not None and second.published_at <= answered <= history[late].item["updated_at"]
    )
    assert first.answered_at is None
    assert all(a.answered_at is None for a in history[lost].attempts)
    assert history[rejected].attempts[0].answered_at is not None


async def test_a_cancel_ends_the_waiting_attempt_cancelled(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    [lost] = vins(1, 40)
    async with harness(
        time_skipping_env.client,
        tmp_path,
        decide=lambda _message: Decision.DROP,
        response_timeout_seconds=1,
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit([lost])
            # Cancelled while its second attempt waits for an answer.
            await h.until(lambda: sum(h.domain.delivered.values()) == 2)
            await control.cancel(h.client, h.store, upload.batch_id, "wrong file")
            await h.result(upload.batch_id)
        history = await h.store.attempts.for_item(upload.batch_id, lost)
    assert history.item["status"] == "cancelled"
    assert [(a.attempt, a.outcome) for a in history.attempts] == [
        (1, "timed out after 1s"),
        (2, "cancelled: batch stopped: wrong file"),
    ]
