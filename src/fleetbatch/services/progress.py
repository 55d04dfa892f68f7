"""Where a batch is: the counts from the store, item by item; from the running
workflow only what it alone knows (phase, pause, stop reason, window, waves).

The CLI's ``status`` and the HTTP API's batch page and live events read the same snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from fleetbatch.domain import TERMINAL, ItemStatus
from fleetbatch.pipelines import get_pipeline
from fleetbatch.store import Store
from fleetbatch.store.batches import now
from fleetbatch.workflows import BatchWorkflow
from fleetbatch.workflows.ids import batch_workflow_id

ACTIVE_PHASES = ("open", "running", "idle", "paused", "stopping")
FINISHING = "finished"
"""The batch workflow's last phase: its counts are final, the store's status comes next."""
RATE_WINDOW_SECONDS = 60.0
"""The rate (and the ETA) is that of the completions in the last minute."""


@dataclass
class Snapshot:
    """Where a batch is, from whichever source knows best."""

    phase: str
    total: int
    counts: dict[str, int]
    """Items by status, from the store: every status, adding up to ``total``."""
    items_per_second: float
    """Completions per second over the last minute while the batch runs; over its
    whole run once it has finished."""
    eta_seconds: float | None
    """Seconds to the end at the current rate; None when unknown, finished, paused
    or stopping."""
    breaker: str | None = "closed"
    """The batch's circuit breaker (a vehicle command type's): closed, half_open or
    open; None for a pipeline without one."""
    stop_reason: str | None = None
    paused: bool = False
    """Asked to start no more chunks (``pause``) and not resumed yet."""
    updated_at: datetime | None = None
    """When an item of the batch last changed status."""
    max_in_flight: int | None = None
    """The window (chunks at once) while the batch runs."""
    chunks_in_flight: int | None = None
    wave: int = 0
    """A batch in waves: the current wave, from 1 (0: no waves, or not running)."""
    waves_total: int = 0
    gate: str | None = None
    """The current wave's gate: holding, failed or waived."""
    gate_reason: str | None = None
    """Why the gate failed, with the figures."""
    awaiting_approval: int | None = None
    """The wave (from 1) that waits for an operator's approval."""
    window: str | None = None
    """A scheduled batch: ``open``, ``waiting`` (for its start time or its next
    maintenance window: nothing is published) or ``ended`` (past its end time)."""
    window_until: datetime | None = None
    """When ``window`` changes: the next window opens (waiting) or this one closes (open)."""

    def window_note(self) -> str | None:
        """``waiting for its window, opens 2026-12-08 01:00 UTC``; None unscheduled."""
        if self.window is None:
            return None
        said = {"waiting": "waiting for its window", "open": "window open"}.get(
            self.window, "past its end time"
        )
        if self.window_until is not None:
            verb = "opens" if self.window == "waiting" else "closes"
            said += f", {verb} {self.window_until:%Y-%m-%d %H:%M} UTC"
        return said

    allowed_per_minute: float | None = None
    """A batch with a rate ramp: the rate it allows itself now, in items per minute."""
    in_flight_allowance: int | None = None
    """A batch with an overshoot bound: items its abort rules afford in flight now."""

    @property
    def waits_for_resume(self) -> bool:
        """Paused, and only ``resume`` (or a cancel) moves it on.
        A paused batch that is stopping (cancelled, aborted) or finishing does not wait."""
        return self.phase == "paused"

    @property
    def done(self) -> int:
        return sum(self.counts.get(s.value, 0) for s in TERMINAL)

    @property
    def finished(self) -> bool:
        return self.phase not in ACTIVE_PHASES

    @property
    def settled(self) -> bool:
        """Finished, and the final status is known (completed, cancelled, aborted, failed…)."""
        return self.finished and self.phase != FINISHING


async def snapshot(client: Client, store: Store, batch_id: str) -> Snapshot:
    """The store's counts, with the running workflow's phase (or the store's status
    when it is not running).

    Raises:
        BatchNotFoundError: no such batch.
    """
    batch = await store.batches.get(batch_id)
    counts = await store.counts.get(batch_id)
    handle = client.get_workflow_handle(batch_workflow_id(batch_id))
    try:
        status = (await handle.describe()).status
    except RPCError:
        status = None  # not started yet, or its history is gone: the store knows
    key = get_pipeline(batch.pipeline).breaker(batch.options)
    breaker = None if key is None else (await store.breakers.get(key)).state
    snap = Snapshot(
        batch.status,
        counts.total,
        counts.by_status,
        0.0,
        None,
        breaker,
        (batch.summary or {}).get("reason"),
        updated_at=counts.updated_at,
    )
    if status == WorkflowExecutionStatus.RUNNING:
        p = await handle.query(BatchWorkflow.progress)
        snap.phase, snap.paused, snap.stop_reason = p.phase, p.paused, p.stop_reason
        snap.max_in_flight, snap.chunks_in_flight = p.max_in_flight, p.in_flight_chunks
        snap.wave, snap.waves_total, snap.gate = p.wave, p.waves_total, p.gate
        snap.gate_reason, snap.awaiting_approval = p.gate_reason, p.awaiting_approval
        snap.window = p.window
        if p.window_until is not None:
            snap.window_until = datetime.fromtimestamp(p.window_until, UTC)
        snap.allowed_per_minute, snap.in_flight_allowance = p.rate_per_minute, p.in_flight_allowance
        snap.items_per_second = await store.counts.recent_rate(
            batch_id, since=batch.created_at, window=RATE_WINDOW_SECONDS
        )
        left = counts.by_status[ItemStatus.PENDING] + counts.by_status[ItemStatus.IN_FLIGHT]
        if snap.items_per_second and left and snap.phase in ("running", "idle"):
            snap.eta_seconds = left / snap.items_per_second
        return snap
    if status is None and snap.phase == "open":
        snap.phase = "not started"  # stored, but its workflow never started: submit again
    if status is not None and status != WorkflowExecutionStatus.COMPLETED:
        snap.phase = status.name.lower()  # failed, terminated, …
    elapsed = ((batch.finished_at or now()) - batch.created_at).total_seconds()
    snap.items_per_second = snap.done / elapsed if elapsed > 0 else 0.0
    return snap
