"""The store-level intake bench: a file in, then the same file again as duplicates."""

from __future__ import annotations

from pathlib import Path

from fleetbatch_bench import store_chunks
from fleetbatch_bench.backends import Backends
from fleetbatch_bench.intake import run_intake_bench


async def test_intake_bench_stores_a_file_then_rejects_it_whole_as_duplicates(
    tmp_path: Path,
) -> None:
    result = await run_intake_bench(2_500, tmp_path, Backends())
    assert (result.rows, result.accepted) == (2_500, 2_500)
    assert result.again_rejected == 2_500
    assert result.database == "sqlite"
    assert result.rows_per_second > 0 and result.again_rows_per_second > 0


async def test_store_chunk_bench_times_every_call_of_chunks_that_all_succeed(
    tmp_path: Path,
) -> None:
    result = await store_chunks.run(None, 250, 100, tmp_path)
    assert list(result) == [*store_chunks.CALLS, "total"]
    assert all(figures["wall_us"] > 0 for figures in result.values())
    assert result["total"]["wall_us"] == sum(result[c]["wall_us"] for c in store_chunks.CALLS)
