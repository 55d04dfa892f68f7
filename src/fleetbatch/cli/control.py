"""Commands that steer running batches and command rates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import typer
from rich.table import Table
from temporalio.client import Client

from fleetbatch.cli.common import console, fail, run, settings
from fleetbatch.domain import format_rate, parse_rate
from fleetbatch.pipelines.vehicle.commands import get_command
from fleetbatch.services import control
from fleetbatch.stack import open_store, temporal_client
from fleetbatch.store import Store
from fleetbatch.temporal.rates import OPERATOR, current_rate, set_rate

rate_app = typer.Typer(help="Show or change command types' rates, live.", no_args_is_help=True)
BatchArg = Annotated[str, typer.Argument(help="batch id")]


def _steer(batch: str, act: Callable[[Client, Store], Awaitable[str | None]], done: str) -> None:
    """Run ``act``; print ``done``, or what ``act`` returned to say instead."""

    async def main() -> None:
        s = settings()
        async with temporal_client(s, start_embedded=False) as client, open_store(s) as store:
            said = await act(client, store)
        console.print(f"batch {batch}: {said or done}", highlight=False)

    run(main())


def pause(batch: BatchArg) -> None:
    """Start no more chunks; running chunks finish. `resume` goes on."""
    _steer(batch, lambda c, s: control.pause(c, s, batch), "paused")


def resume(batch: BatchArg) -> None:
    """Go on with a paused batch."""
    _steer(batch, lambda c, s: control.resume(c, s, batch), "resumed")


def cancel(
    batch: BatchArg,
    reason: Annotated[str, typer.Option(help="recorded on every cancelled item")] = (
        "cancelled by an operator"
    ),
) -> None:
    """Stop a batch: running chunks stop, every unsettled item ends cancelled."""

    async def act(client: Client, store: Store) -> str:
        return control.cancel_message(await control.cancel(client, store, batch, reason))

    _steer(batch, act, "cancelling")


def configure(
    batch: BatchArg,
    max_in_flight: Annotated[
        int | None, typer.Option(min=1, max=1000, help="chunk workflows at once")
    ] = None,
    max_failures: Annotated[
        str | None,
        typer.Option(help="abort past this many failed items: '5%', '100', or 'off'"),
    ] = None,
) -> None:
    """Change a running batch's window or tolerated failures; says the new settings."""
    if max_in_flight is None and max_failures is None:
        fail("nothing to change: give --max-in-flight, --max-failures or both", code=2)

    async def act(client: Client, store: Store) -> str:
        change = await control.configure(
            client, store, batch, max_in_flight=max_in_flight, max_failures=max_failures
        )
        return control.configure_message(change)

    _steer(batch, act, "configured")


def redrive(
    batch: BatchArg,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="items that ended so: failed (the default), cancelled or skipped; repeatable",
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(help="only items whose error is exactly this (see `report`'s errors)"),
    ] = None,
) -> None:
    """Run a finished batch's failed (or cancelled, skipped) items again, each under a
    new command id."""

    async def main() -> None:
        s = settings()
        which = " or ".join(status or ["failed"])
        if reason is not None:
            which += f" ({reason})"
        async with temporal_client(s, start_embedded=False) as client, open_store(s) as store:
            count = await control.redrive(client, s, store, batch, status, reason)
        if count:
            console.print(f"batch {batch}: {count:,} {which} items redriven", highlight=False)
            console.print(f"follow it with `fleetbatch status {batch}`", highlight=False)
        else:
            console.print(f"batch {batch}: no {which} items, nothing to redrive", highlight=False)

    run(main())


@rate_app.command("show")
def rate_show() -> None:
    """Each command type's rate as the Temporal server enforces it."""

    async def main() -> None:
        s = settings()
        table = Table("command", "rate", "configured", "set by", "publish queue")
        async with temporal_client(s, start_embedded=False) as client:
            for kind in s.command_types.values():
                if kind.publishes_in_chunk:
                    table.add_row(kind.name, "off", "off", "-", "- (publishes in its chunks)")
                    continue
                now = await current_rate(client, s.temporal_task_queue, kind)
                table.add_row(
                    kind.name,
                    format_rate(now.items_per_second),
                    format_rate(kind.rate_per_second),
                    now.reason or "-",
                    now.task_queue,
                )
        console.print(table)

    run(main())


@rate_app.command("set")
def rate_set(
    command: Annotated[str, typer.Argument(help="command type")],
    rate: Annotated[
        str, typer.Argument(help="'10/s', '600/min', 'off', or 'default' (the configured rate)")
    ],
) -> None:
    """Change a command type's rate now, for every worker and batch; no restart."""

    async def main() -> None:
        s = settings()
        kind = get_command(command, s.command_types)
        if rate.strip().lower() == "default":
            per_second, reason = kind.rate_per_second, "configured"
        else:
            per_second, reason = parse_rate(rate), f"{OPERATOR}: fleetbatch rate set {rate}"
        async with temporal_client(s, start_embedded=False) as client:
            await set_rate(client, s.temporal_task_queue, kind, per_second, reason)
        console.print(f"{command}: {format_rate(per_second)}", highlight=False)

    run(main())


def register(app: typer.Typer) -> None:
    """Add these commands to the CLI."""
    for command in (pause, resume, cancel, configure, redrive):
        app.command()(command)
    app.add_typer(rate_app, name="rate")
