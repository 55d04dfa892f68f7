"""The store-level intake bench: a file in, then the same file again as duplicates."""

from __future__ import annotations

from pathlib import Path

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
