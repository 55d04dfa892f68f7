"""The workers: the engine's workflows and activities and every pipeline's on the
main task queue, and the further workers pipelines run on queues of their own
(the vehicle pipeline's rate-limited publish queues)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from fleetbatch import gauges
from fleetbatch.activities.batcher import BatcherActivities
from fleetbatch.activities.batcher_types import BatcherConfig
from fleetbatch.activities.breaker import BreakerActivities
from fleetbatch.activities.items import ItemActivities, count_completions
from fleetbatch.activities.notify import Notifier
from fleetbatch.config import Settings
from fleetbatch.pipelines import WorkerContext, all_pipelines
from fleetbatch.store import Store
from fleetbatch.workflows import WORKFLOWS


def build_workers(
    client: Client,
    settings: Settings,
    store: Store,
    resources: Mapping[str, Any],
    *,
    max_concurrent_activities: int = 200,
    batcher: BatcherConfig | None = None,
) -> list[Worker]:
    """The main worker (with the write batchers) and each pipeline's own workers,
    with activities bound to the store and the pipelines' ``resources``."""
    task_queue = settings.temporal_task_queue
    # Process-wide series through the runtime's meter (an activity's or workflow's
    # adds its type and task queue to every series).
    meter = (client.service_client.config.runtime or Runtime.default()).metric_meter
    gauges.bind(meter)
    store.counts.on_completed = count_completions(meter)
    items = ItemActivities(store, client, settings.key_hasher)
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    batchers = BatcherActivities(store, client, task_queue, batcher)
    context = WorkerContext(client, settings, store, task_queue, resources)
    pipelines = all_pipelines()
    main = Worker(
        client,
        task_queue=task_queue,
        workflows=[*WORKFLOWS, *(w for p in pipelines for w in p.workflows())],
        activities=[
            items.next_chunks,
            items.begin_chunk,
            items.record_outcomes,
            items.end_chunk,
            items.finish_batch,
            items.stop_batch,
            BreakerActivities(store).report,
            Notifier(secret).notify,
            batchers.submit,
            batchers.flush,
            batchers.ack,
            *(a for p in pipelines for a in p.activities(context)),
        ],
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    return [main, *(w for p in pipelines for w in p.workers(context))]
