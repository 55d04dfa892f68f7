"""The workers: every workflow and short activity on the main task queue, and
each command type's publishing on its own rate-limited queue."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from fleetbatch.activities.batcher import BatcherActivities
from fleetbatch.activities.batcher_types import BatcherConfig
from fleetbatch.activities.consent import ConsentActivities, ConsentService
from fleetbatch.activities.dispatch import Dispatcher
from fleetbatch.activities.items import ItemActivities
from fleetbatch.activities.rounds import RoundStarter
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
    batcher: BatcherConfig | None = None,
) -> list[Worker]:
    """The main worker (with the write batchers) and one publish worker per command
    type, with their activities bound to the given store, bus and consent service."""
    items = ItemActivities(store, client)
    batchers = BatcherActivities(store, client, task_queue, batcher)
    dispatcher = Dispatcher(bus, store)
    consent_check = ConsentActivities(consent)
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
            consent_check.check,
            RoundStarter(items, consent_check, dispatcher).start_round,
            # Chunks from before per-type queues publish locally, on this worker.
            dispatcher.publish,
            dispatcher.report,
            batchers.submit,
            batchers.flush,
            batchers.ack,
        ],
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=UnsandboxedWorkflowRunner(),
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
