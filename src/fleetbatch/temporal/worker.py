"""The worker: every workflow and every activity of fleetbatch on one task queue."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from fleetbatch.activities.consent import ConsentActivities, ConsentService
from fleetbatch.activities.dispatch import Dispatcher
from fleetbatch.activities.items import ItemActivities
from fleetbatch.bus import Bus
from fleetbatch.store import Store
from fleetbatch.workflows import WORKFLOWS


def build_worker(
    client: Client,
    task_queue: str,
    store: Store,
    bus: Bus,
    consent: ConsentService,
    *,
    max_concurrent_activities: int = 200,
) -> Worker:
    """A worker with its activities bound to the given store, bus and consent service."""
    items = ItemActivities(store)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            items.next_chunks,
            items.begin_chunk,
            items.record_outcomes,
            items.finish_batch,
            ConsentActivities(consent).check,
            Dispatcher(bus).publish,
        ],
        max_concurrent_activities=max_concurrent_activities,
        # fleetbatch's workflow modules hold no mutable state: sharing them saves
        # re-importing them into every new workflow's sandbox.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("fleetbatch")
        ),
    )
