"""Where a batch is: the workflow's progress query while it runs, the store once it is done.

The CLI's ``status`` and the HTTP API's batch page and live events read the same snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from fleetbatch.domain import TERMINAL
from fleetbatch.pipelines import get_pipeline
from fleetbatch.store import Store
from fleetbatch.store.batches import now
from fleetbatch.workflows import BatchWorkflow
from fleetbatch.workflows.ids import batch_workflow_id

ACTIVE_PHASES = ("open", "running", "idle", "paused", "stopping")
FINISHING = "finished"
"""The batch workflow's last phase: its counts are final, the store's status comes next."""


@dataclass
class Snapshot:
    """Where a batch is, from whichever source knows best."""

    phase: str
    total: int
    counts: dict[str, int]
    items_per_second: float
    eta_seconds: float | None
    """Seconds to the end at the current rate; None when unknown, finished or paused."""
    breaker: str | None = "closed"
    """The batch's circuit breaker (a vehicle command type's): closed, half_open or
    open; None for a pipeline without one."""
    stop_reason: str | None = None
    paused: bool = False
    """Asked to start no more chunks (``pause``) and not resumed yet."""

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
    """Progress from the running workflow, or from the store when it is not running.

    Raises:
        BatchNotFoundError: no such batch.
    """
    batch = await store.batches.get(batch_id)
    handle = client.get_workflow_handle(batch_workflow_id(batch_id))
    try:
        status = (await handle.describe()).status
    except RPCError:
        status = None  # not started yet, or its history is gone: the store knows
    key = get_pipeline(batch.pipeline).breaker(batch.options)
    breaker = None if key is None else (await store.breakers.get(key)).state
    if status == WorkflowExecutionStatus.RUNNING:
        p = await handle.query(BatchWorkflow.progress)
        return Snapshot(
            p.phase,
            p.items_total,
            p.counts,
            p.items_per_second,
            # Paused, no more chunks start: the average rate says nothing of the end.
            None if p.paused else p.eta_seconds,
            breaker,
            p.stop_reason,
            p.paused,
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
