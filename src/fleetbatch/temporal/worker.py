"""The workers: every workflow and short activity on the main task queue, and
each command type's publishing on its own rate-limited queue."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from fleetbatch.activities.consent import ConsentActivities, ConsentService
from fleetbatch.activities.dispatch import Dispatcher
from fleetbatch.activities.items import ItemActivities
from fleetbatch.bus import Bus
from fleetbatch.store import Store
from fleetbatch.workflows import WORKFLOWS
from fleetbatch.workflows.ids import publish_task_queue


def build_workers(
    client: Client,
    task_queue: str,
    store: Store,
    bus: Bus,
    consent: ConsentService,
    commands: Iterable[str],
    *,
    max_concurrent_activities: int = 200,
) -> list[Worker]:
    """The main worker and one publish worker per command type, with their
    activities bound to the given store, bus and consent service."""
    items = ItemActivities(store)
    dispatcher = Dispatcher(bus, store)
    main = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[
            items.next_chunks,
            items.begin_chunk,
            items.record_outcomes,
            items.end_chunk,
            items.finish_batch,
            ConsentActivities(consent).check,
            # Chunks from before per-type queues publish locally, on this worker.
            dispatcher.publish,
            dispatcher.report,
        ],
        max_concurrent_activities=max_concurrent_activities,
        # fleetbatch's workflow modules hold no mutable state: sharing them saves
        # re-importing them into every new workflow's sandbox.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules("fleetbatch")
        ),
    )
    publishers = [
        Worker(
            client,
            task_queue=publish_task_queue(task_queue, command),
            activities=[dispatcher.publish],
            max_concurrent_activities=max_concurrent_activities,
        )
        for command in commands
    ]
    return [main, *publishers]
