"""Item attempts against SQLite and PostgreSQL: bulk, idempotent writes and the read."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from fleetbatch.config import Settings
from fleetbatch.domain import ChunkSpec, ItemStatus, Outcome
from fleetbatch.errors import BatchNotFoundError, ItemNotFoundError
from fleetbatch.intake import read_rows
from fleetbatch.pipelines import get_pipeline
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.store import ItemHistory, NewBatch, Store
from fleetbatch.store.db import sync_engines

SETTINGS = Settings()


async def begun(store: Store, batch_id: str, count: int) -> list[tuple[int, str, str]]:
    """A vehicle batch of ``count`` VINs, its one chunk in flight: (id, VIN, effect id)."""
    kind = get_pipeline("vehicle")
    options = kind.options({"command": "lock_doors"}, SETTINGS)
    data = ("vin\n" + "".join(f"{make_vin(i)}\n" for i in range(count))).encode()
    rows = read_rows(io.BytesIO(data), filename="vins.csv", key_field=kind.key_field)
    await store.uploads.store(
        batch_id,
        NewBatch(kind.name, "lock_doors", options, 100, 4),
        "vins.csv",
        kind.validate(rows, options, SETTINGS),
        key_name=kind.key_name,
    )
    found = await store.items.page(batch_id, limit=count)
    chunk = ChunkSpec(found[0]["id"], found[-1]["id"], count)
    refs, _ = await store.items.begin_chunk(batch_id, chunk, f"{batch_id}-chunk")
    return [(r.id, r.key, r.effect_id) for r in refs]


@contextlib.contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL of every statement (an executemany counts once) sent meanwhile."""
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    engines = sync_engines(store.engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", capture)


def on_attempts(seen: list[str]) -> list[str]:
    """The statements that write item attempts, up to their first column."""
    return [
        s.split("=")[0].split(" (")[0]
        for s in seen
        if s.startswith(("INSERT INTO item_attempts", "UPDATE item_attempts"))
    ]


def table(history: ItemHistory) -> list[tuple[int, str, bool, str | None]]:
    """(attempt, effect id, answered, outcome) of each attempt, in order."""
    return [
        (a.attempt, a.effect_id, a.answered_at is not None, a.outcome) for a in history.attempts
    ]


async def test_attempts_are_written_in_bulk_and_once(store: Store, batch_id: str) -> None:
    (a, va, ca), (b, vb, cb), (c, vc, cc) = await begun(store, batch_id, 3)
    with statements(store) as seen:
        await store.attempts.published([a, b, c], 1)
    assert on_attempts(seen) == ["INSERT INTO item_attempts"]
    first = (await store.attempts.for_item(batch_id, va)).attempts[0].published_at
    # A retried publish sends the same attempt again: its first time stands.
    await store.attempts.published([a, b, c], 1)
    assert (await store.attempts.for_item(batch_id, va)).attempts[0].published_at == first
    await store.attempts.published([b, c], 2)

    answered = datetime.now(UTC) + timedelta(seconds=1)
    outcomes = [
        Outcome(a, ItemStatus.SUCCEEDED, 1, answered_at=answered.timestamp()),
        Outcome(b, ItemStatus.SUCCEEDED, 2, answered_at=answered.timestamp(), attempt_timeout=30),
        Outcome(c, ItemStatus.FAILED, 2, "no response within 30s", attempt_timeout=30),
    ]
    with statements(store) as seen:
        await store.items.record_outcomes(outcomes)
    # One update per distinct last attempt (number, outcome, answer time): three here;
    # one for the earlier attempts that timed out.
    updates = on_attempts(seen)
    assert updates == 3 * ["UPDATE item_attempts SET answered_at"] + [
        "UPDATE item_attempts SET outcome"
    ], updates

    hist_a = await store.attempts.for_item(batch_id, va)
    hist_b = await store.attempts.for_item(batch_id, vb)
    hist_c = await store.attempts.for_item(batch_id, vc)
    assert table(hist_a) == [(1, ca, True, "succeeded")]
    assert table(hist_b) == [(1, cb, False, "timed out after 30s"), (2, cb, True, "succeeded")]
    assert table(hist_c) == [
        (1, cc, False, "timed out after 30s"),
        (2, cc, False, "timed out after 30s"),
    ]
    stamp = hist_a.attempts[0].answered_at
    assert stamp is not None and abs((stamp - answered).total_seconds()) < 0.001
    assert stamp.utcoffset() == timedelta(0)
    assert hist_c.item["status"] == "failed" and hist_c.item["attempts"] == 2

    # A repeated write (a retried activity), even a different one, changes nothing.
    await store.items.record_outcomes(
        [Outcome(o.item_id, ItemStatus.CANCELLED, o.attempts, "late") for o in outcomes]
    )
    assert await store.attempts.for_item(batch_id, vb) == hist_b
    assert await store.attempts.for_item(batch_id, vc) == hist_c


async def test_a_redrive_keeps_the_earlier_attempts(store: Store, batch_id: str) -> None:
    [(item, vin, old)] = await begun(store, batch_id, 1)
    await store.attempts.published([item], 1)
    await store.items.record_outcomes(
        [Outcome(item, ItemStatus.FAILED, 1, "domain rejected the command: x", answered_at=1e9)]
    )
    await store.items.close_batch(batch_id)
    assert await store.items.redrive(batch_id) == 1
    found = await store.items.page(batch_id)
    refs, _ = await store.items.begin_chunk(batch_id, ChunkSpec(item, item, 1), f"{batch_id}-again")
    new = refs[0].effect_id
    assert new != old
    await store.attempts.published([item], 1)
    waiting = await store.attempts.for_item(batch_id, vin)
    assert table(waiting) == [
        (1, old, True, "failed: domain rejected the command: x"),
        (1, new, False, None),  # still waiting for its answer
    ]
    await store.items.record_outcomes([Outcome(item, ItemStatus.SUCCEEDED, 1, answered_at=2e9)])
    done = await store.attempts.for_item(batch_id, vin)
    assert table(done) == [
        (1, old, True, "failed: domain rejected the command: x"),
        (1, new, True, "succeeded"),
    ]
    assert done.item["effect_id"] == new and found[0]["status"] == "pending"


async def test_cancelled_and_skipped_items(store: Store, batch_id: str) -> None:
    (a, va, ca), (b, vb, _) = await begun(store, batch_id, 2)
    await store.attempts.published([a], 1)
    await store.attempts.published([a], 2)
    await store.items.record_outcomes(
        [
            Outcome(a, ItemStatus.CANCELLED, 2, "batch stopped: wrong file", attempt_timeout=5),
            Outcome(b, ItemStatus.SKIPPED, 0, "owner has not consented"),
        ]
    )
    assert table(await store.attempts.for_item(batch_id, va)) == [
        (1, ca, False, "timed out after 5s"),
        (2, ca, False, "cancelled: batch stopped: wrong file"),
    ]
    skipped = await store.attempts.for_item(batch_id, vb)
    assert skipped.attempts == []
    assert skipped.item["error"] == "owner has not consented"


async def test_unknown_batch_or_key(store: Store, batch_id: str) -> None:
    await begun(store, batch_id, 1)
    with pytest.raises(BatchNotFoundError, match=r"^no batch 'nope'$"):
        await store.attempts.for_item("nope", make_vin(0))
    with pytest.raises(ItemNotFoundError) as raised:
        await store.attempts.for_item(batch_id, make_vin(5))
    assert str(raised.value) == f"batch {batch_id!r} has no item {make_vin(5)!r}"


async def test_a_chunk_costs_a_statement_per_answer_time(store: Store, batch_id: str) -> None:
    refs = await begun(store, batch_id, 100)
    ids = [r[0] for r in refs]
    with statements(store) as seen:
        await store.attempts.published(ids, 1)
    assert on_attempts(seen) == ["INSERT INTO item_attempts"]
    # The answers came in two signals (two workflow tasks' times).
    times = [1_700_000_000.25, 1_700_000_000.5]
    outcomes = [
        Outcome(i, ItemStatus.SUCCEEDED, 1, answered_at=times[n % 2]) for n, i in enumerate(ids)
    ]
    with statements(store) as seen:
        await store.items.record_outcomes(outcomes)
    assert on_attempts(seen) == 2 * ["UPDATE item_attempts SET answered_at"]
    history = await store.attempts.for_item(batch_id, refs[1][1])
    assert [(a.outcome, a.answered_at) for a in history.attempts] == [
        ("succeeded", datetime.fromtimestamp(times[1], UTC))
    ]


async def test_items_failed_in_flight_end_their_waiting_attempts(
    store: Store, batch_id: str
) -> None:
    (a, va, _), (b, vb, _) = await begun(store, batch_id, 2)
    await store.attempts.published([a, b], 1)
    await store.items.record_outcomes([Outcome(a, ItemStatus.SUCCEEDED, 1, answered_at=1e9)])
    # The saga's compensation: the chunk's step failed with b still in flight.
    assert await store.items.end_chunk(f"{batch_id}-chunk", "its chunk failed") == 1
    assert [a.outcome for a in (await store.attempts.for_item(batch_id, va)).attempts] == [
        "succeeded"
    ]
    assert [a.outcome for a in (await store.attempts.for_item(batch_id, vb)).attempts] == [
        "failed: its chunk failed"
    ]


async def test_closing_a_batch_ends_the_attempts_of_orphaned_items(
    store: Store, batch_id: str
) -> None:
    [(item, vin, _)] = await begun(store, batch_id, 1)
    await store.attempts.published([item], 1)
    await store.items.close_batch(batch_id)
    history = await store.attempts.for_item(batch_id, vin)
    reason = "its chunk workflow ended without recording an outcome"
    assert (history.item["status"], history.item["error"]) == ("failed", reason)
    assert [a.outcome for a in history.attempts] == [f"failed: {reason}"]
