"""``fleetbatch bench --bus nats --db postgresql`` on a tiny size: it runs, every item
ends terminal, and its NATS streams are gone afterwards."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import nats
import pytest

from external import NATS_HOST, NATS_PORT, NATS_URL, PG_HOST, PG_PORT, require_service

pytestmark = pytest.mark.integration


async def bench_streams() -> set[str]:
    nc = await nats.connect(NATS_URL)
    try:
        return {s.config.name for s in await nc.jetstream().streams_info() if s.config.name}
    finally:
        await nc.close()


async def test_bench_runs_on_nats_and_postgresql() -> None:
    require_service("NATS", NATS_HOST, NATS_PORT)
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    before = await bench_streams()
    done = await asyncio.to_thread(
        subprocess.run,
        [
            *(sys.executable, "-m", "fleetbatch.cli.main", "bench", "--bus", "nats"),
            *("--db", "postgresql", "--only", "chunk-10", "--items", "30", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)["results"]
    assert (row["items"], row["terminal"], row["counts"]) == (30, 30, {"succeeded": 30})
    assert "bench chunk-10 on nats+postgresql: 30 VINs" in done.stderr
    # The run's streams were deleted: nothing of it is left on the server.
    left = await bench_streams() - before
    assert not [name for name in left if re.match(r"FBBENCH_", name)]


def test_bench_refuses_an_unknown_bus() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fleetbatch.cli.main", "bench", "--bus", "kafka"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "--bus must be one of memory, nats, not 'kafka'" in done.stderr
