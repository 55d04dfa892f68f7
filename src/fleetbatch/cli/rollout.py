"""Commands for batches that roll out in waves."""

from __future__ import annotations

from typing import Annotated

import typer
from temporalio.client import Client

from fleetbatch.cli.common import console, run, settings
from fleetbatch.services import control
from fleetbatch.stack import open_store, temporal_client
from fleetbatch.workflows import Progress


def wave_line(progress: Progress) -> str:
    """``wave 2 of 3, gate holding`` (and what it waits for), for a batch in waves."""
    line = f"wave {progress.wave} of {progress.waves_total}"
    if progress.gate is not None:
        line += f", gate {progress.gate}"
    if progress.awaiting_approval is not None:
        line += f", wave {progress.awaiting_approval} waits for approval"
    return line


def approve(
    batch: Annotated[str, typer.Argument(help="batch id")],
    wave: Annotated[int, typer.Option(min=1, help="the wave (from 1) that waits for approval")],
) -> None:
    """Let a batch's next wave start; says where the batch is then."""

    async def main() -> None:
        s = settings()
        client: Client
        async with temporal_client(s, start_embedded=False) as client, open_store(s) as store:
            progress = await control.approve_wave(client, store, batch, wave)
        said = f"batch {batch}: wave {wave} approved; {wave_line(progress)}"
        console.print(said, highlight=False)

    run(main())


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    app.command()(approve)
