"""BENCHMARK REFERENCE — not product code: it lives in ``fleetbatch_bench``, outside the
``fleetbatch`` package, and only ``fleetbatch bench`` runs it.

The original design's shape (``seeds/000``): a parent workflow pages 50 VIN
ids at a time from the store and starts one child workflow per VIN; each
child runs four activities — consent check, publish, wait for the response,
update status. ``fleetbatch bench`` runs it to measure what the engine costs
when every vehicle is its own workflow execution, and states every other
configuration's rate relative to it.

Differences from the original, all in its favour:
- no 5-second pause between pages: it would measure the pause, not the engine;
- publish and wait-for-response do no I/O and return at once, so only the
  engine's cost of scheduling them is measured;
- consent asks the consent simulator and the status update writes the item's
  outcome to the store: the same "every item terminal in the store" clock as
  fleetbatch's own configurations.

The parent waits for a page's children before it pages on, and continues as
new before its history grows long.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

with workflow.unsafe.imports_passed_through():
    from fleetbatch.domain import ItemStatus, Outcome
    from fleetbatch.pipelines.vehicle.consent import ConsentService
    from fleetbatch.store import Store

PAGE_SIZE = 50
_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class ReferenceInput:
    batch_id: str
    page_size: int = PAGE_SIZE
    max_history_events: int = 5_000
    after_id: int = 0
    """Paging cursor, carried over continue-as-new."""
    done: int = 0


@dataclass(frozen=True)
class PageInput:
    batch_id: str
    after_id: int
    limit: int


@dataclass(frozen=True)
class ReferenceItem:
    id: int
    vin: str


@dataclass(frozen=True)
class Page:
    items: list[ReferenceItem]


@dataclass(frozen=True)
class Consent:
    granted: bool


@dataclass(frozen=True)
class Published:
    message_id: str


@dataclass(frozen=True)
class Answer:
    ok: bool


@dataclass(frozen=True)
class StatusUpdate:
    item_id: int
    status: str


class ReferenceActivities:
    """The reference's activities, built with the store and the consent service."""

    def __init__(self, store: Store, consent: ConsentService) -> None:
        self._store = store
        self._consent = consent

    @activity.defn(name="bench.reference.next_vins")
    async def next_vins(self, params: PageInput) -> Page:
        """The next page of pending items, each with its VIN (the item's key)."""
        rows = await self._store.items.page(
            params.batch_id,
            after=params.after_id,
            limit=params.limit,
            status=ItemStatus.PENDING.value,
        )
        return Page([ReferenceItem(row["id"], row["key"]) for row in rows])

    @activity.defn(name="bench.reference.check_consent")
    async def check_consent(self, item: ReferenceItem) -> Consent:
        return Consent(item.vin not in await self._consent.denied([item.vin]))

    @activity.defn(name="bench.reference.publish")
    async def publish(self, item: ReferenceItem) -> Published:
        return Published(f"{item.id}/{item.vin}")

    @activity.defn(name="bench.reference.wait_for_response")
    async def wait_for_response(self, message: Published) -> Answer:
        return Answer(ok=True)

    @activity.defn(name="bench.reference.update_status")
    async def update_status(self, update: StatusUpdate) -> None:
        await self._store.items.record_outcomes(
            [Outcome(update.item_id, ItemStatus(update.status), 1)]
        )


@workflow.defn(name="BenchReferenceVin")
class ReferenceVinWorkflow:
    """One VIN: consent → publish → wait for the response → update status."""

    @workflow.run
    async def run(self, item: ReferenceItem) -> str:
        consent = await workflow.execute_activity_method(
            ReferenceActivities.check_consent, item, start_to_close_timeout=_TIMEOUT
        )
        status = ItemStatus.SKIPPED
        if consent.granted:
            published = await workflow.execute_activity_method(
                ReferenceActivities.publish, item, start_to_close_timeout=_TIMEOUT
            )
            answer = await workflow.execute_activity_method(
                ReferenceActivities.wait_for_response, published, start_to_close_timeout=_TIMEOUT
            )
            status = ItemStatus.SUCCEEDED if answer.ok else ItemStatus.FAILED
        await workflow.execute_activity_method(
            ReferenceActivities.update_status,
            StatusUpdate(item.id, status.value),
            start_to_close_timeout=_TIMEOUT,
        )
        return status.value


@workflow.defn(name="BenchReferenceBatch")
class ReferenceBatchWorkflow:
    """Pages VINs and runs one child workflow per VIN, a page at a time."""

    @workflow.run
    async def run(self, params: ReferenceInput) -> int:
        after_id, done = params.after_id, params.done
        while True:
            info = workflow.info()
            if (
                info.is_continue_as_new_suggested()
                or info.get_current_history_length() >= params.max_history_events
            ):
                workflow.continue_as_new(replace(params, after_id=after_id, done=done))
            page = await workflow.execute_activity_method(
                ReferenceActivities.next_vins,
                PageInput(params.batch_id, after_id, params.page_size),
                start_to_close_timeout=_TIMEOUT,
            )
            if not page.items:
                return done
            await asyncio.gather(
                *(
                    workflow.execute_child_workflow(
                        ReferenceVinWorkflow.run,
                        item,
                        id=f"bench-reference-{params.batch_id}-vin-{item.vin}",
                    )
                    for item in page.items
                )
            )
            after_id, done = page.items[-1].id, done + len(page.items)


def reference_worker(
    client: Client,
    task_queue: str,
    store: Store,
    consent: ConsentService,
    *,
    max_concurrent_activities: int = 200,
) -> Worker:
    """A worker for the reference, tuned as fleetbatch's own worker is (activity
    concurrency, no workflow sandbox), so the comparison is between the two
    shapes, not between two worker set-ups."""
    activities = ReferenceActivities(store, consent)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ReferenceBatchWorkflow, ReferenceVinWorkflow],
        activities=[
            activities.next_vins,
            activities.check_consent,
            activities.publish,
            activities.wait_for_response,
            activities.update_status,
        ],
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
