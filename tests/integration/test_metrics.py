"""The worker's Prometheus endpoint agrees with the store after a batch."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from temporalio.client import Client

from external import free_port
from fleetbatch.activities.batcher_types import batcher_workflow_id
from fleetbatch.domain import TERMINAL
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
