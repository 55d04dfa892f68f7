"""Live batch progress on a terminal, from the shared progress snapshot."""

from __future__ import annotations

import asyncio

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from fleetbatch.cli.common import console
from fleetbatch.domain import ItemStatus
from fleetbatch.services.progress import Snapshot, snapshot
from fleetbatch.store import Store


def render(batch_id: str, snap: Snapshot, bar: Progress, task_id: int) -> Group:
    """The bar plus a table of counts by status, rate and ETA."""
    bar.update(task_id, total=max(snap.total, 1), completed=snap.done)  # type: ignore[arg-type]
    eta = "-" if snap.eta_seconds is None else f"{snap.eta_seconds:,.0f}s"
    table = Table(box=None, show_header=False, pad_edge=False)
    for status in ItemStatus:
        table.add_row(status.value, f"{snap.counts.get(status.value, 0):,}")
    table.add_row("", "")
    table.add_row("phase", snap.phase)
    if snap.stop_reason:
        table.add_row("reason", Text(snap.stop_reason))
    if snap.breaker is not None:
        table.add_row("breaker", snap.breaker)
    table.add_row("rate", f"{snap.items_per_second:,.1f} items/s")
    table.add_row("ETA", eta)
    return Group(f"[bold]batch {batch_id}[/]", bar, table)


def line(snap: Snapshot) -> str:
    """One plain line of progress, for logs and pipes."""
    counts = ", ".join(f"{k} {v:,}" for k, v in snap.counts.items() if v)
    breaker = "" if snap.breaker in ("closed", None) else f"; breaker {snap.breaker}"
    return f"{snap.phase}: {snap.done:,}/{snap.total:,} done ({counts or 'nothing yet'}){breaker}"


async def watch(
    client: Client, store: Store, batch_id: str, *, follow: bool = True, tty: bool = True
) -> Snapshot:
    """Show progress until the batch finishes (or once, without ``follow``).

    On a terminal the bar redraws in place; elsewhere a line is printed every few seconds.
    """
    bar = Progress(TextColumn("items"), BarColumn(), MofNCompleteColumn(), console=console)
    task_id = bar.add_task("items", total=1)
    snap = await snapshot(client, store, batch_id)
    if follow and tty:
        with Live(
            render(batch_id, snap, bar, task_id), console=console, refresh_per_second=4
        ) as view:
            while not snap.finished:
                await asyncio.sleep(0.5)
                snap = await snapshot(client, store, batch_id)
                view.update(render(batch_id, snap, bar, task_id))
        return snap
    while follow and not snap.finished:
        console.print(line(snap), highlight=False)
        await asyncio.sleep(3)
        snap = await snapshot(client, store, batch_id)
    console.print(render(batch_id, snap, bar, task_id))
    return snap
