"""Live batch progress: the workflow's query while it runs, the store once it is done."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from fleetbatch.cli.common import console
from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.store import Store
from fleetbatch.store.batches import now
from fleetbatch.workflows import BatchWorkflow
from fleetbatch.workflows.ids import batch_workflow_id


@dataclass
class Snapshot:
    """Where a batch is, from whichever source knows best."""

    phase: str
    total: int
    counts: dict[str, int]
    items_per_second: float
    eta_seconds: float | None
    breaker: str = "closed"
    """The command type's circuit breaker: closed, half_open or open."""
    stop_reason: str | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in TERMINAL)

    @property
    def finished(self) -> bool:
        return self.phase not in ("open", "running", "idle", "paused", "stopping")


async def snapshot(client: Client, store: Store, batch_id: str) -> Snapshot:
    """Progress from the running workflow, or from the store when it is not running."""
    batch = await store.batches.get(batch_id)
    handle = client.get_workflow_handle(batch_workflow_id(batch_id))
    try:
        status = (await handle.describe()).status
    except RPCError:
        status = None  # not started yet, or its history is gone: the store knows
    breaker = (await store.breakers.get(batch.command)).state
    if status == WorkflowExecutionStatus.RUNNING:
        p = await handle.query(BatchWorkflow.progress)
        return Snapshot(
            p.phase,
            p.items_total,
            p.counts,
            p.items_per_second,
            p.eta_seconds,
            breaker,
            p.stop_reason,
        )
    counts = await store.items.counts(batch_id)
    phase = batch.status
    if status is None and phase == "open":
        phase = "not started"  # stored, but its workflow never started: submit again
    if status is not None and status != WorkflowExecutionStatus.COMPLETED:
        phase = status.name.lower()  # failed, terminated, …
    reason = (batch.summary or {}).get("reason")
    done = sum(counts[s.value] for s in TERMINAL)
    elapsed = ((batch.finished_at or now()) - batch.created_at).total_seconds()
    rate = done / elapsed if elapsed > 0 else 0.0
    return Snapshot(phase, sum(counts.values()), counts, rate, None, breaker, reason)


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
    table.add_row("breaker", snap.breaker)
    table.add_row("rate", f"{snap.items_per_second:,.1f} items/s")
    table.add_row("ETA", eta)
    return Group(f"[bold]batch {batch_id}[/]", bar, table)


def line(snap: Snapshot) -> str:
    """One plain line of progress, for logs and pipes."""
    counts = ", ".join(f"{k} {v:,}" for k, v in snap.counts.items() if v)
    breaker = "" if snap.breaker == "closed" else f"; breaker {snap.breaker}"
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
