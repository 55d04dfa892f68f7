"""Batch progress for ``status``: a live bar on a terminal, plain lines elsewhere,
JSON for scripts; and the exit code the batch's state means."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text
from temporalio.client import Client

from fleetbatch.cli.common import console, print_json
from fleetbatch.domain import ItemStatus, format_duration
from fleetbatch.services.progress import Snapshot, snapshot
from fleetbatch.store import Store

POLL_SECONDS = 3.0
"""How often progress is read when it is printed as lines (plain or JSON)."""

EXIT_CODES = {"completed": 0, "aborted": 3, "cancelled": 4, "canceled": 4}
"""``status``'s exit code by the batch's final phase: 0 completed, 3 aborted (failures
past the tolerance), 4 cancelled (by an operator, or its workflow was); any other end
(the workflow failed, was terminated or timed out, or never started) is ``FAILED``.
A batch not finished yet (``--once``, a paused batch) is 0; 1 is an error of the
command itself (no such batch, Temporal unreachable) and 2 a usage error."""
FAILED = 5


def exit_code(snap: Snapshot) -> int:
    """What ``status`` exits with for this snapshot (``EXIT_CODES``)."""
    if not snap.finished:
        return 0
    return EXIT_CODES.get(snap.phase, FAILED)


def summary(snap: Snapshot) -> Table:
    """Counts by status, phase, breaker, rate and ETA (no ETA while paused: no chunk
    starts until ``resume``, so there is no end to estimate)."""
    table = Table(box=None, show_header=False, pad_edge=False)
    for status in ItemStatus:
        table.add_row(status.value, f"{snap.counts.get(status.value, 0):,}")
    table.add_row("", "")
    table.add_row("phase", snap.phase)
    if snap.stop_reason:
        table.add_row("reason", Text(snap.stop_reason))
    if snap.breaker is not None:
        table.add_row("breaker", snap.breaker)
    if snap.wave:
        table.add_row("wave", _wave(snap))
    if snap.gate_reason:
        table.add_row("gate", Text(snap.gate_reason))
    if (window := snap.window_note()) is not None:
        table.add_row("window", window)
    table.add_row("rate", f"{snap.items_per_second:,.1f} items/s")
    if snap.allowed_per_minute is not None:
        table.add_row("ramp", f"allows {snap.allowed_per_minute:,.0f} items/min now")
    if snap.in_flight_allowance is not None:
        table.add_row("in flight", f"at most {snap.in_flight_allowance:,} items (abort rules)")
    if not snap.paused:
        table.add_row("ETA", format_duration(snap.eta_seconds))
    return table


def render(batch_id: str, snap: Snapshot, bar: Progress, task_id: int) -> Group:
    """For a terminal: the bar above the summary."""
    bar.update(task_id, total=max(snap.total, 1), completed=snap.done)  # type: ignore[arg-type]
    return Group(f"[bold]batch {batch_id}[/]", bar, summary(snap))


def plain(batch_id: str, snap: Snapshot) -> Group:
    """For a pipe or a file: the summary under a line of text, no bar glyphs."""
    percent = 100.0 * snap.done / snap.total if snap.total else 0.0
    heading = Text(f"batch {batch_id}: {snap.done:,} of {snap.total:,} items done ({percent:.1f}%)")
    return Group(heading, summary(snap))


def line(snap: Snapshot) -> str:
    """One plain line of progress, for logs and pipes."""
    counts = ", ".join(f"{k} {v:,}" for k, v in snap.counts.items() if v)
    breaker = "" if snap.breaker in ("closed", None) else f"; breaker {snap.breaker}"
    held = "; waits for `resume`" if snap.waits_for_resume else ""
    wave = f"; {_wave(snap)}" if snap.wave else ""
    window = "" if snap.window in (None, "open") else f"; {snap.window_note()}"
    return (
        f"{snap.phase}: {snap.done:,}/{snap.total:,} done ({counts or 'nothing yet'})"
        f"{breaker}{wave}{window}{held}"
    )


def _wave(snap: Snapshot) -> str:
    """``wave 1 of 3, gate holding`` and, when it waits, for which approval."""
    said = f"wave {snap.wave} of {snap.waves_total}"
    if snap.gate is not None:
        said += f", gate {snap.gate}"
    if snap.awaiting_approval is not None:
        said += f", wave {snap.awaiting_approval} waits for `fleetbatch approve`"
    return said


def paused_note(batch_id: str, snap: Snapshot) -> str:
    """What to do about a paused batch."""
    return (
        f"batch {batch_id} is paused: {snap.done:,} of {snap.total:,} items done, no more "
        f"chunks start; `fleetbatch resume {batch_id}` goes on, "
        f"`fleetbatch status {batch_id} --follow` follows it through pauses"
    )


def as_json(batch_id: str, snap: Snapshot) -> dict[str, Any]:
    """A snapshot of ``status --json``: the batch id and the API's progress object
    (the README documents the shape)."""
    from fleetbatch.api.schemas import ProgressPublic  # the API's shape, imported when asked

    return {"batch_id": batch_id, **ProgressPublic.of(snap).model_dump(mode="json")}


def _pause_before_next(snap: Snapshot) -> float:
    # A finished workflow's final status is stored within moments: look again soon.
    return 0.2 if snap.finished else POLL_SECONDS


async def watch_json(client: Client, store: Store, batch_id: str, *, follow: bool) -> Snapshot:
    """Print the snapshot as one JSON object; with ``follow`` one per poll (through
    pauses) until the batch has settled. A finished workflow is read again, quietly,
    until its final status is stored."""
    snap = await snapshot(client, store, batch_id)
    while not snap.settled and (follow or snap.finished):
        if follow:
            print_json(as_json(batch_id, snap))
        await asyncio.sleep(_pause_before_next(snap))
        snap = await snapshot(client, store, batch_id)
    print_json(as_json(batch_id, snap))
    return snap


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
    the bar redraws in place; elsewhere a line is printed every few seconds and the
    end is a plain summary, without bar glyphs. A batch whose workflow has finished
    is read again until its final status is stored (it decides the exit code).
    """
    bar = Progress(TextColumn("items"), BarColumn(), MofNCompleteColumn(), console=console)
    task_id = bar.add_task("items", total=1)

    def over(s: Snapshot) -> bool:
        if s.finished:
            return s.settled
        return not follow or (s.waits_for_resume and not through_pauses)

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
            await asyncio.sleep(_pause_before_next(snap))
            snap = await snapshot(client, store, batch_id)
        console.print(render(batch_id, snap, bar, task_id) if tty else plain(batch_id, snap))
    if snap.waits_for_resume:
        console.print(paused_note(batch_id, snap), highlight=False, markup=False)
    return snap
