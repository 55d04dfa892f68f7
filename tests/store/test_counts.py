"""A batch's counts by status (``store.counts``) against SQLite and PostgreSQL: after
every kind of write they equal a ``GROUP BY`` over the items and add up to the total;
concurrent chunks of one batch neither deadlock nor lose a delta; completions land
in the timeline and the recent rate."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from test_store import csv_of, make_vins, upload

from fleetbatch.domain import ItemStatus, Outcome
from fleetbatch.store import BatchStatus, Store
from fleetbatch.store.counts import BUCKET_SECONDS
from fleetbatch.store.tables import items


async def scanned(store: Store, batch_id: str) -> dict[str, int]:
    """The truth the counts table must equal."""
    query = (
        select(items.c.status, func.count())
        .where(items.c.batch_id == batch_id)
        .group_by(items.c.status)
    )
    async with store.engine.connect() as conn:
        found = {s: int(n) for s, n in await conn.execute(query)}
    return {s.value: found.get(s.value, 0) for s in ItemStatus}


async def check(store: Store, batch_id: str) -> dict[str, int]:
    counts = await store.counts.get(batch_id)
    assert counts.by_status == await scanned(store, batch_id)
    return counts.by_status


async def test_counts_follow_every_write(store: Store, batch_id: str) -> None:
    vins = make_vins(12)
    await upload(store, batch_id, csv_of(*vins[:8]))
    assert (await check(store, batch_id))["pending"] == 8
    before = (await store.counts.get(batch_id)).updated_at
    assert before is not None

    chunks = await store.items.next_chunks(batch_id, 0, 4, 2)
    first, _ = await store.items.begin_chunk(batch_id, chunks[0], "wf-1")
    assert (await check(store, batch_id))["in_flight"] == 4
    again, _ = await store.items.begin_chunk(batch_id, chunks[0], "wf-1")  # a retry
    assert again == first
    assert (await check(store, batch_id))["in_flight"] == 4

    # A second file while the first is running: pending grows, the rest stays.
    await upload(store, batch_id, csv_of(*vins[6:]))  # two duplicates, four new
    assert (await check(store, batch_id))["pending"] == 8

    await store.items.record_outcomes(
        [
            Outcome(first[0].id, ItemStatus.SUCCEEDED, 1),
            Outcome(first[1].id, ItemStatus.FAILED, 3, "no response"),
            Outcome(first[2].id, ItemStatus.SKIPPED, 0, "no consent"),
        ],
        ["wf-1"],
    )
    counts = await check(store, batch_id)
    assert (counts["succeeded"], counts["failed"], counts["skipped"]) == (1, 1, 1)
    await store.items.record_outcomes([Outcome(first[0].id, ItemStatus.SUCCEEDED, 1)])  # repeat
    assert await check(store, batch_id) == counts

    assert await store.items.end_chunk("wf-1", "step failed") == 1  # the fourth item
    assert (await check(store, batch_id))["failed"] == 2

    second, _ = await store.items.begin_chunk(batch_id, chunks[1], "wf-2")
    await store.items.record_one(Outcome(second[0].id, ItemStatus.SUCCEEDED, 1), {"ok": True})
    assert (await check(store, batch_id))["succeeded"] == 2

    # Cancelled with three in flight and four pending: the pending ones end
    # cancelled, those in flight failed.
    await store.items.close_batch(batch_id, ("cancelled", "operator"))
    counts = await check(store, batch_id)
    assert counts == {**counts, "pending": 0, "in_flight": 0, "cancelled": 4, "failed": 5}
    assert sum(counts.values()) == 12
    assert (await store.counts.get(batch_id)).updated_at >= before  # type: ignore[operator]

    # Redrive by status and by reason.
    assert await store.items.redrive(batch_id, [ItemStatus.SKIPPED]) == 1
    assert (await check(store, batch_id))["pending"] == 1
    await store.batches.set_status(batch_id, BatchStatus.COMPLETED)
    assert await store.items.redrive(batch_id, [ItemStatus.FAILED], error="no response") == 1
    counts = await check(store, batch_id)
    assert (counts["pending"], counts["failed"]) == (2, 4)
    assert sum(counts.values()) == 12


async def test_counts_of_many_batches_in_one_read(store: Store, batch_id: str) -> None:
    other = f"{batch_id}-2"
    await upload(store, batch_id, csv_of(*make_vins(3)))
    await upload(store, other, csv_of(*make_vins(2)))
    found = await store.counts.many([batch_id, other, "no-such-batch"])
    assert (found[batch_id].total, found[other].total) == (3, 2)
    assert found["no-such-batch"].total == 0 and found["no-such-batch"].updated_at is None


async def test_failure_reasons_largest_first_and_filtered_pages(
    store: Store, batch_id: str
) -> None:
    await upload(store, batch_id, csv_of(*make_vins(6)))
    [chunk] = await store.items.next_chunks(batch_id, 0, 6, 1)
    refs, _ = await store.items.begin_chunk(batch_id, chunk, "wf-1")
    errors = ["timeout", "timeout", "timeout", "rejected", None]
    statuses = [ItemStatus.FAILED] * 4 + [ItemStatus.SUCCEEDED]
    await store.items.record_outcomes(
        [Outcome(r.id, s, 1, e) for r, s, e in zip(refs, statuses, errors, strict=False)]
    )
    await store.items.close_batch(batch_id)  # the sixth item was left in flight
    assert await store.items.failure_reasons(batch_id) == [
        ("failed", "timeout", 3),
        ("failed", "its chunk workflow ended without recording an outcome", 1),
        ("failed", "rejected", 1),
    ]
    page = await store.items.page(batch_id, error="timeout")
    assert [r["id"] for r in page] == [r.id for r in refs[:3]]


async def test_concurrent_chunks_of_one_batch_keep_exact_counts(
    store: Store, batch_id: str
) -> None:
    """Many chunks begin and record at once (PostgreSQL: concurrent transactions on
    the same counts rows): no deadlock, no delta lost."""
    await upload(store, batch_id, csv_of(*make_vins(400)))
    chunks = await store.items.next_chunks(batch_id, 0, 10, 40)

    async def run(n: int) -> None:
        refs, _ = await store.items.begin_chunk(batch_id, chunks[n], f"wf-{n}")
        status = ItemStatus.SUCCEEDED if n % 3 else ItemStatus.FAILED
        await store.items.record_outcomes([Outcome(r.id, status, 1) for r in refs], [f"wf-{n}"])

    await asyncio.wait_for(asyncio.gather(*(run(n) for n in range(len(chunks)))), 120)
    counts = await check(store, batch_id)
    assert counts["succeeded"] + counts["failed"] == 400
    assert counts["failed"] == 10 * len([n for n in range(40) if n % 3 == 0])


async def test_completions_fill_the_timeline_and_the_recent_rate(
    store: Store, batch_id: str
) -> None:
    await upload(store, batch_id, csv_of(*make_vins(5)))
    [chunk] = await store.items.next_chunks(batch_id, 0, 5, 1)
    refs, _ = await store.items.begin_chunk(batch_id, chunk, "wf-1")
    await store.items.record_outcomes(
        [Outcome(r.id, ItemStatus.SUCCEEDED, 1) for r in refs[:3]]
        + [Outcome(r.id, ItemStatus.FAILED, 1, "x") for r in refs[3:]]
    )
    timeline = await store.counts.timeline(batch_id)
    assert {(b.status, b.n) for b in timeline} == {("succeeded", 3), ("failed", 2)}
    start = timeline[0].start
    assert start.tzinfo is not None and start.timestamp() % BUCKET_SECONDS == 0
    assert datetime.now(UTC) - start < timedelta(seconds=BUCKET_SECONDS + 30)

    at = start + timedelta(seconds=BUCKET_SECONDS)
    rate = await store.counts.recent_rate(batch_id, since=start, window=60, at=at)
    assert rate == 5 / BUCKET_SECONDS
    later = await store.counts.recent_rate(
        batch_id, since=start, window=60, at=start + timedelta(minutes=5)
    )
    assert later == 0.0


async def test_a_listener_hears_each_completion_once(store: Store, batch_id: str) -> None:
    heard: list[tuple[str, str, str, int]] = []
    store.counts.on_completed = lambda *args: heard.append(args)
    await upload(store, batch_id, csv_of(*make_vins(3)))
    [chunk] = await store.items.next_chunks(batch_id, 0, 3, 1)
    refs, _ = await store.items.begin_chunk(batch_id, chunk, "wf-1")
    outcomes = [Outcome(r.id, ItemStatus.SUCCEEDED, 1) for r in refs[:2]]
    await store.items.record_outcomes(outcomes)
    await store.items.record_outcomes(outcomes)  # an activity's retry: nothing new
    await store.items.end_chunk("wf-1", "gone")
    assert sorted(heard) == [
        ("vehicle", "lock_doors", "failed", 1),
        ("vehicle", "lock_doors", "succeeded", 2),
    ]
