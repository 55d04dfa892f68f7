"""Running the benchmark: each configuration on a fresh dev server and store.

Per configuration: start an embedded dev server on free ports (in memory, or
with its SQLite file), open a fresh SQLite store, start the stack's worker,
in-process bus, responder and simulators that answer at once and never fail,
then submit a generated file and stop the clock when the store shows every
item terminal. The clock starts before the file is submitted, so intake is in
the figure; the batch's close (its idle wait for late files) is not, and is
reported apart.
"""

from __future__ import annotations

import gc
import io
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client

from fleetbatch.config import CommandSettings, Settings
from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.errors import TemporalUnavailableError
from fleetbatch.intake import read_rows
from fleetbatch.pipelines import get_pipeline
from fleetbatch.pipelines.vehicle.simulators import ConsentSimulator
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.services.submission import new_batch_id, submit_file
from fleetbatch.stack import dev_server_for, open_store, run_stack, temporal_client
from fleetbatch.store import NewBatch, Store
from fleetbatch.temporal import DevServer, ensure_search_attributes
from fleetbatch.workflows.ids import batch_workflow_id
from fleetbatch_bench.actions import cost_per_million_items
from fleetbatch_bench.backends import Backends, settings_for
from fleetbatch_bench.configs import WRITE_MAX_BATCH, WRITE_MAX_WAIT_SECONDS, BenchConfig
from fleetbatch_bench.measure import (
    ActionFigures,
    BenchError,
    HistoryStats,
    WriteFigures,
    billable_actions,
    counting_outcome_writes,
    history_stats,
    until_terminal,
    write_figures,
)
from fleetbatch_bench.procfs import CpuSample, peak_rss_bytes, reset_peak_rss
from fleetbatch_bench.reference import (
    PAGE_SIZE,
    ReferenceBatchWorkflow,
    ReferenceInput,
    reference_worker,
)
from fleetbatch_bench.skeleton import SkeletonBatchWorkflow, SkeletonInput, skeleton_worker

PIPELINE = "vehicle"
"""The measured rows run the real vehicle pipeline (``VehicleChunkWorkflow``)."""
COMMAND = "lock_doors"
IDLE_CLOSE_AFTER_SECONDS = 0.2
TASK_QUEUE = "fleetbatch-bench"


@dataclass(frozen=True)
class BenchResult:
    """One configuration's figures. Times in seconds, memory in bytes."""

    label: str
    reference: bool
    items: int
    chunk_size: int
    server_state: str
    wall_seconds: float
    """Submit → every item terminal in the store."""
    items_per_second: float
    intake_seconds: float
    """Part of the wall time spent storing the file (and starting the batch)."""
    close_seconds: float
    """After the wall time: until the batch workflow closed (its idle wait, its report)."""
    terminal: int
    counts: dict[str, int]
    workflow_executions: int
    history_events: int
    history_events_per_item: float
    longest_history: int
    worker_peak_rss: int | None
    """This process's: worker, bus, simulators, responder and the benchmark's polling."""
    server_peak_rss: int | None
    worker_cpu_seconds: float | None
    """CPU figures cover submit → the batch workflow closed."""
    server_cpu_seconds: float | None
    other_cpu_seconds: float | None
    """CPU the rest of the machine used meanwhile; more than a little means a noisy run."""
    write_shards: int = 0
    writes: WriteFigures | None = None
    """How outcomes reached the store (fleetbatch's own path; None for the reference)."""
    # The cost of an item (issue 17). Per-item figures divide by ``items``.
    actions: dict[str, float] = field(default_factory=dict)
    """Billable Temporal Cloud actions by category, counted from every execution's
    history (``fleetbatch_bench.actions``); extrapolated when ``actions_sampled``."""
    actions_per_1000_items: float | None = None
    cost_per_million_items_usd: float | None = None
    """Actions per item * ``LIST_PRICE_PER_MILLION_ACTIONS``: list price, actions only."""
    actions_histories_read: int = 0
    actions_sampled: bool = False
    """Fewer histories were read than there were executions (a sample per workflow type)."""
    history_bytes: int | None = None
    history_bytes_per_item: float | None = None
    worker_cpu_ms_per_item: float | None = None
    server_cpu_ms_per_item: float | None = None
    services_cpu_ms_per_item: float | None = None
    """Simulators' and responder's, when they run in a process of their own; the
    benchmark runs them in the worker's process (``services_in_process``), where
    their CPU is part of the worker's."""
    services_in_process: bool = True


@dataclass(frozen=True)
class _Timing:
    intake: float
    wall: float
    close: float
    counts: dict[str, int]
    writes: WriteFigures | None = None


def vin_csv(items: int) -> bytes:
    """A CSV file of ``items`` distinct valid VINs."""
    return ("vin\n" + "".join(f"{make_vin(i)}\n" for i in range(items))).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_settings(workdir: Path, config: BenchConfig, max_in_flight: int) -> Settings:
    """Settings for one configuration: its own data dir, ports, store and batch shape;
    simulators answer at once, never fail, never time out and always consent."""
    return Settings(
        data_dir=workdir,
        database_url=f"sqlite:///{workdir / 'fleetbatch.db'}",
        temporal_address=None,
        temporal_task_queue=TASK_QUEUE,
        dev_server_port=free_port(),
        dev_server_ui_port=free_port(),
        dev_server_persist=config.server_file,
        # Metrics on, as a worker runs by default, on a port of its own.
        metrics_address=f"127.0.0.1:{free_port()}",
        chunk_size=config.chunk_size,
        max_in_flight=max_in_flight,
        write_shards=config.write_shards,
        write_max_batch=WRITE_MAX_BATCH,
        write_max_wait_seconds=WRITE_MAX_WAIT_SECONDS,
        idle_close_after_seconds=IDLE_CLOSE_AFTER_SECONDS,
        sim_latency_ms=0,
        sim_latency_jitter_ms=0,
        sim_failure_rate=0,
        sim_timeout_rate=0,
        sim_no_consent_rate=0,
        sim_seed=0,
        # Throughput, not the command type's rate limit, is what this measures:
        # no limit, so chunks publish in a local activity of their own.
        commands={COMMAND: CommandSettings(rate="off")},
    )


async def _run_chunked(settings: Settings, config: BenchConfig, data: bytes) -> _Timing:
    """fleetbatch's own path: submit the file to the vehicle pipeline, the batch
    workflow runs its chunks (``VehicleChunkWorkflow``)."""
    async with run_stack(settings) as stack:
        with counting_outcome_writes(stack.store) as outcome_writes:
            started = time.perf_counter()
            upload = await submit_file(
                stack.store,
                stack.client,
                settings,
                io.BytesIO(data),
                filename="bench.csv",
                pipeline=PIPELINE,
                options={"command": COMMAND},
                chunk_size=config.chunk_size,
                max_in_flight=settings.max_in_flight,
            )
            intake = time.perf_counter() - started
            counts, ended = await until_terminal(stack.store, upload.batch_id, upload.accepted)
            await stack.client.get_workflow_handle(batch_workflow_id(upload.batch_id)).result()
            close = time.perf_counter() - ended
        writes = await write_figures(
            stack.client, outcome_writes, settings.temporal_task_queue, config.write_shards
        )
        return _Timing(intake, ended - started, close, counts, writes)


async def _store_file(settings: Settings, store: Store, data: bytes) -> tuple[str, int]:
    """Store the file's items as intake does (the vehicle pipeline's rows, a batch of
    the vehicle pipeline), without starting fleetbatch's batch."""
    pipeline = get_pipeline(PIPELINE)
    options = pipeline.options({"command": COMMAND}, settings)
    plan = pipeline.plan(options, settings)
    batch_id = new_batch_id()
    rows = read_rows(io.BytesIO(data), filename="bench.csv", key_field=pipeline.key_field)
    result = await store.uploads.store(
        batch_id,
        NewBatch(pipeline.name, plan.label, options, chunk_size=1, max_in_flight=PAGE_SIZE),
        "bench.csv",
        pipeline.validate(rows, options, settings),
        key_name=pipeline.key_name,
    )
    return batch_id, result.accepted


async def _run_reference(settings: Settings, data: bytes) -> _Timing:
    """The original design's shape: one child workflow per VIN, 50 VINs a page."""
    async with (
        temporal_client(settings, start_embedded=False) as client,
        open_store(settings) as store,
        reference_worker(client, TASK_QUEUE, store, ConsentSimulator(0.0)),
    ):
        started = time.perf_counter()
        batch_id, accepted = await _store_file(settings, store, data)
        handle = await client.start_workflow(
            ReferenceBatchWorkflow.run,
            ReferenceInput(batch_id),
            id=f"bench-reference-{batch_id}",
            task_queue=TASK_QUEUE,
        )
        intake = time.perf_counter() - started
        counts, ended = await until_terminal(store, batch_id, accepted)
        await handle.result()
        return _Timing(intake, ended - started, time.perf_counter() - ended, counts)


async def _run_skeleton(settings: Settings, config: BenchConfig) -> _Timing:
    """The engine alone in fleetbatch's chunk shape: the clock stops at the parent's end."""
    async with (
        temporal_client(settings, start_embedded=False) as client,
        skeleton_worker(client, TASK_QUEUE),
    ):
        started = time.perf_counter()
        done = await client.execute_workflow(
            SkeletonBatchWorkflow.run,
            SkeletonInput(config.items, config.chunk_size, settings.max_in_flight),
            id=f"bench-skeleton-{new_batch_id()}",
            task_queue=TASK_QUEUE,
        )
        wall = time.perf_counter() - started
        return _Timing(0.0, wall, 0.0, {ItemStatus.SUCCEEDED.value: done})


def _server_pid(server: DevServer) -> int:
    # DevServer keeps its process private; the benchmark only reads its pid.
    process = server._process
    if process is None:
        raise BenchError("the dev server has no process")
    return process.pid


async def run_config(
    config: BenchConfig, workdir: Path, *, max_in_flight: int, backends: Backends | None = None
) -> BenchResult:
    """Run one configuration on its own dev server and store under ``workdir``
    (on ``backends`` when given: NATS and PostgreSQL instead of the embedded ones).

    Raises:
        BenchError: the run stalled, or items were left not terminal.
    """
    async with settings_for(backends or Backends()) as overrides:
        settings = bench_settings(workdir, config, max_in_flight).model_copy(update=overrides)
        return await _run_on(settings, config)


async def start_dev_server(settings: Settings, tries: int = 3) -> tuple[DevServer, Settings]:
    """A running dev server for ``settings``, on other free ports if it could not start
    (a port picked free can be taken before the server binds it, or by one the server
    picks for itself)."""
    for _ in range(tries - 1):
        server = dev_server_for(settings)
        try:
            await server.start()
            return server, settings
        except TemporalUnavailableError:
            settings = settings.model_copy(
                update={"dev_server_port": free_port(), "dev_server_ui_port": free_port()}
            )
    server = dev_server_for(settings)
    await server.start()
    return server, settings


async def _run_on(settings: Settings, config: BenchConfig) -> BenchResult:
    data = vin_csv(config.items)
    server, settings = await start_dev_server(settings)
    try:
        pid = _server_pid(server)
        client = await Client.connect(server.address)
        await ensure_search_attributes(client)
        gc.collect()
        reset_peak_rss()
        before = CpuSample.take(pid)
        if config.reference:
            timing = await _run_reference(settings, data)
        elif config.skeleton:
            timing = await _run_skeleton(settings, config)
        else:
            timing = await _run_chunked(settings, config, data)
        cpu = CpuSample.take(pid).minus(before)
        worker_peak, server_peak = peak_rss_bytes(), peak_rss_bytes(pid)
        history = await history_stats(client)
        actions = await billable_actions(client, history.runs)
    finally:
        server.stop()
    return _result(config, timing, history, worker_peak, server_peak, cpu, actions)


def _result(
    config: BenchConfig,
    timing: _Timing,
    history: HistoryStats,
    worker_peak: int | None,
    server_peak: int | None,
    cpu: CpuSample,
    actions: ActionFigures | None = None,
) -> BenchResult:
    terminal = sum(timing.counts.get(s, 0) for s in TERMINAL)
    if terminal != config.items:
        raise BenchError(f"{config.label}: {terminal:,} of {config.items:,} items terminal")
    if timing.writes is not None and timing.writes.outcomes_written != config.items:
        raise BenchError(
            f"{config.label}: {timing.writes.outcomes_written:,} outcomes written "
            f"for {config.items:,} items (a write lost or repeated)"
        )
    return BenchResult(
        label=config.label,
        reference=config.reference,
        items=config.items,
        chunk_size=config.chunk_size,
        server_state=config.server_state,
        wall_seconds=timing.wall,
        items_per_second=config.items / timing.wall,
        intake_seconds=timing.intake,
        close_seconds=timing.close,
        terminal=terminal,
        counts={k: v for k, v in timing.counts.items() if v},
        workflow_executions=history.executions,
        history_events=history.events,
        history_events_per_item=history.events / config.items,
        longest_history=history.longest,
        worker_peak_rss=worker_peak,
        server_peak_rss=server_peak,
        worker_cpu_seconds=cpu.worker,
        server_cpu_seconds=cpu.server,
        other_cpu_seconds=cpu.others,
        write_shards=config.write_shards,
        writes=timing.writes,
        **_per_item(config.items, history, cpu, actions),
    )


def _ms_per_item(seconds: float | None, items: int) -> float | None:
    return None if seconds is None else 1000 * seconds / items


def _per_item(
    items: int, history: HistoryStats, cpu: CpuSample, actions: ActionFigures | None
) -> dict[str, Any]:
    """The cost-of-an-item fields of a result (issue 17)."""
    figures: dict[str, Any] = {
        "history_bytes": history.bytes,
        "history_bytes_per_item": history.bytes / items,
        "worker_cpu_ms_per_item": _ms_per_item(cpu.worker, items),
        "server_cpu_ms_per_item": _ms_per_item(cpu.server, items),
    }
    if actions is not None:
        per_item = actions.counts.total / items
        figures.update(
            actions=dict(sorted(actions.counts.by_category.items())),
            actions_per_1000_items=1000 * per_item,
            cost_per_million_items_usd=cost_per_million_items(per_item),
            actions_histories_read=actions.histories_read,
            actions_sampled=actions.sampled,
        )
    return figures


async def run_bench(
    configs: Sequence[BenchConfig],
    *,
    max_in_flight: int = 20,
    on_start: Callable[[BenchConfig], None] | None = None,
    backends: Backends | None = None,
) -> list[BenchResult]:
    """Run every configuration in turn, each in a temporary directory of its own."""
    results = []
    for config in configs:
        if on_start is not None:
            on_start(config)
        with tempfile.TemporaryDirectory(prefix=f"fleetbatch-bench-{config.label}-") as tmp:
            results.append(
                await run_config(config, Path(tmp), max_in_flight=max_in_flight, backends=backends)
            )
    return results
