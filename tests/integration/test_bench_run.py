"""``fleetbatch bench`` on tiny sizes: every row complete, every figure taken."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fleetbatch.bench.configs import BenchConfig
from fleetbatch.bench.runner import run_bench

pytestmark = pytest.mark.integration

TINY = [BenchConfig("reference", 10, 1, reference=True), BenchConfig("chunk-5", 50, 5)]


async def test_runner_measures_reference_and_chunked_runs() -> None:
    started: list[str] = []
    results = await run_bench(TINY, max_in_flight=5, on_start=lambda c: started.append(c.label))

    assert started == ["reference", "chunk-5"]
    assert [(r.label, r.items, r.chunk_size) for r in results] == [
        ("reference", 10, 1),
        ("chunk-5", 50, 5),
    ]
    for r in results:
        assert r.terminal == r.items
        assert r.counts == {"succeeded": r.items}
        assert r.server_state == "memory"
        assert r.wall_seconds > r.intake_seconds > 0
        assert r.items_per_second == pytest.approx(r.items / r.wall_seconds)
        assert 0 < r.longest_history < r.history_events
        assert r.history_events_per_item == r.history_events / r.items
        assert r.worker_peak_rss and r.server_peak_rss
        assert r.worker_cpu_seconds and r.server_cpu_seconds
    reference, chunked = results
    # One parent and a child per VIN; one batch workflow and a chunk workflow per 5 VINs.
    assert reference.workflow_executions == 1 + 10
    assert chunked.workflow_executions == 1 + 10
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
