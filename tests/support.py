"""Test harness: one worker on a fresh task queue with its own store, in-process
bus, domain and consent simulators and responder."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from fleetbatch.bus import CommandMessage, MemoryBus
from fleetbatch.config import Settings
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.pipelines.vehicle.responder import Responder
from fleetbatch.pipelines.vehicle.simulators import (
    ConsentSimulator,
    Decision,
    DomainSimulator,
    DomainSimulatorConfig,
)
from fleetbatch.services.submission import submit_file
from fleetbatch.stack import serve
from fleetbatch.store import Store, UploadResult
from fleetbatch.workflows import BatchWorkflow
from fleetbatch.workflows.ids import batch_workflow_id


def vins(n: int, start: int = 0) -> list[str]:
    """``n`` distinct valid VINs."""
    return [make_vin(i) for i in range(start, start + n)]


def csv_bytes(rows: Sequence[str]) -> bytes:
    return ("vin\n" + "\n".join(rows) + "\n").encode()


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

    async def submit(self, rows: Sequence[str] | bytes, **kwargs: Any) -> UploadResult:
        data = rows if isinstance(rows, bytes) else csv_bytes(rows)
        kwargs.setdefault("command", "lock_doors")
        kwargs.setdefault("filename", "vins.csv")
        return await submit_file(self.store, self.client, self.settings, io.BytesIO(data), **kwargs)

    def batch(self, batch_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(batch_workflow_id(batch_id))

    async def result(self, batch_id: str) -> dict[str, int]:
        result: dict[str, int] = await self.batch(batch_id).result()
        return result

    async def progress(self, batch_id: str) -> Any:
        return await self.batch(batch_id).query(BatchWorkflow.progress)

    async def items(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """VIN → item row."""
        return {row["vin"]: row async for row in self.store.items.stream(batch_id)}

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
    **settings: Any,
) -> AsyncIterator[Harness]:
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
    )
    consent = ConsentSimulator(0.0, denied_vins=denied_vins)
    responder = Responder(bus, client, store.orphans, flush_interval=0.01)
    h = Harness(client, config, store, bus, domain, consent, responder)
    await domain.start()
    await responder.start()
    try:
        async with serve(config, client, store, bus, consent):
            yield h
    finally:
        await responder.stop()
        await domain.stop()
        await store.close()
