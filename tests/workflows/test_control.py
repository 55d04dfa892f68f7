"""Operators in control: pause, resume, cancel, failure tolerance, redrive, the
circuit breaker and leases on item keys, on the time-skipping server in real time."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from fleetbatch.bus import CommandMessage
from fleetbatch.config import CommandSettings
from fleetbatch.domain import effect_id_for
from fleetbatch.errors import ConfigError
from fleetbatch.pipelines.vehicle.simulators import Decision
from fleetbatch.services import control
from fleetbatch.services.progress import snapshot
from fleetbatch.store.tables import item_leases
from fleetbatch.store.tables import items as items_table
from support import FailsUntilHealthy, Harness, breaker_harness, harness, vins


async def _leases(h: Harness) -> int:
    async with h.store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(item_leases))).scalar_one())


async def test_pause_then_resume_keeps_every_item(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(200)
    async with harness(
        time_skipping_env.client, tmp_path, chunk_size=10, max_in_flight=2, latency_ms=20
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            await h.until_progress(upload.batch_id, lambda p: p.chunks_done >= 2)
            await control.pause(h.client, h.store, upload.batch_id)
            paused = await h.until_progress(
                upload.batch_id, lambda p: p.phase == "paused" and p.in_flight_chunks == 0
            )
            await asyncio.sleep(0.5)
            still = await h.progress(upload.batch_id)
            await control.resume(h.client, h.store, upload.batch_id)
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
    # Nothing moved while paused, nothing was lost or repeated after.
    assert still.chunks_done == paused.chunks_done and still.in_flight_chunks == 0
    assert sum(paused.counts.values()) < 200
    assert counts["succeeded"] == 200
    assert {row["status"] for row in items.values()} == {"succeeded"}
    assert sorted(h.domain.delivered.values()) == [1] * 200


async def test_cancel_leaves_every_item_terminal_and_releases_every_lease(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(300)
    unanswered = set(batch[20:])  # chunks past the first two wait for answers when cancelled

    def decide(message: CommandMessage) -> Decision:
        return Decision.DROP if message.vin in unanswered else Decision.SUCCEED

    async with harness(
        time_skipping_env.client, tmp_path, decide=decide, chunk_size=10, max_in_flight=3
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            await h.until_progress(upload.batch_id, lambda p: p.counts.get("succeeded", 0) == 20)
            await h.until(lambda: len(h.domain.delivered) >= 30)  # a chunk is waiting
            await control.cancel(h.client, h.store, upload.batch_id, "wrong file")
            counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        leases = await _leases(h)
        stored = await h.store.batches.get(upload.batch_id)
    assert (counts["succeeded"], counts["cancelled"]) == (20, 280)
    assert counts["pending"] == counts["in_flight"] == 0
    assert {row["error"] for row in items.values() if row["status"] == "cancelled"} == {
        "batch stopped: wrong file"
    }
    assert leases == 0
    assert stored.status == "cancelled"
    assert stored.summary == {"counts": counts, "reason": "wrong file"}
    # Untouched items were never sent.
    assert len(h.domain.delivered) < 300


async def test_failures_beyond_the_tolerated_share_abort_the_batch(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with harness(
        time_skipping_env.client,
        tmp_path,
        decide=lambda message: Decision.FAIL,
        chunk_size=10,
        max_in_flight=2,
        breaker_min_calls=10_000,  # the tolerance decides here, not the breaker
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(400), max_failures="10%")
            counts = await h.result(upload.batch_id)
        stored = await h.store.batches.get(upload.batch_id)
    # Aborted on the first count past 40; chunks already out still finished theirs.
    assert stored.status == "aborted"
    assert stored.summary is not None and stored.summary["counts"] == counts
    found = re.fullmatch(
        r"(\d+) items failed, more than the tolerated 10%", stored.summary["reason"]
    )
    assert found is not None and 40 < int(found[1]) <= counts["failed"]
    assert 40 < counts["failed"] < 400
    assert counts["failed"] + counts["cancelled"] == 400
    # Every failed item was delivered; past those, at most the window's chunks
    # (2 of 10) were out when the abort came, and their unanswered items cancelled.
    assert counts["failed"] <= len(h.domain.delivered) <= counts["failed"] + 2 * 10


def fails_first_time(flaky: set[str], first_ids: set[str]) -> Callable[[CommandMessage], Decision]:
    """The domain rejects the flaky VINs' first commands (ids in ``first_ids``, filled
    once the batch id is known); a redrive's new command ids succeed."""

    def decide(message: CommandMessage) -> Decision:
        fails = message.vin in flaky and message.command_id in first_ids
        return Decision.FAIL if fails else Decision.SUCCEED

    return decide


async def test_redrive_runs_only_the_failed_items_under_new_command_ids(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    batch = vins(50)
    flaky = set(batch[:10])
    first_ids: set[str] = set()
    async with harness(
        time_skipping_env.client,
        tmp_path,
        decide=fails_first_time(flaky, first_ids),
        chunk_size=10,
        breaker_min_calls=10_000,
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            first_ids.update(effect_id_for(upload.batch_id, v) for v in batch)
            first = await h.result(upload.batch_id)
            before = await h.items(upload.batch_id)
            count = await control.redrive(h.client, h.settings, h.store, upload.batch_id)
            again = await h.result(upload.batch_id)
        after = await h.items(upload.batch_id)
        stored = await h.store.batches.get(upload.batch_id)
    assert (first["failed"], first["succeeded"], count) == (10, 40, 10)
    assert again["succeeded"] == 50 and stored.status == "completed" and stored.redrives == 1
    for vin in batch:
        if vin in flaky:
            assert after[vin]["effect_id"] == effect_id_for(upload.batch_id, vin, 1)
            assert h.domain.delivered[after[vin]["effect_id"]] == 1
        else:  # untouched
            assert after[vin] == before[vin]
    assert sum(h.domain.delivered.values()) == 60


# A type with a rate publishes on its rate-limited queue; one without, in the chunk.
PUBLISH_PATHS = pytest.mark.parametrize("rate", ["600/min", "off"], ids=["queue", "in-chunk"])


@PUBLISH_PATHS
async def test_breaker_opens_lets_a_probe_through_and_closes(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, rate: str
) -> None:
    domain = FailsUntilHealthy()
    async with breaker_harness(
        time_skipping_env.client,
        tmp_path,
        domain,
        latency_ms=150,
        max_in_flight=1,
        cooldown_seconds=1.0,
        commands={"lock_doors": CommandSettings(rate=rate)},
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(60))
            seen: list[str] = []

            async def watch_breaker() -> None:
                while True:
                    state = (await h.store.breakers.get("lock_doors")).state
                    if not seen or seen[-1] != state:
                        seen.append(state)
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch_breaker())
            await h.until(lambda: "open" in seen)
            held = sum(h.domain.delivered.values())
            await asyncio.sleep(0.5)  # inside the cool-down: nothing is published
            assert sum(h.domain.delivered.values()) == held
            domain.healthy = True
            counts = await h.result(upload.batch_id)
            watcher.cancel()
        final = await h.store.breakers.get("lock_doors")
    assert seen[:4] == ["closed", "open", "half_open", "closed"], seen
    assert final.state == "closed"
    assert counts["failed"] == held == 10
    assert counts["succeeded"] == 50


@PUBLISH_PATHS
async def test_two_batches_never_have_a_vin_in_flight_at_once(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, rate: str
) -> None:
    shared = vins(40)
    overlaps: list[str] = []
    async with harness(
        time_skipping_env.client,
        tmp_path,
        chunk_size=5,
        max_in_flight=4,
        latency_ms=30,
        commands={"lock_doors": CommandSettings(rate=rate)},
    ) as h:
        query = (
            select(items_table.c.key)
            .where(items_table.c.status == "in_flight")
            .group_by(items_table.c.key)
            .having(func.count() > 1)
        )

        async def watch_items() -> None:
            while True:
                async with h.store.engine.connect() as conn:
                    overlaps.extend((await conn.execute(query)).scalars())
                await asyncio.sleep(0.005)

        with time_skipping_env.auto_time_skipping_disabled():
            watcher = asyncio.create_task(watch_items())
            first, second = await asyncio.gather(h.submit(shared), h.submit(shared))
            counts = await asyncio.gather(h.result(first.batch_id), h.result(second.batch_id))
            watcher.cancel()
        leases = await _leases(h)
    assert overlaps == []
    assert [c["succeeded"] for c in counts] == [40, 40]
    assert sorted(h.domain.delivered.values()) == [1] * 80
    assert leases == 0


async def test_held_chunks_wait_in_the_workflow_and_the_probe_goes_first(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """With the breaker open, chunks on the rate-limited queue wait on timers, not in
    publish activities retried on the queue; once half-open, the probe's publish goes
    out at once and the breaker closes."""
    domain = FailsUntilHealthy()
    async with breaker_harness(
        time_skipping_env.client,
        tmp_path,
        domain,
        latency_ms=50,
        max_in_flight=4,
        cooldown_seconds=1.5,
        commands={"lock_doors": CommandSettings(rate="200/s")},
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(vins(60))
            await h.until(lambda: len(domain.delivered_at) >= 10)
            while (await h.store.breakers.get("lock_doors")).state != "open":
                await asyncio.sleep(0.02)
            domain.healthy = True
            while (await h.store.breakers.get("lock_doors")).state == "open":
                await asyncio.sleep(0.02)
            half_open_at = time.monotonic()
            counts = await h.result(upload.batch_id)
        chunks = {row["workflow_id"] for row in (await h.items(upload.batch_id)).values()}
        attempts = []
        for chunk in chunks:
            history = await h.client.get_workflow_handle(chunk).fetch_history()
            attempts += [
                e.activity_task_started_event_attributes.attempt
                for e in history.events
                if e.HasField("activity_task_started_event_attributes")
            ]
        final = (await h.store.breakers.get("lock_doors")).state
    assert counts["succeeded"] + counts["failed"] == 60
    assert counts["succeeded"] > 0
    # Nothing was retried on the queue: held publishes returned, their chunks waited.
    assert attempts and set(attempts) == {1}
    after = [t for t in domain.delivered_at if t >= half_open_at]
    assert after and after[0] - half_open_at < 2.0  # the probe went out promptly
    assert final == "closed"


async def test_redrive_by_reason_keeps_the_whole_batch_in_its_progress(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A redrive of the items that failed with one reason: the batch's progress (the
    page's and the CLI's snapshot) counts every item of the batch all along, never
    only the redriven ones."""
    batch = vins(50)
    flaky = set(batch[:10])
    first_ids: set[str] = set()
    async with harness(
        time_skipping_env.client,
        tmp_path,
        decide=fails_first_time(flaky, first_ids),
        chunk_size=10,
        breaker_min_calls=10_000,
    ) as h:
        with time_skipping_env.auto_time_skipping_disabled():
            upload = await h.submit(batch)
            first_ids.update(effect_id_for(upload.batch_id, v) for v in batch)
            await h.result(upload.batch_id)
            [(status, reason, n)] = await h.store.items.failure_reasons(upload.batch_id)
            assert (status, n) == ("failed", 10)
            with pytest.raises(ConfigError, match="cannot redrive 'succeeded' items"):
                await control.redrive(h.client, h.settings, h.store, upload.batch_id, ["succeeded"])
            none = await control.redrive(
                h.client, h.settings, h.store, upload.batch_id, ["failed"], reason + " (not it)"
            )
            count = await control.redrive(
                h.client, h.settings, h.store, upload.batch_id, ["failed"], reason
            )
            seen = []
            while True:
                snap = await snapshot(h.client, h.store, upload.batch_id)
                seen.append(snap)
                if snap.settled:
                    break
                await asyncio.sleep(0.05)
    assert (none, count) == (0, 10)
    for snap in seen:
        assert snap.total == 50 and sum(snap.counts.values()) == 50, snap
        assert snap.counts["succeeded"] >= 40, snap
    assert seen[-1].counts["succeeded"] == 50 and seen[-1].phase == "completed"
