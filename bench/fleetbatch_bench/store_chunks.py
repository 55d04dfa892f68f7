"""``python -m fleetbatch_bench.store_chunks``: what the store's calls of one chunk cost.

A chunk of the vehicle pipeline makes five store calls on its way: ``begin_chunk``
(lease the keys, put the items in flight), ``note_publish`` (the batch was not
stopped), the breaker's ``admit``, ``attempts.published`` once the bus has the
commands, and ``record_outcomes`` (statuses, attempts, leases, breaker, counts).
This runs them for every chunk of a stored file, one chunk after another, with
nothing else in the process (no Temporal, no bus), and prints the wall time and
this process's CPU time per item of each call: the store's share of a chunk,
measured apart from the benchmark's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select

from fleetbatch.config import Settings
from fleetbatch.domain import BreakerCount, ChunkSpec, ItemStatus, Outcome
from fleetbatch.store import Store
from fleetbatch.store.tables import items
from fleetbatch_bench.intake import BATCH_ID, store_file
from fleetbatch_bench.upload import write_vin_file

CALLS = ("begin_chunk", "note_publish", "admit", "published", "record_outcomes")


async def run(
    url: str | None, rows: int, chunk_size: int, workdir: Path | None = None
) -> dict[str, dict[str, float]]:
    """Per call: wall and CPU microseconds per item over every chunk of ``rows`` items.

    Raises:
        RuntimeError: not every item ended succeeded (the calls did not do their work).
    """
    workdir = workdir or Path(tempfile.mkdtemp(prefix="fleetbatch-store-chunks-"))
    path = workdir / "vins.csv"
    write_vin_file(path, rows)
    url = url or f"sqlite:///{workdir / 'fleetbatch.db'}"
    store = await Store.open(url)
    try:
        await store_file(store, path, Settings(database_url=url))
        async with store.engine.connect() as conn:
            query = select(items.c.id).where(items.c.batch_id == BATCH_ID).order_by(items.c.id)
            ids = list((await conn.execute(query)).scalars())
        wall = dict.fromkeys(CALLS, 0.0)
        cpu = dict.fromkeys(CALLS, 0.0)

        @contextlib.contextmanager
        def timed(call: str) -> Iterator[None]:
            started, used = time.perf_counter(), time.process_time()
            yield
            wall[call] += time.perf_counter() - started
            cpu[call] += time.process_time() - used

        for n in range(0, len(ids), chunk_size):
            part = ids[n : n + chunk_size]
            holder = f"chunk-{n}"
            with timed("begin_chunk"):
                refs, _ = await store.items.begin_chunk(
                    BATCH_ID, ChunkSpec(part[0], part[-1], len(part)), holder
                )
            with timed("note_publish"):
                await store.batches.note_publish(BATCH_ID)
            with timed("admit"):
                await store.breakers.admit("lock_doors", holder)
            with timed("published"):
                await store.attempts.published([r.id for r in refs], 1)
            answered = time.time()
            outcomes = [Outcome(r.id, ItemStatus.SUCCEEDED, 1, None, answered) for r in refs]
            count = BreakerCount("lock_doors", len(refs), 0, False)
            with timed("record_outcomes"):
                await store.items.record_outcomes(outcomes, [holder], count)
        counts = await store.items.counts(BATCH_ID)
        if counts["succeeded"] != len(ids):
            raise RuntimeError(f"{len(ids)} items, but the store counts {counts}")
    finally:
        await store.close()
    per_item = {
        c: {"wall_us": 1e6 * wall[c] / len(ids), "cpu_us": 1e6 * cpu[c] / len(ids)} for c in CALLS
    }
    per_item["total"] = {
        "wall_us": sum(v["wall_us"] for v in per_item.values()),
        "cpu_us": sum(v["cpu_us"] for v in per_item.values()),
    }
    return per_item


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--db", default=None, help="a database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    result = asyncio.run(run(args.db, args.rows, args.chunk_size))
    print(json.dumps({k: {m: round(v, 1) for m, v in d.items()} for k, d in result.items()}))


if __name__ == "__main__":
    main()
