"""The production shape under crashes: NATS JetStream, PostgreSQL, a Temporal server,
and every part a process of its own — two workers, the responder, the domain and
consent simulators — killed and restarted mid-run. Nothing may be lost and no
command executed twice: every item ends terminal and the domain's journal agrees
with the store."""

from __future__ import annotations

import asyncio
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.client import Client

from external import NATS_URL, nats_namespace, pg_url
from fleetbatch.config import CommandSettings, Settings
from fleetbatch.domain import TERMINAL
from fleetbatch.pipelines.vehicle.simulators.domain import read_journal
from fleetbatch.services.audit import audit
from fleetbatch.services.submission import submit_file
from fleetbatch.store import Store
from fleetbatch.temporal import DevServer
from fleetbatch.workflows.ids import batch_workflow_id
from processes import Process
from support import csv_bytes, vins

pytestmark = pytest.mark.integration
__all__ = ["nats_namespace", "pg_url"]  # fixtures

ITEMS = 5000
# Short timeouts so a crash costs seconds; rate off: this measures recovery, not rates.
COMMANDS = {"lock_doors": {"rate": "off", "response_timeout_seconds": 8, "max_attempts": 30}}


@dataclass
class Deployment:
    settings: Settings
    store: Store
    client: Client
    journal: Path
    processes: dict[str, Process] = field(default_factory=dict)

    async def submit(self, start: int) -> str:
        upload = await submit_file(
            self.store,
            self.client,
            self.settings,
            io.BytesIO(csv_bytes(vins(ITEMS, start))),
            filename="fleet.csv",
            options={"command": "lock_doors"},
            chunk_size=100,
        )
        assert upload.accepted == ITEMS
        return upload.batch_id

    async def terminal(self, batch_id: str) -> int:
        counts = await self.store.items.counts(batch_id)
        return sum(counts[s] for s in TERMINAL)

    async def until_terminal(self, batch_id: str, at_least: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while await self.terminal(batch_id) < at_least:
                await asyncio.sleep(0.2)


@pytest.fixture
async def deployment(
    dev_server: DevServer, pg_url: str, nats_namespace: str, tmp_path: Path
) -> AsyncIterator[Deployment]:
    """Two workers, a responder, the domain and consent simulators, each a process."""
    queue = f"tq-{uuid.uuid4()}"
    journal = tmp_path / "domain-journal.ndjson"
    env = {
        **os.environ,
        "FLEETBATCH_TEMPORAL_ADDRESS": dev_server.address,
        "FLEETBATCH_TEMPORAL_TASK_QUEUE": queue,
        "FLEETBATCH_DATABASE_URL": pg_url,
        "FLEETBATCH_DATA_DIR": str(tmp_path),
        "FLEETBATCH_BUS": NATS_URL,
        "FLEETBATCH_BUS_NAMESPACE": nats_namespace,
        "FLEETBATCH_BUS_ACK_WAIT_SECONDS": "3",
        "FLEETBATCH_BUS_BACKOFF_SECONDS": "[0.2, 0.5, 1]",
        "FLEETBATCH_METRICS_ADDRESS": "",
        "FLEETBATCH_COMMANDS": json.dumps(COMMANDS),
        "FLEETBATCH_IDLE_CLOSE_AFTER_SECONDS": "1",
        "FLEETBATCH_SIM_JOURNAL": str(journal),
        "FLEETBATCH_SIM_LATENCY_MS": "10",
        "FLEETBATCH_SIM_LATENCY_JITTER_MS": "5",
        "FLEETBATCH_SIM_FAILURE_RATE": "0.02",
        "FLEETBATCH_SIM_TIMEOUT_RATE": "0",
        "FLEETBATCH_SIM_NO_CONSENT_RATE": "0.01",
        "FLEETBATCH_SIM_SEED": "5",
    }
    settings = Settings(
        data_dir=tmp_path,
        database_url=pg_url,
        temporal_task_queue=queue,
        commands={k: CommandSettings(**v) for k, v in COMMANDS.items()},  # type: ignore[arg-type]
    )
    store = await Store.open(pg_url)
    client = await Client.connect(dev_server.address)
    d = Deployment(settings, store, client, journal)
    for name, args in (
        ("domain", ["simulate", "domain"]),
        ("consent", ["simulate", "consent"]),
        ("responder", ["responder"]),
        ("worker-a", ["worker"]),
        ("worker-b", ["worker"]),
    ):
        d.processes[name] = Process(name, args, env, tmp_path)
        d.processes[name].start()
    try:
        yield d
        # Graceful shutdown on SIGTERM: every process exits cleanly.
        for p in d.processes.values():
            code = p.terminate()
            assert code == 0, f"{p.name} exited {code}:\n{p.log.read_text()[-3000:]}"
            assert "stopped cleanly" in p.log.read_text()
    finally:
        for p in d.processes.values():
            if p.proc is not None and p.proc.poll() is None:
                p.proc.kill()
        await store.close()


async def finish_and_audit(d: Deployment, batch_id: str) -> None:
    """Every item terminal, the batch closed, and the domain's journal agreeing with the store."""
    await d.until_terminal(batch_id, ITEMS, timeout=300)
    handle = d.client.get_workflow_handle(batch_workflow_id(batch_id))
    async with asyncio.timeout(120):
        await handle.result()
    report = await audit(d.store, [batch_id], read_journal(d.journal))
    assert report.items == ITEMS
    assert report.not_terminal == []
    assert report.executed_twice == []
    assert report.succeeded_not_executed == []
    assert report.executed_not_succeeded == []
    counts = await d.store.items.counts(batch_id)
    assert counts["succeeded"] > ITEMS * 0.9
    assert counts["failed"] > 0 and counts["skipped"] > 0
    assert report.executions == counts["succeeded"] + counts["failed"]
    assert await d.store.dead_letters.list() == []


async def crash(d: Deployment, batch_id: str, names: list[str], down: float) -> None:
    """Once a fifth of the batch is done, SIGKILL ``names``; restart them after ``down`` s."""
    await d.until_terminal(batch_id, ITEMS // 5, timeout=180)
    for name in names:
        d.processes[name].kill()
    done_at_kill = await d.terminal(batch_id)
    assert done_at_kill < ITEMS, "the batch finished before the crash: nothing was tested"
    await asyncio.sleep(down)
    for name in names:
        d.processes[name].start()


Scenario = Callable[[Deployment, str], Awaitable[None]]


@pytest.mark.slow
async def test_the_domain_stopped_for_30_seconds_mid_run(deployment: Deployment) -> None:
    batch_id = await deployment.submit(start=710_000)
    await crash(deployment, batch_id, ["domain"], down=30)
    await finish_and_audit(deployment, batch_id)
    # Commands published while the domain was away timed out and went out again.
    republished = [
        r async for r in deployment.store.items.stream(batch_id) if (r["attempts"] or 0) > 1
    ]
    assert republished
