"""``fleetbatch report``: a batch's items or rejected rows as CSV (or JSON Lines), and
its result files."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetbatch.cli.common import console, print_json, run, settings
from fleetbatch.config import Settings
from fleetbatch.services.outputs import output_files
from fleetbatch.services.reports import csv_text, report_rows
from fleetbatch.stack import open_store
from fleetbatch.store import Store


def json_row(fields: list[str], row: dict[str, Any]) -> dict[str, Any]:
    """A report row as ``report --json`` prints it: the CSV's fields, times in ISO
    8601 with their zone, an item's result as the object it is."""
    return {k: _json_value(row.get(k)) for k in fields}


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def _files(store: Store, s: Settings, batch: str, json_: bool) -> None:
    found = await output_files(store, s, batch)
    sources = await store.items.result_sources(batch)
    if json_:
        files = [{"name": f.name, "path": str(f.path), "size": f.size} for f in found]
        print_json({"batch_id": batch, "files": files, "sources": sources})
        return
    for f in found:
        console.print(f"{f.path}  {f.size:,} bytes", highlight=False, soft_wrap=True)
    console.print(f"{len(found)} result files")
    if sources:
        console.print(
            "records by source: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sources.items()))
        )


async def _write(path: Path, text: AsyncIterator[str]) -> None:
    with path.open("w", newline="") as out:
        async for piece in text:
            out.write(piece)


def report(
    batch: Annotated[str, typer.Argument(help="batch id")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file; stdout if unset")
    ] = None,
    rejections: Annotated[bool, typer.Option(help="the rejected rows instead of items")] = False,
    files: Annotated[
        bool, typer.Option("--files", help="list the batch's result files (enrich) instead")
    ] = False,
    json_: Annotated[
        bool,
        typer.Option(
            "--json",
            help="JSON on stdout: the rows as JSON Lines; with -o what was written; "
            "with --files the files",
        ),
    ] = False,
) -> None:
    """Write a CSV of every item's final state or of the rejected rows; list result files."""

    async def main() -> None:
        s = settings()
        async with open_store(s) as store:
            if files:
                await _files(store, s, batch, json_)
                return
            fields, rows = await report_rows(store, batch, rejections=rejections)
            written = 0

            async def counted() -> AsyncIterator[dict[str, Any]]:
                nonlocal written
                async for row in rows:
                    written += 1
                    yield row

            if output is not None:
                await _write(output, csv_text(fields, counted()))
            elif json_:
                async for row in counted():
                    print_json(json_row(fields, row))
                return
            else:
                async for piece in csv_text(fields, counted()):
                    sys.stdout.write(piece)
                return
        kind = "rejections" if rejections else "items"
        path = output.resolve()
        if json_:
            print_json({"batch_id": batch, "report": kind, "path": str(path), "rows": written})
        else:
            what = "rejected rows" if rejections else "item rows"
            console.print(f"wrote {written:,} {what} to {path}", highlight=False, soft_wrap=True)

    run(main())


def register(app: typer.Typer) -> None:
    """Add ``report`` to the CLI."""
    app.command()(report)
