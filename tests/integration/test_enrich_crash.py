"""The enrichment pipeline as an operator runs it: `fleetbatch submit users.csv
--pipeline enrich` against a worker process, 10,000 users, a service failing 10 %
of calls, and the worker SIGKILLed mid-chunk. Every user ends enriched or with a
counted fallback record, and each chunk has exactly one result file."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fleetbatch.domain import TERMINAL
from fleetbatch.pipelines.enrich.output import chunk_file_name, output_dir
from fleetbatch.pipelines.enrich.service import EnrichmentSimulator, EnrichmentSimulatorConfig
from fleetbatch.store import Store
from fleetbatch.temporal import DevServer
from processes import Process

pytestmark = pytest.mark.integration

USERS = 10_000
CHUNK = 100
WINDOW = 20
COUNTRIES = ("DE", "US", "JP", "BR", "ZA")


def users_file(path: Path) -> Path:
    with path.open("w") as out:
        out.write("user_id,email,country\n")
        for i in range(USERS):
            out.write(f"user-{i:05d},user{i}@example.com,{COUNTRIES[i % len(COUNTRIES)]}\n")
    return path


@pytest.mark.slow
async def test_ten_thousand_users_survive_a_worker_killed_mid_chunk(
    dev_server: DevServer, tmp_path: Path
) -> None:
    config = EnrichmentSimulatorConfig(
        latency_ms=1, latency_jitter_ms=1, failure_rate=0.10, seed=11
    )
    database = f"sqlite:///{tmp_path / 'fleetbatch.db'}"
    async with EnrichmentSimulator(config) as service:
        env = {
            **os.environ,
            "FLEETBATCH_TEMPORAL_ADDRESS": dev_server.address,
            "FLEETBATCH_TEMPORAL_TASK_QUEUE": f"tq-{uuid.uuid4()}",
            "FLEETBATCH_DATABASE_URL": database,
            "FLEETBATCH_DATA_DIR": str(tmp_path),
            "FLEETBATCH_METRICS_ADDRESS": "",
            "FLEETBATCH_APPLY_RATES": "false",
            "FLEETBATCH_IDLE_CLOSE_AFTER_SECONDS": "1",
            "FLEETBATCH_ENRICH_URL": service.url,
            "FLEETBATCH_ENRICH_RETRY_INITIAL_SECONDS": "0.05",
            "FLEETBATCH_ENRICH_HEARTBEAT_TIMEOUT_SECONDS": "3",
        }
        worker = Process("worker", ["worker"], env, tmp_path)
        worker.start()
        store = await Store.open(database)
        try:
            # In a thread: the simulator serves on this event loop meanwhile.
            submitted = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "fleetbatch.cli.main",
                    "submit",
                    str(users_file(tmp_path / "users.csv")),
                    "--pipeline",
                    "enrich",
                    "--chunk-size",
                    str(CHUNK),
                    "--max-in-flight",
                    str(WINDOW),
                ],
                env={**env, "COLUMNS": "200"},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert submitted.returncode == 0, submitted.stderr
            match = re.search(
                r"batch (\S+) \(enrich\): 10,000 accepted, 0 rejected", submitted.stdout
            )
            assert match, submitted.stdout
            batch_id = match[1]

            # Kill the worker while chunks are half done: some users of a running chunk
            # are recorded, the rest not.
            async with asyncio.timeout(120):
                while (await store.items.counts(batch_id))["succeeded"] < USERS // 5:
                    await asyncio.sleep(0.1)
            worker.kill()
            at_kill = await store.items.counts(batch_id)
            assert at_kill["in_flight"] > 0, at_kill
            recorded_at_kill = {
                r["key"] async for r in store.items.stream(batch_id) if r["status"] in TERMINAL
            }
            calls_at_kill = dict(service.calls)
            worker.start()
            async with asyncio.timeout(300):
                while (await store.batches.get(batch_id)).status != "completed":
                    await asyncio.sleep(0.5)
            items = [r async for r in store.items.stream(batch_id)]
        finally:
            if worker.proc is not None and worker.proc.poll() is None:
                assert worker.terminate() == 0, worker.log.read_text()[-3000:]
            await store.close()

    assert sum(calls_at_kill.values()) < sum(service.calls.values())  # work went on after it
    by_status = {s: [r for r in items if r["status"] == s] for s in ("succeeded", "failed")}
    assert len(by_status["succeeded"]) + len(by_status["failed"]) == USERS
    # 0.1³ of 10,000 users: about 10 fallback records, each counted and saying why.
    assert 0 < len(by_status["failed"]) < 40
    for row in by_status["failed"]:
        assert row["error"].startswith("fallback record: "), row
        assert row["result"] == {**row["result"], "enriched": False, "region": "UNKNOWN"}
    # The retried chunks resumed: a user recorded before the kill was not asked again.
    assert recorded_at_kill
    assert {k: service.calls[k] for k in recorded_at_kill} == {
        k: calls_at_kill[k] for k in recorded_at_kill
    }

    # Exactly one result file per chunk, named by its item range; every user once.
    ids = sorted(r["id"] for r in items)
    names = [
        chunk_file_name(batch_id, ids[i], ids[min(i + CHUNK, USERS) - 1], "jsonl")
        for i in range(0, USERS, CHUNK)
    ]
    directory = output_dir(tmp_path, batch_id)
    assert sorted(p.name for p in directory.iterdir()) == names
    written = [
        json.loads(line)["user_id"]
        for name in names
        for line in (directory / name).read_text().splitlines()
    ]
    assert sorted(written) == sorted(r["key"] for r in items)

    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fleetbatch.cli.main", "report", batch_id, "--files"],
        env={**env, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"{len(names)} result files" in listed.stdout
    fallbacks = len(by_status["failed"])
    sources = re.search(r"records by source: (.+)", listed.stdout)
    assert sources, listed.stdout
    by_source = {
        name: int(n.replace(",", ""))
        for name, n in (part.rsplit(" ", 1) for part in sources[1].split(", "))
    }
    # A user asked again in one worker (a retried attempt) comes from the cache.
    assert by_source.pop("fallback") == fallbacks
    assert set(by_source) <= {"service", "cache", "stale_cache"}
    assert sum(by_source.values()) == USERS - fallbacks
