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
    """The bar plus a table of counts by status, rate and ETA (no ETA while paused:
    no chunk starts until ``resume``, so there is no end to estimate)."""
    bar.update(task_id, total=max(snap.total, 1), completed=snap.done)  # type: ignore[arg-type]
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
    if not snap.paused:
        table.add_row("ETA", "-" if snap.eta_seconds is None else f"{snap.eta_seconds:,.0f}s")
    return Group(f"[bold]batch {batch_id}[/]", bar, table)


def line(snap: Snapshot) -> str:
    """One plain line of progress, for logs and pipes."""
    counts = ", ".join(f"{k} {v:,}" for k, v in snap.counts.items() if v)
    breaker = "" if snap.breaker in ("closed", None) else f"; breaker {snap.breaker}"
    held = "; waits for `resume`" if snap.waits_for_resume else ""
    return (
        f"{snap.phase}: {snap.done:,}/{snap.total:,} done ({counts or 'nothing yet'})"
        f"{breaker}{held}"
    )


def paused_note(batch_id: str, snap: Snapshot) -> str:
    """What to do about a paused batch."""
    return (
        f"batch {batch_id} is paused: {snap.done:,} of {snap.total:,} items done, no more "
        f"chunks start; `fleetbatch resume {batch_id}` goes on, "
        f"`fleetbatch status {batch_id} --follow` follows it through pauses"
    )


async def watch(
    client: Client,
    store: Store,
    batch_id: str,
    *,
    follow: bool = True,
    through_pauses: bool = False,
    tty: bool = True,
) -> Snapshot:
    """Show progress until the batch finishes or is paused (once, without ``follow``).

    A paused batch is shown as paused and the call returns, since only ``resume`` moves
    it on; with ``through_pauses`` it is followed on until it finishes. On a terminal
    the bar redraws in place; elsewhere a line is printed every few seconds.
    """
    bar = Progress(TextColumn("items"), BarColumn(), MofNCompleteColumn(), console=console)
    task_id = bar.add_task("items", total=1)

    def over(s: Snapshot) -> bool:
        return not follow or s.finished or (s.waits_for_resume and not through_pauses)

    snap = await snapshot(client, store, batch_id)
    if follow and tty:
        with Live(
            render(batch_id, snap, bar, task_id), console=console, refresh_per_second=4
        ) as view:
            while not over(snap):
                await asyncio.sleep(0.5)
                snap = await snapshot(client, store, batch_id)
                view.update(render(batch_id, snap, bar, task_id))
    else:
        while not over(snap):
            console.print(line(snap), highlight=False, markup=False)
            await asyncio.sleep(3)
            snap = await snapshot(client, store, batch_id)
        console.print(render(batch_id, snap, bar, task_id))
    if snap.waits_for_resume:
        console.print(paused_note(batch_id, snap), highlight=False, markup=False)
    return snap
