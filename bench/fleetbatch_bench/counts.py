"""What the per-batch counts cost: ``python -m fleetbatch_bench.counts``.

Two measurements on one store (SQLite by default, PostgreSQL with ``--db URL``):

- **reads**: a batch of ``--items`` (1,000,000 by default) in the store; the time of
  a progress read from the counts rows (``store.counts.get``) against the
  ``GROUP BY`` over the batch's items it replaced;
- **writes**: ``--chunks`` chunks of 100 begun and recorded (the two writes every
  chunk makes), with the counts kept and — in the same run, interleaved
  round by round — with the counts' statements skipped, so the ratio is the
  counts' share of a chunk's store time.

It prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from sqlalchemy import func, select

from fleetbatch.domain import ItemStatus, Outcome
from fleetbatch.intake import Accepted
from fleetbatch.store import NewBatch, Store
from fleetbatch.store import items as items_module
from fleetbatch.store.tables import items


def _rows(n: int, prefix: str) -> Iterator[Accepted]:
    for i in range(n):
        yield Accepted(i + 2, f"{prefix}{i:09d}")


async def _batch(store: Store, batch_id: str, n: int, chunk_size: int = 100) -> None:
    new = NewBatch("vehicle", "lock_doors", {"command": "lock_doors"}, chunk_size, 1)
    await store.uploads.store(batch_id, new, "bench.csv", _rows(n, batch_id[-4:]))


async def _scan(store: Store, batch_id: str) -> dict[str, int]:
    query = (
        select(items.c.status, func.count())
        .where(items.c.batch_id == batch_id)
        .group_by(items.c.status)
    )
    async with store.engine.connect() as conn:
        return {s: int(n) for s, n in await conn.execute(query)}


async def _timed(make: object, repeat: int) -> float:
    """Median seconds of ``repeat`` awaits of ``make()``."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        await make()  # type: ignore[operator]
        seconds.append(time.perf_counter() - start)
    return sorted(seconds)[len(seconds) // 2]


async def _chunks(store: Store, batch_id: str, count: int) -> float:
    """Begin and record the batch's next ``count`` chunks of 100; seconds taken."""
    specs = await store.items.next_chunks(batch_id, 0, 100, count)
    start = time.perf_counter()
    for spec in specs:
        holder = f"wf-{batch_id}-{spec.first_id}"
        refs, _ = await store.items.begin_chunk(batch_id, spec, holder)
        outcomes = [Outcome(r.id, ItemStatus.SUCCEEDED, 1) for r in refs]
        await store.items.record_outcomes(outcomes, [holder])
    return time.perf_counter() - start


async def _no_counts(*_: object) -> None:
    return None


async def run(url: str, n_items: int, n_chunks: int, rounds: int) -> dict[str, object]:
    store = await Store.open(url)
    try:
        started = time.perf_counter()
        await _batch(store, "bench-reads-big1", n_items)
        loaded = time.perf_counter() - started
        counts_read = await _timed(lambda: store.counts.get("bench-reads-big1"), 21)
        scan_read = await _timed(lambda: _scan(store, "bench-reads-big1"), 5)

        await _batch(store, "bench-with-cnt", n_chunks * 100)
        await _batch(store, "bench-without0", n_chunks * 100)
        with_counts = without = 0.0
        per_round = n_chunks // rounds
        for _ in range(rounds):
            with_counts += await _chunks(store, "bench-with-cnt", per_round)
            with mock.patch.object(items_module, "apply", _no_counts):
                without += await _chunks(store, "bench-without0", per_round)
        done = (await store.counts.get("bench-with-cnt")).by_status["succeeded"]
        assert done == per_round * rounds * 100, done
    finally:
        await store.close()
    chunks = per_round * rounds
    return {
        "database": url.split(":", 1)[0],
        "items": n_items,
        "load_seconds": round(loaded, 1),
        "progress_read_ms": {
            "counts_rows": round(counts_read * 1000, 3),
            "group_by_scan": round(scan_read * 1000, 1),
        },
        "chunk_writes": {
            "chunks_of_100": chunks,
            "ms_per_chunk_with_counts": round(with_counts / chunks * 1000, 3),
            "ms_per_chunk_without_counts": round(without / chunks * 1000, 3),
            "ratio": round(with_counts / without, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="a database URL (default: a fresh SQLite file)")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'counts.db'}"
        print(json.dumps(asyncio.run(run(url, args.items, args.chunks, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
