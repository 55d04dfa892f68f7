"""Once a batch's stop is accepted (a cancel, an abort), nothing more is published for
it: the publish itself checks the store, whatever signals are still on their way.
Likewise once its maintenance window's end has passed, by the publishing worker's clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace

from temporalio.converter import DataConverter
from temporalio.testing import ActivityEnvironment

from fleetbatch.activities.types import ItemColumns
from fleetbatch.bus import MemoryBus
from fleetbatch.domain import ChunkSpec
from fleetbatch.intake import Accepted
from fleetbatch.pipelines.vehicle.dispatch import Dispatcher
from fleetbatch.pipelines.vehicle.types import PublishInput, PublishResult
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


async def test_a_publish_past_its_window_sends_nothing(store: Store, batch_id: str) -> None:
    items = await stored_batch(store, batch_id, 3)
    bus = RecordingBus()
    now = 1_900_000_000.0
    dispatcher = Dispatcher(bus, store, clock=lambda: now)
    env = ActivityEnvironment()
    # Queued inside the window, run at its end (the end is exclusive).
    late = PublishInput("vehicle", "lock_doors", batch_id, "chunk-wf", 1, items, window_end=now)
    assert await env.run(dispatcher.publish, late) == PublishResult(window_closed=True)
    assert bus.sent == []
    # Nothing noted: neither a publish for the batch nor an admission by the breaker.
    assert (await store.batches.get(batch_id)).last_published_at is None
    assert (await store.breakers.get("lock_doors")).state == "closed"

    inside = replace(late, window_end=now + 0.5)
    assert await env.run(dispatcher.publish, inside) == PublishResult()
    assert len(bus.sent) == 3


async def test_a_publish_recorded_before_windows_decodes_without_an_end() -> None:
    """Histories recorded before windows carry publishes without ``window_end``."""
    converter = DataConverter.default.payload_converter
    recorded = asdict(PublishInput("vehicle", "lock_doors", "b", "wf", 1, ItemColumns([], [], [])))
    del recorded["window_end"]
    [payload] = converter.to_payloads([recorded])
    [decoded] = converter.from_payloads([payload], [PublishInput])
    assert decoded.window_end is None
