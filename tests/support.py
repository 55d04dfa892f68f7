"""Test harness: one worker on a fresh task queue with its own store, in-process
bus, domain and consent simulators and responder, and the enrichment simulator."""

from __future__ import annotations

import asyncio
import contextlib
import io
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from temporalio.client import Client, WorkflowHandle

from fleetbatch.bus import CommandMessage, MemoryBus
from fleetbatch.config import Settings
from fleetbatch.pipelines.enrich.client import EnrichmentClient
from fleetbatch.pipelines.enrich.service import EnrichmentSimulator, EnrichmentSimulatorConfig
from fleetbatch.pipelines.vehicle.responder import Responder
from fleetbatch.pipelines.vehicle.simulators import (
    ConsentSimulator,
    Decision,
    DomainSimulator,
    DomainSimulatorConfig,
)
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.services.submission import submit_file
from fleetbatch.stack import enrichment_client, serve
from fleetbatch.store import Store, UploadResult
from fleetbatch.workflows import BatchWorkflow
from fleetbatch.workflows.ids import batch_workflow_id


def vins(n: int, start: int = 0) -> list[str]:
    """``n`` distinct valid VINs."""
    return [make_vin(i) for i in range(start, start + n)]


def csv_bytes(rows: Sequence[str]) -> bytes:
    return ("vin\n" + "\n".join(rows) + "\n").encode()


def fitted_rate(times: Sequence[float]) -> float:
    """Items per second, from when each of a run of items arrived, in order: the
    least-squares line of arrival time against position (the positions are exact,
    the times carry the noise), inverted. Every arrival counts, so neither end of
    the run nor one late arrival sets the rate."""
    return 1 / statistics.linear_regression(range(len(times)), times).slope


class FailsUntilHealthy:
    """A domain that fails every command until ``healthy`` is set, then answers
    each one; ``delivered_at`` keeps when each command came (``time.monotonic``)."""

    def __init__(self) -> None:
        self.healthy = False
        self.delivered_at: list[float] = []

    def __call__(self, message: CommandMessage) -> Decision:
        self.delivered_at.append(time.monotonic())
        return Decision.SUCCEED if self.healthy else Decision.FAIL


@dataclass
class Harness:
    client: Client
    settings: Settings
    store: Store
    bus: MemoryBus
    domain: DomainSimulator
    consent: ConsentSimulator
    responder: Responder
    commands: list[CommandMessage] = field(default_factory=list)

    enrichment: EnrichmentSimulator | None = None
    enrich_client: EnrichmentClient | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    _worker: contextlib.AsyncExitStack | None = None

    async def start_worker(self) -> None:
        self._worker = contextlib.AsyncExitStack()
        await self._worker.enter_async_context(
            serve(self.settings, self.client, self.store, self.resources)
        )

    async def stop_worker(self) -> None:
        if self._worker is not None:
            worker, self._worker = self._worker, None
            await worker.aclose()

    async def restart_worker(self) -> None:
        """Shut this worker down mid-batch (its activities cancelled, its workflows
        evicted) and start a new one on the same task queue, which replays them."""
        await self.stop_worker()
        await self.start_worker()

    async def submit(
        self, rows: Sequence[str] | bytes, command: str | None = "lock_doors", **kwargs: Any
    ) -> UploadResult:
        """Submit a vehicle file (VINs, or the bytes of a file) with ``command``; with
        ``pipeline=...`` and ``options=...`` any pipeline's file."""
        data = rows if isinstance(rows, bytes) else csv_bytes(rows)
        kwargs.setdefault("filename", "vins.csv")
        if "options" not in kwargs and kwargs.get("pipeline", "vehicle") == "vehicle":
            kwargs["options"] = {"command": command}
        return await submit_file(self.store, self.client, self.settings, io.BytesIO(data), **kwargs)

    def batch(self, batch_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(batch_workflow_id(batch_id))

    async def result(self, batch_id: str) -> dict[str, int]:
        while True:
            try:
                result: dict[str, int] = await self.batch(batch_id).result()
                return result
            except RuntimeError as e:
                # The time-skipping server can end a long poll on a run's history with
                # an empty last page; the SDK then finds no close event. Ask again.
                if str(e) != "No completion event found":
                    raise

    async def progress(self, batch_id: str) -> Any:
        return await self.batch(batch_id).query(BatchWorkflow.progress)

    async def items(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """Key (VIN, user id) → item row."""
        return {row["key"]: row async for row in self.store.items.stream(batch_id)}

    async def until_progress(self, batch_id: str, check: Callable[[Any], bool]) -> Any:
        """Poll the batch's progress query until ``check(progress)`` holds; return it."""
        async with asyncio.timeout(30):
            while not check(progress := await self.progress(batch_id)):
                await asyncio.sleep(0.05)
        return progress

    async def until(self, check: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait in real time until ``check()`` holds."""
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def harness(
    client: Client,
    tmp_path: Path,
    *,
    decide: Callable[[CommandMessage], Decision] | None = None,
    denied_vins: Sequence[str] = (),
    latency_ms: float = 0.0,
    failure_rate: float = 0.0,
    seed: int = 7,
    enrichment: EnrichmentSimulatorConfig | None = None,
    enrich_client: Callable[[str], EnrichmentClient] | None = None,
    clock: Callable[[], float] | None = None,
    domain_log: TextIO | None = None,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """The harness; with ``enrichment``, an enrichment simulator so configured too,
    reached through ``enrich_client(url)`` when given (the settings' client else);
    with ``clock``, the wall clock the publish compares a window's end with; with
    ``domain_log``, the domain simulator writes its delivery log there."""
    settings.setdefault("idle_close_after_seconds", 0.5)
    # The time-skipping test server has no task queue configuration API.
    settings.setdefault("apply_rates", False)
    config = Settings(
        data_dir=tmp_path,
        database_url=settings.pop("database_url", f"sqlite:///{tmp_path / 'test.db'}"),
        temporal_task_queue=f"tq-{uuid.uuid4()}",
        **settings,
    )
    store = await Store.open(config.effective_database_url, config.breaker_policy)
    bus = MemoryBus()
    domain = DomainSimulator(
        bus,
        DomainSimulatorConfig(
            latency_ms=latency_ms, latency_jitter_ms=0, failure_rate=failure_rate, seed=seed
        ),
        decide=decide,
        log=domain_log,
    )
    consent = ConsentSimulator(0.0, denied_vins=denied_vins)
    responder = Responder(bus, client, store.orphans, flush_interval=0.01)
    h = Harness(client, config, store, bus, domain, consent, responder)
    await domain.start()
    await responder.start()
    try:
        async with contextlib.AsyncExitStack() as running:
            resources: dict[str, Any] = {"bus": bus, "consent": consent}
            if clock is not None:
                resources["clock"] = clock
            if enrichment is not None:
                h.enrichment = await running.enter_async_context(EnrichmentSimulator(enrichment))
                make = enrich_client or (lambda url: enrichment_client(config, url))
                h.enrich_client = await running.enter_async_context(make(h.enrichment.url))
                resources["enrich_client"] = h.enrich_client
            h.resources = resources
            await h.start_worker()
            running.push_async_callback(h.stop_worker)
            yield h
    finally:
        await responder.stop()
        await domain.stop()
        await store.close()


@contextlib.asynccontextmanager
async def breaker_harness(
    client: Client,
    tmp_path: Path,
    domain: FailsUntilHealthy,
    *,
    latency_ms: float,
    max_in_flight: int,
    cooldown_seconds: float,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """The harness for the breaker's tests: chunks of 5 against ``domain``, the
    breaker judging from its 10th call (so the domain's first 10 failures open it)
    and letting a probe through ``cooldown_seconds`` after."""
    async with harness(
        client,
        tmp_path,
        decide=domain,
        latency_ms=latency_ms,
        chunk_size=5,
        max_in_flight=max_in_flight,
        breaker_min_calls=10,
        breaker_cooldown_seconds=cooldown_seconds,
        **settings,
    ) as h:
        yield h
