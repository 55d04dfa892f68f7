"""The worker's Prometheus endpoint agrees with the store after a batch."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from external import free_port
from fleetbatch.activities.batcher_types import batcher_workflow_id
from fleetbatch.domain import TERMINAL
from fleetbatch.domain.rollout import parse_waves
from fleetbatch.metrics import ROLLOUT_STATES
from fleetbatch.services import control
from fleetbatch.services.batchers import batcher_statuses
from fleetbatch.telemetry import metrics_runtime
from fleetbatch.temporal import DevServer
from support import harness, vins

pytestmark = pytest.mark.integration


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def series(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Samples of one metric: label set → value."""
    found = {}
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        found[labels] = float(match.group(2))
    return found


async def until_scraped(address: str, check: Callable[[str], bool]) -> str:
    """Scrape until ``check(text)`` holds; return the text."""
    async with asyncio.timeout(10):
        while not check(text := scrape(address)):
            await asyncio.sleep(0.05)
    return text


def rollout_states(text: str) -> dict[str, float]:
    """``fleetbatch_batches_by_rollout_state`` by state, summed over pipelines and commands."""
    found: dict[str, float] = {}
    for labels, value in series(text, "fleetbatch_batches_by_rollout_state").items():
        state = dict(labels)["state"]
        found[state] = found.get(state, 0) + value
    return found


def gauges(text: str) -> list[str]:
    """Names the endpoint declares as gauges."""
    return re.findall(r"^# TYPE (\S+) gauge$", text, re.MULTILINE)


async def test_item_counters_match_the_store(dev_server: DevServer, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(dev_server.address, runtime=metrics_runtime(address))
    batch = vins(200)
    async with harness(
        client,
        tmp_path,
        chunk_size=20,
        failure_rate=0.2,
        denied_vins=batch[:7],
    ) as h:
        upload = await h.submit(batch, command="flash_lights")
        await h.result(upload.batch_id)
        stored = await h.store.items.counts(upload.batch_id)
        text = scrape(address)

    base = {("service_name", "temporal-core-sdk")}
    items = series(text, "fleetbatch_items_total")
    counted = {
        dict(labels)["status"]: value
        for labels, value in items.items()
        if dict(labels)["command"] == "flash_lights"
    }
    assert counted == {s.value: float(stored[s.value]) for s in TERMINAL if stored[s.value]}
    assert counted["failed"] > 0 and counted["skipped"] == 7
    denied = series(text, "fleetbatch_consent_denied_total")
    assert sum(denied.values()) == 7
    chunks = series(text, "fleetbatch_chunk_duration_seconds_count")
    assert sum(chunks.values()) == 10
    latency = series(text, "fleetbatch_response_latency_seconds_count")
    assert sum(latency.values()) == 193  # every consented item answered once
    assert series(text, "fleetbatch_publish_duration_seconds_count")
    gauge = series(text, "fleetbatch_chunks_in_flight")
    assert gauge == {frozenset(base | {("pipeline", "vehicle"), ("command", "flash_lights")}): 0}
    breakers = series(text, "fleetbatch_breaker_state")
    # One series per breaker key, however many activities and queues reported it.
    assert breakers == {frozenset(base | {("breaker", "flash_lights")}): 0}
    assert series(text, "fleetbatch_dead_letters") == {frozenset(base): 0}
    for name in gauges(text):
        for labels in series(text, name):
            assert "batch_id" not in dict(labels), name
    assert "temporal_workflow_completed" in text  # the SDK's own metrics share the endpoint


async def test_batcher_metrics_match_its_stats(dev_server: DevServer, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(dev_server.address, runtime=metrics_runtime(address))
    async with harness(
        client,
        tmp_path,
        chunk_size=1,
        write_shards=2,
        write_max_batch=5,
        write_max_wait_seconds=0.2,
        write_requests_per_run=10,
    ) as h:
        upload = await h.submit(vins(30))
        await h.result(upload.batch_id)
        task_queue = h.settings.temporal_task_queue
        stats = [s.stats for s in await batcher_statuses(client, task_queue, 2)]
        text = scrape(address)
        for shard in range(2):
            await client.get_workflow_handle(batcher_workflow_id(task_queue, shard)).terminate()

    assert sum(series(text, "fleetbatch_batcher_requests_total").values()) == 30
    assert sum(s.written for s in stats) == 30
    flushes = series(text, "fleetbatch_batcher_flushes_total")
    assert sum(flushes.values()) == sum(s.flushes for s in stats)
    assert {dict(labels)["reason"] for labels in flushes} <= {"size", "time"}
    latency = series(text, "fleetbatch_batcher_flush_latency_seconds_count")
    assert sum(latency.values()) == sum(s.flushes for s in stats)
    continued = series(text, "fleetbatch_batcher_continued_as_new_total")
    # Reported with the next flush: a hand-over after the last flush is not counted yet.
    assert 1 <= sum(continued.values()) <= sum(s.continued_as_new for s in stats)
    assert {dict(labels)["shard"] for labels in series(text, "fleetbatch_batcher_pending")} == {
        "0",
        "1",
    }
    assert series(text, "fleetbatch_batcher_dedup_window")


async def test_rollout_state_follows_a_wave_through_its_approval(
    dev_server: DevServer, tmp_path: Path
) -> None:
    """A batch in two waves, the second approved: one batch awaits approval, then none."""
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(dev_server.address, runtime=metrics_runtime(address))
    rollout = parse_waves("50%,all")
    rollout.approve = True
    async with harness(client, tmp_path, chunk_size=5) as h:
        upload = await h.submit(vins(20), rollout=rollout)
        await h.until_progress(upload.batch_id, lambda p: p.awaiting_approval == 2)
        waiting = await until_scraped(
            address, lambda text: rollout_states(text).get("awaiting_approval") == 1
        )
        await control.approve_wave(h.client, h.store, upload.batch_id, 2)
        approved = await until_scraped(
            address, lambda text: rollout_states(text).get("awaiting_approval") == 0
        )
        await h.result(upload.batch_id)
        done = scrape(address)

    assert rollout_states(waiting) == {state: 0 for state in ROLLOUT_STATES} | {
        "awaiting_approval": 1
    }
    # The second wave runs, or the batch already finished.
    assert rollout_states(approved)["wave_running"] in (0, 1)
    assert rollout_states(done) == {state: 0 for state in ROLLOUT_STATES}
    base = {("service_name", "temporal-core-sdk"), ("pipeline", "vehicle")}
    labels = frozenset(base | {("command", "lock_doors")})
    # No ramp: the rate's series is there, at 0.
    assert series(done, "fleetbatch_ramp_allowed_items_per_second") == {labels: 0}
    for name in ("fleetbatch_batches_by_rollout_state", "fleetbatch_ramp_allowed_items_per_second"):
        assert name in gauges(done)
        for found in series(done, name):
            assert "batch_id" not in dict(found), name
