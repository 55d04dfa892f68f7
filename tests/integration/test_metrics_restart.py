"""``fleetbatch_items_total`` counts each item once, where its terminal status is
written: a worker restarted mid-batch (its chunks' workflow tasks and activities run
again on the new one) counts nothing twice, and the counters equal the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import Client
from test_metrics import scrape, series

from external import free_port
from fleetbatch.domain import TERMINAL
from fleetbatch.telemetry import metrics_runtime
from fleetbatch.temporal import DevServer
from support import harness, vins

pytestmark = pytest.mark.integration


async def test_item_counters_equal_the_store_after_a_worker_restart(
    dev_server: DevServer, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(dev_server.address, runtime=metrics_runtime(address))
    batch = vins(600)
    async with harness(
        client,
        tmp_path,
        chunk_size=50,
        max_in_flight=4,
        latency_ms=20,
        failure_rate=0.1,
        denied_vins=batch[:9],
        breaker_min_calls=10_000,
    ) as h:
        upload = await h.submit(batch, command="honk_horn")

        async def some_done() -> bool:
            counts = await h.store.counts.get(upload.batch_id)
            return 100 <= sum(counts.by_status[s.value] for s in TERMINAL) < 500

        while not await some_done():
            await asyncio.sleep(0.05)
        await h.restart_worker()
        await h.result(upload.batch_id)
        stored = await h.store.items.counts(upload.batch_id)
        text = scrape(address)

    counted: dict[str, float] = {}
    for labels, value in series(text, "fleetbatch_items_total").items():
        named = dict(labels)
        if named["command"] == "honk_horn":
            assert named["pipeline"] == "vehicle"
            counted[named["status"]] = counted.get(named["status"], 0) + value
    assert counted == {s.value: float(stored[s.value]) for s in TERMINAL if stored[s.value]}
    assert sum(counted.values()) == 600
    assert counted["failed"] > 0 and counted["skipped"] == 9
