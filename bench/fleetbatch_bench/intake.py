"""``fleetbatch bench --intake-rows N``: one file of N rows straight into the store.

The upload bench (``upload.py``) measures the HTTP API end to end, where the
multipart parser takes its share; this one measures what the store makes of a
file: read, validate (the vehicle pipeline's rules) and store, in this process,
on a fresh SQLite file or a fresh PostgreSQL database. The same file is then
stored a second time into the same batch, where every row is a duplicate of the
first upload (a resubmitted file): the rejection path at the same scale.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fleetbatch.config import Settings
from fleetbatch.intake import read_rows
from fleetbatch.pipelines import get_pipeline
from fleetbatch.store import NewBatch, Store
from fleetbatch_bench.backends import Backends, settings_for
from fleetbatch_bench.procfs import cpu_seconds, peak_rss_bytes, reset_peak_rss, rss_bytes
from fleetbatch_bench.upload import write_vin_file

BATCH_ID = "intake-bench"


@dataclass(frozen=True)
class IntakeBenchResult:
    rows: int
    file_bytes: int
    seconds: float
    accepted: int
    rows_per_second: float
    cpu_seconds: float | None
    """This process's CPU time for the first upload (on SQLite, all of the work; on a
    machine shared with others, steadier than the wall time)."""
    again_seconds: float
    """The same file into the same batch again: every row a duplicate."""
    again_rejected: int
    again_rows_per_second: float
    rss_before_bytes: int | None
    peak_rss_bytes: int | None
    database: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


async def store_file(
    store: Store, path: Path, settings: Settings
) -> tuple[float, float | None, int, int]:
    """(seconds, CPU seconds, accepted, rejected) of one upload of ``path`` to the
    bench's batch."""
    vehicle = get_pipeline("vehicle")
    options = vehicle.options({"command": "lock_doors"}, settings)
    plan = vehicle.plan(options, settings)
    started, cpu = time.perf_counter(), cpu_seconds()
    with path.open("rb") as stream:
        rows = read_rows(stream, filename=path.name, key_field=vehicle.key_field)
        result = await store.uploads.store(
            BATCH_ID,
            NewBatch(vehicle.name, plan.label, options, 500, 20, 1.0, None, None),
            path.name,
            vehicle.validate(rows, options, settings),
            key_name=vehicle.key_name,
        )
    used = cpu_seconds()
    cpu_used = None if used is None or cpu is None else used - cpu
    return time.perf_counter() - started, cpu_used, result.accepted, result.rejected


async def run_intake_bench(rows: int, workdir: Path, backends: Backends) -> IntakeBenchResult:
    """Store ``rows`` generated VINs twice into one batch of a fresh store."""
    path = workdir / "vins.csv"
    size = write_vin_file(path, rows)
    async with settings_for(backends) as overrides:
        url = overrides.get("database_url") or f"sqlite:///{workdir / 'fleetbatch.db'}"
        settings = Settings(database_url=url)
        store = await Store.open(url)
        try:
            before = rss_bytes()
            reset_peak_rss()
            seconds, cpu, accepted, _ = await store_file(store, path, settings)
            again, _, _, rejected = await store_file(store, path, settings)
            peak = peak_rss_bytes()
        finally:
            await store.close()
    return IntakeBenchResult(
        rows=rows,
        file_bytes=size,
        seconds=round(seconds, 2),
        accepted=accepted,
        rows_per_second=round(rows / seconds),
        cpu_seconds=None if cpu is None else round(cpu, 2),
        again_seconds=round(again, 2),
        again_rejected=rejected,
        again_rows_per_second=round(rows / again),
        rss_before_bytes=before,
        peak_rss_bytes=peak,
        database=backends.db,
    )
