"""``fleetbatch list``: batches, newest first, with status, progress, counts, rate and
duration; ``--json`` for scripts."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fleetbatch.cli.common import console, fail, print_json, print_table, run, settings, timestamp
from fleetbatch.domain import ItemStatus, format_duration, unknown_name
from fleetbatch.errors import FleetbatchError
from fleetbatch.pipelines import get_pipeline
from fleetbatch.pipelines.vehicle.commands import get_command
from fleetbatch.services.listing import LISTED_STATUSES, BatchSummary, list_batches
from fleetbatch.stack import open_store, temporal_client

HEADERS = ("batch", "what", "status", "progress", "counts", "rate", "duration", "created")


def as_json(summary: BatchSummary) -> dict[str, Any]:
    """A batch of ``list --json`` (the README documents the shape)."""
    return {
        "id": summary.id,
        "pipeline": summary.pipeline,
        "label": summary.label,
        "status": summary.status,
        "total": summary.total,
        "done": summary.done,
        "percent": summary.percent,
        "counts": summary.counts,
        "items_per_second": round(summary.items_per_second, 2),
        "stop_reason": summary.stop_reason,
        "created_at": summary.created_at.isoformat(),
        "finished_at": summary.finished_at.isoformat() if summary.finished_at else None,
        "duration_seconds": round(summary.duration_seconds, 1),
    }


def row(summary: BatchSummary) -> tuple[str, ...]:
    """A batch as a line of the table."""
    counts = ", ".join(f"{s} {summary.counts[s]:,}" for s in ItemStatus if summary.counts[s])
    return (
        summary.id,
        summary.label,
        summary.status,
        f"{summary.percent:.1f}% of {summary.total:,}",
        counts or "-",
        f"{summary.items_per_second:,.1f}/s",
        format_duration(summary.duration_seconds),
        timestamp(summary.created_at),
    )


def _check_status(status: str) -> None:
    if status not in LISTED_STATUSES:
        fail(unknown_name("status", status, LISTED_STATUSES))


def list_command(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            "-s",
            help="only batches in this status: open, running, paused, completed, cancelled, "
            "aborted, or how a workflow ended (failed, terminated, timed_out, canceled, "
            "'not started')",
        ),
    ] = None,
    command: Annotated[
        str | None, typer.Option("--command", "-c", help="only batches sending this command")
    ] = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", "-p", help="only batches of this pipeline")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many")] = 20,
    json_: Annotated[bool, typer.Option("--json", help="one JSON object instead of a table")] = (
        False
    ),
) -> None:
    """List batches, newest first: status, progress, counts by status, rate, duration."""
    s = settings()
    if status is not None:
        _check_status(status)
    try:
        if command is not None:
            get_command(command, s.command_types)
        if pipeline is not None:
            get_pipeline(pipeline)
    except FleetbatchError as exc:
        fail(str(exc))

    async def main() -> None:
        async with temporal_client(s, start_embedded=False) as client, open_store(s) as store:
            found, total = await list_batches(
                client, store, status=status, label=command, pipeline=pipeline, limit=limit
            )
        if json_:
            print_json({"batches": [as_json(b) for b in found], "total": total})
            return
        print_table(HEADERS, [row(b) for b in found])
        console.print(f"{len(found)} of {total} batches", highlight=False)

    run(main())


def register(app: typer.Typer) -> None:
    """Add ``list`` to the CLI."""
    app.command("list")(list_command)
