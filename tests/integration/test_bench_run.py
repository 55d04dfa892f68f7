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

from fleetbatch_bench.actions import LIST_PRICE_PER_MILLION_ACTIONS
from fleetbatch_bench.configs import BenchConfig
from fleetbatch_bench.measure import Run, billable_actions
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


async def test_runner_counts_the_cost_of_an_item() -> None:
    results = await run_bench(TINY, max_in_flight=5)
    for r in results:
        # Every execution's history read (none sampled at this size), actions > 0.
        assert r.actions_histories_read == r.workflow_executions
        assert not r.actions_sampled
        assert r.actions_per_1000_items == pytest.approx(1000 * sum(r.actions.values()) / r.items)
        # cost = actions per item * the list price of an action
        assert r.cost_per_million_items_usd == pytest.approx(
            r.actions_per_1000_items / 1000 * LIST_PRICE_PER_MILLION_ACTIONS
        )
        assert r.history_bytes and r.history_bytes_per_item == r.history_bytes / r.items
        assert r.worker_cpu_seconds and r.server_cpu_seconds
        assert r.worker_cpu_ms_per_item == pytest.approx(1000 * r.worker_cpu_seconds / r.items)
        assert r.server_cpu_ms_per_item == pytest.approx(1000 * r.server_cpu_seconds / r.items)
        # The simulators and responder run in the worker's process: no figure of their own.
        assert r.services_in_process and r.services_cpu_ms_per_item is None
    reference, chunked, skeleton = results
    # The reference, by hand: its parent's start (1) and two paging activities (a page
    # of 10, then an empty one), and per VIN a child start (2) and four activities.
    assert reference.actions == {
        "workflow_started": 1,
        "activity": 2 + 10 * 4,
        "child_workflow_started": 10 * 2,
    }
    assert reference.actions_per_1000_items == pytest.approx(6_300)
    # Five VINs a workflow: a chunk's few actions are shared by its items.
    assert reference.actions_per_1000_items > 3 * chunked.actions_per_1000_items
    assert chunked.actions["timer"] >= 10  # a response timer per chunk
    assert reference.history_bytes_per_item > 2 * chunked.history_bytes_per_item
    assert skeleton.actions_per_1000_items == pytest.approx(
        chunked.actions_per_1000_items, rel=0.35
    )


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
    assert row["actions_per_1000_items"] > 0
    assert row["cost_per_million_items_usd"] == pytest.approx(
        row["actions_per_1000_items"] / 1000 * 50.0
    )
    assert row["worker_cpu_ms_per_item"] > 0 and row["history_bytes_per_item"] > 0
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


async def test_a_sample_of_histories_stands_for_all_of_its_type(dev_client: Client) -> None:
    queue = f"skeleton-{uuid.uuid4()}"
    async with skeleton_worker(dev_client, queue):
        await dev_client.execute_workflow(
            SkeletonBatchWorkflow.run,
            SkeletonInput(items=40, chunk_size=5, max_in_flight=4),
            id=queue,
            task_queue=queue,
        )
    runs = [
        Run(e.workflow_type, e.id, e.run_id or "")
        async for e in dev_client.list_workflows(f"TaskQueue = '{queue}'")
    ]
    assert len(runs) == 1 + 8
    everything = await billable_actions(dev_client, runs)
    sampled = await billable_actions(dev_client, runs, per_type=3)
    assert (everything.histories_read, everything.sampled) == (9, False)
    # The batch's one history, and 3 of the 8 alike chunks scaled up to 8.
    assert (sampled.histories_read, sampled.executions, sampled.sampled) == (1 + 3, 9, True)
    assert sampled.counts.total == pytest.approx(everything.counts.total)


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
