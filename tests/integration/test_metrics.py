"""The worker's Prometheus endpoint agrees with the store after a batch."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest
from temporalio.client import Client

from conftest import free_port
from fleetbatch.domain import TERMINAL
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

    items = series(text, "fleetbatch_items_total")
    counted = {
        dict(labels)["status"]: value
        for labels, value in items.items()
        if dict(labels)["command"] == "flash_lights"
    }
    assert counted == {s.value: float(stored[s.value]) for s in TERMINAL if stored[s.value]}
    assert counted["failed"] > 0 and counted["skipped_no_consent"] == 7
    denied = series(text, "fleetbatch_consent_denied_total")
    assert sum(denied.values()) == 7
    chunks = series(text, "fleetbatch_chunk_duration_seconds_count")
    assert sum(chunks.values()) == 10
    latency = series(text, "fleetbatch_response_latency_seconds_count")
    assert sum(latency.values()) == 193  # every consented item answered once
    assert series(text, "fleetbatch_publish_duration_seconds_count")
    gauge = series(text, "fleetbatch_chunks_in_flight")
    ours = [v for labels, v in gauge.items() if ("batch_id", upload.batch_id) in labels]
    assert ours == [0]  # the window is empty once the batch is done
    assert "temporal_workflow_completed" in text  # the SDK's own metrics share the endpoint
