"""Once a batch's stop is accepted (a cancel, an abort), nothing more is published for
it: the publish itself checks the store, whatever signals are still on their way."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.testing import ActivityEnvironment

from fleetbatch.activities.types import ItemColumns
from fleetbatch.bus import MemoryBus
from fleetbatch.domain import ChunkSpec
from fleetbatch.intake import Accepted
from fleetbatch.pipelines.vehicle.dispatch import Dispatcher
from fleetbatch.pipelines.vehicle.types import PublishInput
from fleetbatch.store import NewBatch, Store
from support import vins


class RecordingBus(MemoryBus):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    async def publish(self, subject: str, messages: Sequence[bytes]) -> None:
        self.sent.extend(messages)


async def stored_batch(store: Store, batch_id: str, n: int) -> ItemColumns:
    await store.uploads.store(
        batch_id,
        NewBatch("vehicle", "lock_doors", {"command": "lock_doors"}, 10, 1),
        "vins.csv",
        [Accepted(line, vin) for line, vin in enumerate(vins(n), start=2)],
    )
    rows = [r async for r in store.items.stream(batch_id)]
    ids = [r["id"] for r in rows]
    # In flight for the chunk that publishes them (a queued publish sends only those).
    await store.items.begin_chunk(batch_id, ChunkSpec(ids[0], ids[-1], n), "chunk-wf", lease=False)
    return ItemColumns(ids, [r["key"] for r in rows], [r["effect_id"] for r in rows])


async def test_a_publish_after_the_stop_sends_nothing(store: Store, batch_id: str) -> None:
    items = await stored_batch(store, batch_id, 3)
    bus = RecordingBus()
    publish = PublishInput("vehicle", "lock_doors", batch_id, "chunk-wf", 1, items)
    env = ActivityEnvironment()
    # A publish on the command type's queue: the store is asked first.
    await env.run(Dispatcher(bus, store).publish, publish)
    assert len(bus.sent) == 3
    before = (await store.batches.get(batch_id)).last_published_at
    assert before is not None

    last = await store.batches.request_stop(batch_id)
    assert last == before  # the cancel's answer: when the last publish began
    result = await env.run(Dispatcher(bus, store).publish, publish)
    assert len(bus.sent) == 3  # nothing more
    assert (result.probe, result.held) == (False, False)
    assert (await store.batches.get(batch_id)).last_published_at == before


async def test_a_redriven_batch_publishes_again(store: Store, batch_id: str) -> None:
    items = await stored_batch(store, batch_id, 2)
    await store.batches.request_stop(batch_id)
    assert not await store.batches.note_publish(batch_id)
    await store.items.close_batch(batch_id, ("cancelled", "wrong file"))
    assert (await store.batches.get(batch_id)).status == "cancelled"
    # Its two items were in flight when it closed: they failed, and redrive runs them.
    assert await store.items.redrive(batch_id) == len(items.ids) == 2
    assert (await store.batches.get(batch_id)).stop_requested_at is None
    assert await store.batches.note_publish(batch_id)
