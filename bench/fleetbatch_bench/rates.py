"""The rate benchmark: one command type limited on the Temporal server, two worker
processes, two concurrent batches with fairness weights, and a rate change at run time.

The achieved rate is read from the domain simulators' delivery logs (one per
worker process), so it is what the downstream domain saw, not what was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fleetbatch.config import CommandSettings, Settings
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.services import control
from fleetbatch.services.submission import submit_file
from fleetbatch.stack import open_store, temporal_client
from fleetbatch.temporal import DevServer, ensure_search_attributes
from fleetbatch.temporal.rates import OPERATOR, set_rate
from fleetbatch_bench.runner import COMMAND, PIPELINE, free_port

WARM_UP_SECONDS = 5.0
WORKERS = 2


@dataclass
class RateResult:
    limit: float
    chunk_size: int
    weights: tuple[float, float]
    seconds: float
    achieved: float
    """Deliveries per second over the measured window, both batches together."""
    shares: tuple[float, float]
    changed_to: float
    reached_after: float | None
    """Seconds from the rate change until a 5 s window first ran within 5 % of it."""
    achieved_after_change: float
    per_second: list[int] = field(default_factory=list)
    """Deliveries in each second from the start of the measured window to the end."""

    @property
    def error(self) -> float:
        return self.achieved / self.limit - 1

    def share_errors(self) -> tuple[float, float]:
        total = sum(self.weights)
        return (
            self.shares[0] / (self.weights[0] / total) - 1,
            self.shares[1] / (self.weights[1] / total) - 1,
        )


def _env(settings: Settings, log: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "FLEETBATCH_TEMPORAL_ADDRESS": settings.effective_temporal_address,
            "FLEETBATCH_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
            "FLEETBATCH_DATA_DIR": str(settings.data_dir),
            "FLEETBATCH_DATABASE_URL": settings.effective_database_url,
            "FLEETBATCH_COMMANDS": json.dumps(
                {k: v.model_dump(exclude_unset=True) for k, v in settings.commands.items()}
            ),
            "FLEETBATCH_METRICS_ADDRESS": "",
            "FLEETBATCH_SIM_LATENCY_MS": "0",
            "FLEETBATCH_SIM_LATENCY_JITTER_MS": "0",
            "FLEETBATCH_SIM_FAILURE_RATE": "0",
            "FLEETBATCH_SIM_TIMEOUT_RATE": "0",
            "FLEETBATCH_SIM_NO_CONSENT_RATE": "0",
            "FLEETBATCH_SIM_LOG_FILE": str(log),
        }
    )
    return env


@contextlib.asynccontextmanager
async def _workers(settings: Settings, logs: list[Path]) -> AsyncIterator[None]:
    """Worker processes, each with its own simulators and delivery log."""
    command = [sys.executable, "-m", "fleetbatch.cli.main", "worker"]
    procs = [
        subprocess.Popen(
            command,
            env=_env(settings, log),
            stdout=subprocess.DEVNULL,
            stderr=(settings.data_dir / f"worker-{i}.log").open("w"),
        )
        for i, log in enumerate(logs)
    ]
    try:
        async with asyncio.timeout(60):
            while not all(log.exists() for log in logs):
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"a worker exited; see {settings.data_dir}/worker-*.log")
                await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # pollers connected
        yield
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def _deliveries(logs: list[Path]) -> list[tuple[float, str]]:
    found = []
    for log in logs:
        for line in log.read_text().splitlines():
            stamp, batch_id, _ = line.split(",", 2)
            found.append((float(stamp), batch_id))
    return sorted(found)


def _window(found: list[tuple[float, str]], start: float, end: float) -> list[str]:
    return [b for t, b in found if start <= t < end]


async def run_rate_bench(
    *,
    limit: float = 20.0,
    seconds: float = 60.0,
    change_to: float = 40.0,
    change_seconds: float = 20.0,
    weights: tuple[float, float] = (1.0, 3.0),
    chunk_size: int = 10,
    on_phase: Callable[[str], None] = lambda _: None,
) -> RateResult:
    """Run the scenario on a fresh in-memory dev server and return what the domain saw."""
    needed = int(limit * (seconds + WARM_UP_SECONDS) + change_to * change_seconds)
    items = needed + needed // 2  # both batches keep a backlog to the end
    with tempfile.TemporaryDirectory(prefix="fleetbatch-rate-") as tmp:
        work = Path(tmp)
        server = DevServer(free_port(), free_port(), None, work / "temporal.log")
        settings = Settings(
            data_dir=work,
            database_url=f"sqlite:///{work / 'fleetbatch.db'}",
            temporal_address=server.address,
            temporal_task_queue="fleetbatch-rate-bench",
            metrics_address=None,
            # One item per publish activity: the server's limit is the item rate.
            commands={COMMAND: CommandSettings(rate=limit)},
            chunk_size=chunk_size,
            # Enough chunks at once to hold a backlog on the queue at any chunk size.
            max_in_flight=max(20, min(1000, int(4 * change_to / chunk_size))),
            idle_close_after_seconds=1.0,
        )
        await server.start()
        logs = [work / f"deliveries-{i}.csv" for i in range(WORKERS)]
        try:
            async with (
                temporal_client(settings, start_embedded=False) as client,
                open_store(settings) as store,
            ):
                await ensure_search_attributes(client)
                on_phase(f"starting {WORKERS} worker processes")
                async with _workers(settings, logs):
                    batches = []
                    for n, weight in enumerate(weights):
                        rows = (make_vin(n * items + i) for i in range(items))
                        data = ("vin\n" + "".join(f"{vin}\n" for vin in rows)).encode()
                        upload = await submit_file(
                            store,
                            client,
                            settings,
                            io.BytesIO(data),
                            filename=f"batch-{n}.csv",
                            pipeline=PIPELINE,
                            options={"command": COMMAND},
                            priority=weight,
                        )
                        batches.append(upload.batch_id)
                    started = time.time()
                    on_phase(f"two batches of {items:,} VINs, weights {weights}: {seconds:g}s")
                    await asyncio.sleep(WARM_UP_SECONDS + seconds)
                    changed = time.time()
                    kind = settings.command_types[COMMAND]
                    await set_rate(
                        client, settings.temporal_task_queue, kind, change_to, f"{OPERATOR}: bench"
                    )
                    on_phase(f"rate set to {change_to:g}/s: {change_seconds:g}s")
                    await asyncio.sleep(change_seconds)
                    for batch_id in batches:
                        await control.cancel(client, store, batch_id, "rate benchmark over")
                    await asyncio.sleep(2)
        finally:
            server.stop()
        found = _deliveries(logs)
    return _analyse(
        found,
        batches,
        (limit, chunk_size),
        weights,
        seconds,
        started,
        (changed, change_to, change_seconds),
    )


def _analyse(
    found: list[tuple[float, str]],
    batches: list[str],
    shape: tuple[float, int],
    weights: tuple[float, float],
    seconds: float,
    started: float,
    change: tuple[float, float, float],
) -> RateResult:
    """Rates and shares over the measured window; how fast the change took hold."""
    limit, chunk_size = shape
    changed, change_to, change_seconds = change
    end = changed + change_seconds
    begin = started + WARM_UP_SECONDS
    measured = _window(found, begin, begin + seconds)
    shares = tuple(measured.count(b) / max(len(measured), 1) for b in batches)
    reached = None
    probe = changed
    while probe + 5 <= end:
        if abs(len(_window(found, probe, probe + 5)) / 5 / change_to - 1) <= 0.05:
            reached = probe - changed
            break
        probe += 0.25
    settle = changed + (reached or 0)
    after = _window(found, settle, end)
    per_second = [len(_window(found, begin + i, begin + i + 1)) for i in range(int(end - begin))]
    return RateResult(
        limit=limit,
        chunk_size=chunk_size,
        weights=weights,
        seconds=seconds,
        achieved=len(measured) / seconds,
        shares=(shares[0], shares[1]),
        changed_to=change_to,
        reached_after=reached,
        achieved_after_change=len(after) / max(end - settle, 1e-9),
        per_second=per_second,
    )


def to_json(result: RateResult) -> str:
    return json.dumps(asdict(result) | {"error": result.error}, indent=2)
