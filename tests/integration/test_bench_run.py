"""``fleetbatch bench`` on tiny sizes: every row complete, every figure taken."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from fleetbatch_bench.configs import BenchConfig
from fleetbatch_bench.runner import bench_settings, run_bench, start_dev_server
from fleetbatch_bench.skeleton import SkeletonBatchWorkflow, SkeletonInput, skeleton_worker

pytestmark = pytest.mark.integration

TINY = [
    BenchConfig("reference", 10, 1, reference=True),
    BenchConfig("chunk-5", 50, 5),
    BenchConfig("skeleton-5", 50, 5, skeleton=True),
]


async def test_runner_measures_reference_and_chunked_runs() -> None:
    started: list[str] = []
    results = await run_bench(TINY, max_in_flight=5, on_start=lambda c: started.append(c.label))

    assert started == ["reference", "chunk-5", "skeleton-5"]
    assert [(r.label, r.items, r.chunk_size) for r in results] == [
        ("reference", 10, 1),
        ("chunk-5", 50, 5),
        ("skeleton-5", 50, 5),
    ]
    for r in results:
        assert r.terminal == r.items
        assert r.counts == {"succeeded": r.items}
        assert r.server_state == "memory"
        # The skeleton stores no file: it has no intake.
        assert r.wall_seconds > r.intake_seconds >= 0
        assert (r.intake_seconds == 0) == (r.label == "skeleton-5")
        assert r.items_per_second == pytest.approx(r.items / r.wall_seconds)
        assert 0 < r.longest_history < r.history_events
        assert r.history_events_per_item == r.history_events / r.items
        assert r.worker_peak_rss and r.server_peak_rss
        assert r.worker_cpu_seconds and r.server_cpu_seconds
    reference, chunked, skeleton = results
    # One parent and a child per VIN; one batch workflow and a chunk workflow per 5 VINs.
    assert reference.workflow_executions == 1 + 10
    assert chunked.workflow_executions == 1 + 10
    assert skeleton.workflow_executions == 1 + 10
    # The skeleton has fleetbatch's chunk shape: as many events, give or take the
    # VIN search attribute and the batch's paging.
    assert skeleton.history_events_per_item == pytest.approx(
        chunked.history_events_per_item, rel=0.25
    )
    # Four activities per VIN cost far more events than a shared chunk does.
    assert reference.history_events_per_item > 2 * chunked.history_events_per_item


def test_cli_prints_json() -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "fleetbatch.cli.main", "bench"),
            *("--only", "chunk-10", "--items", "20", "--max-in-flight", "2", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    [row] = document["results"]
    assert (row["label"], row["items"], row["chunk_size"], row["terminal"]) == (
        "chunk-10",
        20,
        10,
        20,
    )
    assert row["vs_reference"] is None
    assert document["settings"]["max_in_flight"] == 2
    assert "bench chunk-10: 20 VINs" in done.stderr


async def test_skeleton_continues_as_new_and_counts_every_item(dev_client: Client) -> None:
    queue = f"skeleton-{uuid.uuid4()}"
    async with skeleton_worker(dev_client, queue):
        handle = await dev_client.start_workflow(
            SkeletonBatchWorkflow.run,
            SkeletonInput(items=53, chunk_size=5, max_in_flight=3, max_history_events=40),
            id=queue,
            task_queue=queue,
        )
        assert await handle.result() == 53
        runs = [e async for e in dev_client.list_workflows(f"WorkflowId = '{queue}'")]
    assert len(runs) > 1  # continued as new, children's reports reaching the new runs


async def test_a_dev_server_that_cannot_start_is_retried_on_other_ports(tmp_path: Path) -> None:
    settings = bench_settings(tmp_path, BenchConfig("chunk-5", 10, 5), max_in_flight=2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings.dev_server_port))
        taken.listen()
        server, used = await start_dev_server(settings)
        try:
            assert used.dev_server_port != settings.dev_server_port
            assert server.address == f"127.0.0.1:{used.dev_server_port}"
        finally:
            server.stop()
