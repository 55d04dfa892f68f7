"""The per-batch broadcaster: one snapshot per interval for all subscribers, an error
for all of them, and stream limits per caller and in all."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from fastapi import HTTPException
from temporalio.service import RPCError, RPCStatusCode

from fleetbatch.api.broadcast import EventHub, Update
from fleetbatch.services.progress import Snapshot


def _snap(done: int, total: int = 5) -> Snapshot:
    phase = "completed" if done >= total else "running"
    return Snapshot(phase, total, {"succeeded": done}, 1.0, None)


class Batch:
    """A fake batch that moves one item on per snapshot, and counts the snapshots."""

    def __init__(self, total: int = 5, fail_at: int | None = None) -> None:
        self.total = total
        self.fail_at = fail_at
        self.calls = 0

    async def fetch(self, batch_id: str) -> Snapshot:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RPCError("consistent query buffer is full", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
        return _snap(min(self.calls, self.total), self.total)


async def _follow(hub: EventHub, interval: float) -> list[Update]:
    seen = []
    async with contextlib.aclosing(hub.broadcaster("b1").updates(interval)) as updates:
        async for update in updates:
            seen.append(update)
    return seen


async def test_subscribers_share_one_snapshot_per_interval() -> None:
    batch = Batch(total=5)
    hub = EventHub(batch.fetch, per_caller=100, total=100)
    followed = await asyncio.gather(*(_follow(hub, 0.01) for _ in range(20)))
    assert batch.calls == 5  # not 20 times 5: one query per interval for all
    for updates in followed:
        assert updates[-1].snapshot is not None and updates[-1].snapshot.settled
        assert [u.seq for u in updates] == sorted({u.seq for u in updates})
    assert followed[0][-1] is followed[-1][-1]  # the very same snapshot


async def test_a_slower_subscriber_skips_snapshots_but_not_the_last() -> None:
    batch = Batch(total=20)
    hub = EventHub(batch.fetch, per_caller=100, total=100)
    fast, slow = await asyncio.gather(_follow(hub, 0.01), _follow(hub, 0.05))
    assert len(fast) > len(slow) >= 1
    assert slow[-1] is fast[-1]
    assert batch.calls == 20


async def test_an_error_reaches_every_subscriber_and_ends_their_streams() -> None:
    batch = Batch(total=50, fail_at=3)
    hub = EventHub(batch.fetch, per_caller=100, total=100)
    followed = await asyncio.gather(*(_follow(hub, 0.01) for _ in range(3)))
    for updates in followed:
        last = updates[-1]
        assert last.snapshot is None and last.final
        assert last.error == (
            "progress is not available from Temporal: consistent query buffer is full"
        )
    assert batch.calls == 3


async def test_the_last_subscriber_stops_the_broadcaster() -> None:
    batch = Batch(total=10_000)
    hub = EventHub(batch.fetch, per_caller=100, total=100)
    broadcaster = hub.broadcaster("b1")
    updates = broadcaster.updates(0.01)
    await anext(updates)
    assert hub.broadcaster("b1") is broadcaster and broadcaster.subscribers == 1
    await updates.aclose()
    assert broadcaster.subscribers == 0
    calls = batch.calls
    await asyncio.sleep(0.05)
    assert batch.calls == calls  # no more queries for nobody
    assert hub.broadcaster("b1") is not broadcaster  # forgotten; a new one next time


def test_streams_are_limited_per_caller_and_in_all() -> None:
    hub = EventHub(Batch().fetch, per_caller=2, total=3)
    first = hub.reserve("alice")
    hub.reserve("alice")
    with pytest.raises(HTTPException) as caught:
        hub.reserve("alice")
    assert caught.value.status_code == 429
    assert caught.value.detail == (
        "this token has 2 live event streams open, the most one token may hold: close one first"
    )
    assert caught.value.headers == {"Retry-After": "5"}
    hub.reserve("bob")
    with pytest.raises(HTTPException) as caught:
        hub.reserve("carol")
    assert caught.value.status_code == 503
    assert caught.value.detail == (
        "the API serves 3 live event streams, the most it holds at once: try again later"
    )
    first()
    first()  # releasing twice frees one slot only
    assert hub.open_streams == 2
    hub.reserve("carol")
    assert hub.open_streams == 3
