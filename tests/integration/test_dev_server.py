"""The real embedded dev server: per-VIN and chunked batches end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from temporalio.client import Client

from fleetbatch.pipelines.vehicle.workflow import VehicleChunkWorkflow
from support import Harness, harness, vins

pytestmark = pytest.mark.integration


def expected_status(h: Harness, row: dict[str, object], denied: set[str]) -> str:
    """What the simulators decided for this item."""
    if row["key"] in denied:
        return "skipped"
    answer = h.domain.results[str(row["effect_id"])]
    return "succeeded" if answer.ok else "failed"


async def find_by_vin(client: Client, vin: str, batch_id: str) -> list[str]:
    """Workflow ids of the batch whose item keys attribute holds ``vin`` (visibility
    lags a little; other tests' batches on the session's server hold the same VINs)."""
    query = f"FleetbatchKeys = '{vin}' AND FleetbatchBatchId = '{batch_id}'"
    async with asyncio.timeout(20):
        while True:
            found = [w.id async for w in client.list_workflows(query)]
            if found:
                return found
            await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize(("chunk_size", "count"), [(1, 60), (50, 1000)], ids=["per-vin", "chunked"])
async def test_batch_on_the_dev_server(
    dev_client: Client, tmp_path: Path, chunk_size: int, count: int
) -> None:
    batch = vins(count)
    denied = set(batch[::17])
    async with harness(
        dev_client,
        tmp_path,
        chunk_size=chunk_size,
        max_in_flight=20,
        denied_vins=sorted(denied),
        latency_ms=5,
        failure_rate=0.1,
    ) as h:
        upload = await h.submit(batch)
        counts = await h.result(upload.batch_id)
        items = await h.items(upload.batch_id)
        probe = batch[count // 2]
        found = await find_by_vin(dev_client, probe, upload.batch_id)

    assert upload.accepted == count
    assert len(items) == count
    for row in items.values():
        assert row["status"] == expected_status(h, row, denied), row
    assert counts["skipped"] == len(denied)
    assert counts["succeeded"] + counts["failed"] == count - len(denied)
    assert 0 < counts["failed"] < count  # the simulator's failure rate showed up
    # Each delivered command id reached the simulator exactly once and ran once.
    delivered = {row["effect_id"] for row in items.values() if row["key"] not in denied}
    assert set(h.domain.delivered) == delivered
    assert set(h.domain.delivered.values()) == {1}
    assert set(h.domain.executed.values()) == {1}
    # Any VIN's execution is one search away.
    assert found == [items[probe]["workflow_id"]]
    if chunk_size == 1:
        assert found == [f"fleetbatch-{upload.batch_id}-item-{items[probe]['id']}"]
    chunk = await dev_client.get_workflow_handle_for(VehicleChunkWorkflow.run, found[0]).result()
    assert chunk.size == chunk_size
