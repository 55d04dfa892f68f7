"""What ``fleetbatch bench`` runs: the product CLI declares the command and its options,
then imports this module (only then) and calls :func:`main` with them."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from rich.table import Table

from fleetbatch.cli.common import console, errors, fail, run, settings
from fleetbatch.telemetry import setup_logging
from fleetbatch_bench import configs, rates, report, runner
from fleetbatch_bench.backends import BUSES, DATABASES, Backends
from fleetbatch_bench.intake import IntakeBenchResult, run_intake_bench
from fleetbatch_bench.upload import UploadBenchResult, run_upload_bench


def main(
    *,
    items: int | None = None,
    only: Sequence[str] = (),
    max_in_flight: int | None = None,
    json_: bool = False,
    batcher: bool = False,
    rate_limit: float | None = None,
    seconds: float = 60,
    chunk_size: int = 10,
    upload_rows: int | None = None,
    intake_rows: int | None = None,
    bus: str = "memory",
    db: str = "sqlite",
) -> None:
    """Run the benchmark the options ask for and print its table (or JSON)."""
    setup_logging(logging.WARNING)
    if rate_limit is not None:
        _rate(rate_limit, seconds, chunk_size, json_)
        return
    if upload_rows is not None:
        _upload(upload_rows, json_)
        return
    if intake_rows is not None:
        _intake(intake_rows, backends(bus, db), json_)
        return

    table = configs.BATCHER_CONFIGS if batcher else configs.DEFAULT_CONFIGS
    window = max_in_flight or (configs.BATCHER_MAX_IN_FLIGHT if batcher else 20)

    async def bench() -> None:
        chosen = configs.select_configs(only, items, table)
        on = backends(bus, db)
        where = "" if on.embedded else f" on {on.label}"
        with report.engine_output_to_stderr():
            results = await runner.run_bench(
                chosen,
                max_in_flight=window,
                on_start=lambda c: errors.print(f"bench {c.label}{where}: {c.items:,} VINs…"),
                backends=on,
            )
        if json_:
            print(report.to_json(results, max_in_flight=window))
        else:
            report.print_table(results, console, writes=batcher)

    run(bench())


def backends(bus: str, db: str) -> Backends:
    """The backends ``--bus`` and ``--db`` name, where the settings say they are
    (a clean exit for an unknown one)."""
    if bus not in BUSES:
        fail(f"--bus must be one of {', '.join(BUSES)}, not {bus!r}")
    if db not in DATABASES:
        fail(f"--db must be one of {', '.join(DATABASES)}, not {db!r}")
    s = settings()
    found = Backends(bus, db)
    if s.nats:
        found = replace(found, nats_url=s.bus)
    if s.database_url and s.database_url.startswith(("postgresql://", "postgres://")):
        found = replace(found, postgresql_url=s.database_url)
    return found


def _upload(rows: int, json_: bool) -> None:
    _file_bench(
        f"bench upload: {rows:,} rows through the API…",
        lambda tmp: run_upload_bench(rows, tmp, database_url=settings().database_url),
        json_,
        "upload",
        lambda result: [
            ("API RSS before", _mib(result.api_rss_before_bytes)),
            ("API peak RSS", _mib(result.api_peak_rss_bytes)),
        ],
    )


def _intake(rows: int, on: Backends, json_: bool) -> None:
    def more(result: IntakeBenchResult) -> Iterator[tuple[str, str]]:
        if result.cpu_seconds is not None:
            yield "CPU time of this process", f"{result.cpu_seconds:,.1f} s"
        yield (
            f"again, {result.again_rejected:,} duplicates",
            f"{result.again_seconds:,.1f} s ({result.again_rows_per_second:,.0f} rows/s)",
        )
        yield "RSS before", _mib(result.rss_before_bytes)
        yield "peak RSS", _mib(result.peak_rss_bytes)

    _file_bench(
        f"bench intake: {rows:,} rows into the store ({on.db}), twice…",
        lambda tmp: run_intake_bench(rows, tmp, on),
        json_,
        "store",
        more,
    )


_R = TypeVar("_R", UploadBenchResult, IntakeBenchResult)
_MIB = 1024 * 1024


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / _MIB:,.0f} MiB"


def _file_bench(
    announce: str,
    measure: Callable[[Path], Awaitable[_R]],
    json_: bool,
    wall: str,
    more: Callable[[_R], Iterable[tuple[str, str]]],
) -> None:
    """Run a bench that stores a file of VINs (``measure``, in a temporary directory)
    and print its JSON or its table: the rows, the file, the ``wall`` wall time, the
    bench's own ``more`` rows, then the database."""

    async def bench() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            errors.print(announce)
            result = await measure(Path(tmp))
        if json_:
            print(result.to_json())
            return
        table = Table("measure", "value")
        table.add_row("rows (accepted)", f"{result.rows:,} ({result.accepted:,})")
        table.add_row("file", f"{result.file_bytes / _MIB:,.1f} MiB")
        table.add_row(
            f"{wall} wall time", f"{result.seconds:,.1f} s ({result.rows_per_second:,.0f} rows/s)"
        )
        for label, value in more(result):
            table.add_row(label, value)
        table.add_row("database", result.database)
        console.print(table)

    run(bench())


def _rate(limit: float, seconds: float, chunk_size: int, json_: bool) -> None:
    async def bench() -> None:
        result = await rates.run_rate_bench(
            limit=limit,
            seconds=seconds,
            change_to=limit * 2,
            chunk_size=chunk_size,
            on_phase=lambda text: errors.print(f"bench rate: {text}"),
        )
        if json_:
            print(rates.to_json(result))
            return
        table = Table("measure", "value", "goal")
        table.add_row("limit", f"{result.limit:g} items/s", "")
        table.add_row("chunk size", f"{result.chunk_size:,}", "")
        table.add_row(
            f"achieved over {result.seconds:g}s",
            f"{result.achieved:.2f} items/s ({result.error:+.1%})",
            "within ±3 %",
        )
        for n, (share, err) in enumerate(zip(result.shares, result.share_errors(), strict=True)):
            weight = result.weights[n]
            goal = weight / sum(result.weights)
            table.add_row(
                f"batch weight {weight:g}", f"{share:.1%} ({err:+.1%})", f"{goal:.0%} ±10 %"
            )
        reached = "-" if result.reached_after is None else f"{result.reached_after:.1f}s"
        table.add_row(f"rate set to {result.changed_to:g}/s: reached after", reached, "a few s")
        table.add_row(
            "achieved after the change", f"{result.achieved_after_change:.2f} items/s", ""
        )
        console.print(table)

    run(bench())
