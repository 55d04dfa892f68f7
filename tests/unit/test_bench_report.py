"""The benchmark's pure parts: choosing configurations, ratios, the table and JSON; its
count of the store's outcome writes; and how the product CLI finds the benchmark."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from fleetbatch.domain import ChunkSpec, ItemStatus, Outcome
from fleetbatch.errors import ConfigError
from fleetbatch.intake import Accepted
from fleetbatch.store import NewBatch, Store
from fleetbatch_bench.configs import DEFAULT_CONFIGS, select_configs
from fleetbatch_bench.measure import counting_outcome_writes
from fleetbatch_bench.procfs import CpuSample, cpu_seconds, peak_rss_bytes, reset_peak_rss
from fleetbatch_bench.report import (
    engine_output_to_stderr,
    print_table,
    to_json,
    versus_reference,
)
from fleetbatch_bench.runner import BenchResult, vin_csv

ROW = BenchResult(
    label="reference",
    reference=True,
    items=300,
    chunk_size=1,
    server_state="memory",
    wall_seconds=20.0,
    items_per_second=15.0,
    intake_seconds=0.1,
    close_seconds=0.0,
    terminal=300,
    counts={"succeeded": 300},
    workflow_executions=301,
    history_events=10_000,
    history_events_per_item=33.3,
    longest_history=2_000,
    worker_peak_rss=150 * 1024 * 1024,
    server_peak_rss=None,
    worker_cpu_seconds=12.5,
    server_cpu_seconds=None,
    other_cpu_seconds=0.5,
)
CHUNKED = replace(ROW, label="chunk-100", reference=False, chunk_size=100, items_per_second=3000.0)


def test_every_default_configuration_runs_without_only() -> None:
    assert select_configs() == list(DEFAULT_CONFIGS)
    assert [c.label for c in DEFAULT_CONFIGS] == [
        "reference",
        "chunk-1",
        "chunk-10",
        "chunk-100",
        "chunk-500",
        "chunk-100-file",
        "skeleton-100",
        "skeleton-500",
    ]
    assert [c.server_state for c in DEFAULT_CONFIGS].count("file") == 1


def test_only_keeps_table_order_and_items_overrides_every_size() -> None:
    chosen = select_configs(["chunk-500", "reference"], items=1_000_000)
    assert [(c.label, c.items, c.chunk_size) for c in chosen] == [
        ("reference", 1_000_000, 1),
        ("chunk-500", 1_000_000, 500),
    ]


def test_unknown_configuration_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        select_configs(["chunk-7"])
    assert str(caught.value) == (
        "unknown bench configuration 'chunk-7'; known: reference, chunk-1, chunk-10, "
        "chunk-100, chunk-500, chunk-100-file, skeleton-100, skeleton-500"
    )
    with pytest.raises(ConfigError, match="items must be at least 1, got 0"):
        select_configs(items=0)


def test_rates_are_relative_to_the_reference_row() -> None:
    assert versus_reference([ROW, CHUNKED]) == [1.0, 200.0]
    assert versus_reference([CHUNKED]) == [None]


def test_json_holds_machine_settings_and_rows() -> None:
    document = json.loads(to_json([ROW, CHUNKED], max_in_flight=20))
    assert document["machine"]["cpu_count"] >= 1
    assert document["machine"]["temporalio"]
    assert document["settings"]["max_in_flight"] == 20
    assert [r["label"] for r in document["results"]] == ["reference", "chunk-100"]
    assert document["results"][1]["vs_reference"] == 200.0
    assert document["results"][0]["server_peak_rss"] is None


def test_table_is_printed_whole_on_a_narrow_console() -> None:
    out = io.StringIO()
    console = Console(file=out, width=60)
    print_table([ROW, CHUNKED], console)
    text = out.getvalue()
    assert "…" not in text
    line = next(line for line in text.splitlines() if "chunk-100" in line).split()
    # config, server, items, chunk, wall, VINs/s, x ref, events/item, longest, RSS, RSS, ...
    assert line[:9] == [
        "chunk-100",
        "memory",
        "300",
        "100",
        "20.0",
        "3,000",
        "200.0",
        "33.30",
        "2,000",
    ]
    # worker and server RSS, worker, server and other CPU, intake, close
    assert line[9:16] == ["150", "-", "12.5", "-", "0.5", "0.1", "0.0"]
    # actions per 1,000 items, $ per million items, worker, server and simulators' CPU
    # ms per item, history bytes per item: none measured
    assert line[16:] == ["-"] * 6
    assert console.width == 60


def test_table_and_json_show_the_cost_of_an_item() -> None:
    costed = replace(
        CHUNKED,
        actions={"timer": 21.0},
        actions_per_1000_items=70.0,
        cost_per_million_items_usd=3.5,
        actions_sampled=True,
        worker_cpu_ms_per_item=0.5,
        server_cpu_ms_per_item=0.45,
        history_bytes=30_000,
        history_bytes_per_item=100.0,
    )
    out = io.StringIO()
    print_table([costed], Console(file=out, width=60))
    line = next(line for line in out.getvalue().splitlines() if "chunk-100" in line).split()
    # the sampled count is marked; the simulators ran in the worker's process
    assert line[16:] == ["70*", "3.50", "0.50", "0.45", "-", "100"]
    document = json.loads(to_json([costed], max_in_flight=20))
    [row] = document["results"]
    assert row["actions"] == {"timer": 21.0}
    assert row["cost_per_million_items_usd"] == 3.5
    assert row["services_in_process"] is True
    assert document["settings"]["actions"]["list_price_usd_per_million_actions"] == 50.0
    assert document["settings"]["actions"]["rules"] == "https://docs.temporal.io/cloud/actions"


def test_generated_file_has_distinct_valid_vins() -> None:
    lines = vin_csv(3).decode().splitlines()
    assert lines[0] == "vin"
    assert len(set(lines[1:])) == 3


def test_process_figures_come_from_proc() -> None:
    reset_peak_rss()
    peak = peak_rss_bytes()
    cpu = cpu_seconds()
    assert peak is not None and peak > 10 * 1024 * 1024
    assert cpu is not None and cpu > 0
    assert peak_rss_bytes(2**22 + 12_345) is None  # no such process


def test_cpu_of_the_rest_of_the_machine_is_what_the_run_did_not_use() -> None:
    before = CpuSample(worker=1.0, server=2.0, machine=10.0)
    after = CpuSample(worker=4.0, server=5.5, machine=17.0)
    assert after.minus(before) == CpuSample(3.0, 3.5, 7.0)
    assert after.minus(before).others == 0.5
    assert CpuSample(3.0, 3.5, 6.0).others == 0.0  # coarse clocks never make it negative
    assert CpuSample(3.0, None, 6.0).others is None
    sample = CpuSample.take(os.getpid())
    assert sample.machine is not None and sample.machine >= (sample.worker or 0)


def test_engine_output_goes_to_stderr_while_the_bench_runs(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with engine_output_to_stderr():
        os.write(1, b"core warning\n")  # as Temporal's Rust core writes: to fd 1
    print("result")
    out, err = capfd.readouterr()
    assert (out, err) == ("result\n", "core warning\n")


async def test_outcome_writes_are_counted_on_the_store_engine(tmp_path: Path) -> None:
    """What ``--batcher`` compares: the statements that write outcomes, and the
    outcomes they carry; putting items in flight is not an outcome write."""
    store = await Store.open(f"sqlite:///{tmp_path / 'bench.db'}")
    try:
        await store.uploads.store(
            "b-count",
            NewBatch("vehicle", "lock_doors", {"command": "lock_doors"}, 3, 1),
            "f.csv",
            [Accepted(line, f"KEY{line}") for line in range(2, 5)],
        )
        with counting_outcome_writes(store) as counter:
            refs, _ = await store.items.begin_chunk("b-count", ChunkSpec(1, 3, 3), "wf-0")
            outcomes = [Outcome(r.id, ItemStatus.SUCCEEDED, 1) for r in refs]
            await store.items.record_outcomes(outcomes, ["wf-0"])
            # Repeated: counted again, twice (it finds nothing in flight, then
            # nothing pending: each statement moves items from one status).
            await store.items.record_outcomes(outcomes)
            assert (counter.statements, counter.outcomes) == (3, 9)
        await store.items.record_outcomes(outcomes)  # after the context: not counted
        assert (counter.statements, counter.outcomes) == (3, 9)
    finally:
        await store.close()


def _cli(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_product_cli_imports_no_benchmark_code() -> None:
    done = _cli(
        "import sys, fleetbatch.cli.main; "
        "print(sorted(m for m in sys.modules if m.startswith('fleetbatch_bench')))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bench_without_the_benchmark_package_fails_in_one_line() -> None:
    done = _cli(
        "import sys; sys.modules['fleetbatch_bench'] = None; "
        "from fleetbatch.cli.main import app; app(['bench'])"
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: fleetbatch bench needs the benchmark package")
