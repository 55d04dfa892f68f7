"""The store against SQLite and PostgreSQL: uploads, duplicates, atomicity, item state."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, event, func, select, text

from fleetbatch.config import Settings
from fleetbatch.domain import (
    BreakerCount,
    BreakerSeen,
    ChunkSpec,
    ItemRef,
    ItemStatus,
    Outcome,
    effect_id_for,
)
from fleetbatch.errors import BatchConflictError, BatchNotFoundError, InputFileError
from fleetbatch.intake import Accepted, Rejection, read_rows
from fleetbatch.pipelines import get_pipeline
from fleetbatch.pipelines.vehicle.vin import make_vin
from fleetbatch.store import BatchStatus, NewBatch, Store, UploadResult
from fleetbatch.store.batches import BatchRepository, now
from fleetbatch.store.db import sync_engines
from fleetbatch.store.item_intake import _PG_LEFT_OUT, Duplicate, ItemIntake
from fleetbatch.store.tables import batches, item_leases, items, rejections, uploads
from fleetbatch.store.uploads import FLUSH_ROWS

V1 = "1HGCM82633A004352"
V2 = "1M8GDM9AXKP042788"
V3 = "JH4KA7561PC008269"


def make_vins(count: int, start: int = 0) -> list[str]:
    return [make_vin(start + i) for i in range(count)]


def csv_of(*lines: str) -> bytes:
    return ("vin\n" + "".join(f"{line}\n" for line in lines)).encode()


def users_csv(*rows: tuple[str, str, str]) -> bytes:
    return ("user_id,email,country\n" + "".join(f"{','.join(r)}\n" for r in rows)).encode()


SETTINGS = Settings()


async def upload(
    store: Store,
    batch_id: str,
    data: bytes,
    *,
    filename: str = "vins.csv",
    pipeline: str = "vehicle",
    command: str = "lock_doors",
    options: dict[str, Any] | None = None,
    chunk_size: int = 100,
    max_in_flight: int = 4,
) -> UploadResult:
    """Store a file as submission does: read by the pipeline's key field, validated by
    its rules, duplicates named by its key name."""
    kind = get_pipeline(pipeline)
    given = (
        options if options is not None else ({"command": command} if pipeline == "vehicle" else {})
    )
    checked = kind.options(given, SETTINGS)
    plan = kind.plan(checked, SETTINGS)
    rows = read_rows(io.BytesIO(data), filename=filename, key_field=kind.key_field)
    return await store.uploads.store(
        batch_id,
        NewBatch(kind.name, plan.label, checked, chunk_size, max_in_flight),
        filename,
        kind.validate(rows, checked, SETTINGS),
        key_name=kind.key_name,
    )


async def rows_of(store: Store, table: Table, batch_id: str) -> list[dict[str, Any]]:
    column = table.c.id if table is batches else table.c.batch_id
    query = select(table).where(column == batch_id).order_by(table.c.id)
    async with store.engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def all_items(store: Store, batch_id: str) -> list[dict[str, Any]]:
    return [row async for row in store.items.stream(batch_id)]


def reasons(result: UploadResult) -> list[tuple[int, str, str]]:
    return [(r.line, r.value, r.reason) for r in result.rejections]


@contextlib.contextmanager
def recorded(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the store's engine sends while the context lasts, with its
    parameters, whitespace collapsed."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((" ".join(statement.split()), parameters))

    engines = sync_engines(store.engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", capture)


_TARGET = re.compile(
    # PostgreSQL's duplicate lookup (a LATERAL probe of items per key) first.
    r"^SELECT .*? CROSS JOIN LATERAL \(SELECT .*? FROM \w+"
    r"|^(?:INSERT INTO|UPDATE|DELETE FROM) \w+|^SELECT .*? FROM \w+",
    re.DOTALL,
)


def targets(seen: list[tuple[str, Any]], table: str) -> list[str]:
    """What the statements did to ``table``: ``INSERT INTO items``, ``SELECT … FROM items``."""
    found = [m[0] for m in (_TARGET.match(sql) for sql, _ in seen) if m]
    found = [
        re.sub(r"^SELECT .* FROM (\w+)$", r"SELECT FROM \1", t, flags=re.DOTALL) for t in found
    ]
    return [
        f"SELECT FROM {table}" if t.startswith("SELECT") else t
        for t in found
        if t.rsplit(" ", 1)[1] == table
    ]


async def held_leases(store: Store, *batch_ids: str) -> dict[str, str]:
    """Key → holder of the item leases of ``batch_ids``."""
    query = select(item_leases.c.key, item_leases.c.holder).where(
        item_leases.c.batch_id.in_(batch_ids)
    )
    async with store.engine.connect() as conn:
        return {k: h for k, h in await conn.execute(query)}


# --- opening and migrations -------------------------------------------------------


async def test_open_is_idempotent(store_url: str, batch_id: str) -> None:
    first = await Store.open(store_url)
    try:
        await upload(first, batch_id, csv_of(V1, V2))
    finally:
        await first.close()
    # Opening again runs the migrations again: nothing changes, nothing is lost.
    for _ in range(2):
        again = await Store.open(store_url)
        try:
            assert [r["key"] for r in await all_items(again, batch_id)] == [V1, V2]
            async with again.engine.connect() as conn:
                versions = await conn.execute(text("SELECT version_num FROM alembic_version"))
                assert [v for (v,) in versions] == ["0001"]
        finally:
            await again.close()


async def test_unknown_batch(store: Store) -> None:
    assert await store.batches.find("no-such-batch") is None
    with pytest.raises(BatchNotFoundError, match="no batch 'no-such-batch'"):
        await store.batches.get("no-such-batch")


# --- uploads -----------------------------------------------------------------


async def test_upload_creates_batch_and_counts(store: Store, batch_id: str) -> None:
    data = csv_of(V1, "1HGCM82643A004352", V2, "short", V3)
    result = await upload(store, batch_id, data, chunk_size=7, max_in_flight=3)

    assert result.batch_id == batch_id
    assert (result.pipeline, result.label) == ("vehicle", "lock_doors")
    assert (result.accepted, result.rejected) == (3, 2)
    assert reasons(result) == [
        (3, "1HGCM82643A004352", "VIN check digit is 4, expected 3"),
        (5, "short", "VIN must be 17 characters, got 5"),
    ]

    batch = await store.batches.get(batch_id)
    assert (batch.id, batch.pipeline, batch.label, batch.status) == (
        batch_id,
        "vehicle",
        "lock_doors",
        BatchStatus.OPEN,
    )
    assert batch.options == {"command": "lock_doors"}
    assert (batch.chunk_size, batch.max_in_flight) == (7, 3)
    assert batch.finished_at is None
    assert batch.summary is None

    [up] = await rows_of(store, uploads, batch_id)
    assert up["id"] == result.upload_id
    assert (up["filename"], up["accepted"], up["rejected"]) == ("vins.csv", 3, 2)

    stored = await all_items(store, batch_id)
    assert [(r["line"], r["key"]) for r in stored] == [(2, V1), (4, V2), (6, V3)]
    for row in stored:
        assert row["status"] == ItemStatus.PENDING
        assert row["attempts"] == 0
        assert row["upload_id"] == result.upload_id
        assert row["effect_id"] == effect_id_for(batch_id, row["key"])
        assert row["workflow_id"] is None
        assert row["error"] is None
        assert row["result"] is None
        assert row["payload"] is None  # a vehicle item is its VIN alone

    stored_rejections = await rows_of(store, rejections, batch_id)
    assert [(r["upload_id"], r["line"], r["value"], r["reason"]) for r in stored_rejections] == [
        (result.upload_id, 3, "1HGCM82643A004352", "VIN check digit is 4, expected 3"),
        (result.upload_id, 5, "short", "VIN must be 17 characters, got 5"),
    ]
    streamed = [r async for r in store.uploads.stream_rejections(batch_id)]
    assert streamed == stored_rejections


async def test_upload_ndjson(store: Store, batch_id: str) -> None:
    data = f'{{"vin": "{V1}"}}\n{{"vin": \n{{"vin": "{V2}"}}\n'.encode()
    result = await upload(store, batch_id, data, filename="cars.ndjson")
    assert (result.accepted, result.rejected) == (2, 1)
    assert result.rejections[0].line == 2
    assert result.rejections[0].reason.startswith("invalid JSON")


async def test_duplicate_within_a_file(store: Store, batch_id: str) -> None:
    data = csv_of(V1, V2, V1, V1.lower(), V3, V2)
    result = await upload(store, batch_id, data)
    assert (result.accepted, result.rejected) == (3, 3)
    assert sorted(reasons(result)) == [
        (4, V1, "duplicate VIN, first seen on line 2"),
        (5, V1, "duplicate VIN, first seen on line 2"),
        (7, V2, "duplicate VIN, first seen on line 3"),
    ]
    assert [(r["line"], r["key"]) for r in await all_items(store, batch_id)] == [
        (2, V1),
        (3, V2),
        (6, V3),
    ]
    stored = await rows_of(store, rejections, batch_id)
    assert sorted((r["line"], r["reason"]) for r in stored) == [
        (4, "duplicate VIN, first seen on line 2"),
        (5, "duplicate VIN, first seen on line 2"),
        (7, "duplicate VIN, first seen on line 3"),
    ]


async def test_duplicate_across_bulk_flushes(store: Store, batch_id: str) -> None:
    many = make_vins(FLUSH_ROWS + 500)
    # The repeat comes after the first bulk flush: found in the store, not in memory.
    data = csv_of(*many, many[0], many[FLUSH_ROWS + 10])
    result = await upload(store, batch_id, data)
    assert result.accepted == len(many)
    assert sorted(reasons(result)) == [
        (len(many) + 2, many[0], "duplicate VIN, first seen on line 2"),
        (
            len(many) + 3,
            many[FLUSH_ROWS + 10],
            f"duplicate VIN, first seen on line {FLUSH_ROWS + 12}",
        ),
    ]


async def test_duplicate_across_uploads(store: Store, batch_id: str) -> None:
    first = await upload(store, batch_id, csv_of(V1, V2), filename="one.csv")
    second = await upload(store, batch_id, csv_of(V3, V2, V3, V1), filename="two.csv")
    assert second.upload_id != first.upload_id
    assert (second.accepted, second.rejected) == (1, 3)
    assert sorted(reasons(second)) == [
        (3, V2, f"duplicate VIN, first seen on line 3 of upload {first.upload_id}"),
        (4, V3, "duplicate VIN, first seen on line 2"),
        (5, V1, f"duplicate VIN, first seen on line 2 of upload {first.upload_id}"),
    ]
    stored = await all_items(store, batch_id)
    assert [(r["upload_id"], r["line"], r["key"]) for r in stored] == [
        (first.upload_id, 2, V1),
        (first.upload_id, 3, V2),
        (second.upload_id, 2, V3),
    ]
    ups = await rows_of(store, uploads, batch_id)
    assert [(u["filename"], u["accepted"], u["rejected"]) for u in ups] == [
        ("one.csv", 2, 0),
        ("two.csv", 1, 3),
    ]


async def test_same_key_in_two_batches(store: Store, batch_id: str) -> None:
    other = batch_id + "-other"
    first = await upload(store, batch_id, csv_of(V1, V2))
    second = await upload(store, other, csv_of(V2, V1))
    assert (first.accepted, first.rejected) == (2, 0)
    assert (second.accepted, second.rejected) == (2, 0)
    a = {r["key"]: r["effect_id"] for r in await all_items(store, batch_id)}
    b = {r["key"]: r["effect_id"] for r in await all_items(store, other)}
    assert set(a) == set(b) == {V1, V2}
    # Effect ids are per batch and key.
    assert a[V1] != b[V1]


async def test_batch_with_another_command_conflicts(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(V1))
    with pytest.raises(BatchConflictError) as caught:
        await upload(store, batch_id, csv_of(V2), command="unlock_doors")
    assert str(caught.value) == (f"batch {batch_id!r} runs 'lock_doors', not 'unlock_doors'")
    assert len(await rows_of(store, uploads, batch_id)) == 1
    assert [r["key"] for r in await all_items(store, batch_id)] == [V1]
    assert (await store.batches.get(batch_id)).label == "lock_doors"


async def test_batch_of_another_pipeline_conflicts(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(V1))
    with pytest.raises(BatchConflictError) as caught:
        await upload(store, batch_id, users_csv(("u-1", "a@example.com", "de")), pipeline="enrich")
    assert str(caught.value) == f"batch {batch_id!r} is a vehicle batch, not enrich"
    assert len(await rows_of(store, uploads, batch_id)) == 1
    assert [r["key"] for r in await all_items(store, batch_id)] == [V1]
    assert (await store.batches.get(batch_id)).pipeline == "vehicle"


async def test_upload_only_rejections_stores_upload(store: Store, batch_id: str) -> None:
    result = await upload(store, batch_id, csv_of("bad", "worse"))
    assert (result.accepted, result.rejected) == (0, 2)
    assert await all_items(store, batch_id) == []
    assert len(await rows_of(store, uploads, batch_id)) == 1
    assert len(await rows_of(store, rejections, batch_id)) == 2


async def test_many_rejections_are_all_stored(store: Store, batch_id: str) -> None:
    count = FLUSH_ROWS * 2 + 10
    result = await upload(store, batch_id, csv_of(*(f"bad{i}" for i in range(count)), V1))
    assert (result.accepted, result.rejected) == (1, count)
    assert len(result.rejections) == 1000  # the report holds the first ones only
    assert result.rejections[0] == Rejection(2, "bad0", "VIN must be 17 characters, got 4")
    stored = await rows_of(store, rejections, batch_id)
    assert len(stored) == count
    assert [r["line"] for r in stored] == list(range(2, count + 2))


async def test_upload_reopens_finished_batch(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(V1))
    await store.batches.set_status(batch_id, BatchStatus.COMPLETED, summary={"succeeded": 1})
    assert (await store.batches.get(batch_id)).finished_at is not None
    await upload(store, batch_id, csv_of(V2))
    batch = await store.batches.get(batch_id)
    assert batch.status == BatchStatus.OPEN
    assert batch.finished_at is None


async def test_rejections_stream_by_upload_and_line(store: Store, batch_id: str) -> None:
    # A duplicate is only found when accepted rows are flushed, after later bad rows.
    first = await upload(store, batch_id, csv_of(V1, V1, "bad", V2))
    second = await upload(store, batch_id, csv_of(V2, "worse"))
    streamed = [
        (r["upload_id"], r["line"], r["reason"])
        async for r in store.uploads.stream_rejections(batch_id)
    ]
    assert streamed == [
        (first.upload_id, 3, "duplicate VIN, first seen on line 2"),
        (first.upload_id, 4, "VIN must be 17 characters, got 3"),
        (second.upload_id, 2, f"duplicate VIN, first seen on line 5 of upload {first.upload_id}"),
        (second.upload_id, 3, "VIN must be 17 characters, got 5"),
    ]


async def test_concurrent_uploads_create_one_batch(store: Store, batch_id: str) -> None:
    files = [csv_of(*make_vins(1500, start)) for start in (0, 10_000)]
    results = await asyncio.gather(*(upload(store, batch_id, data) for data in files))
    assert [r.accepted for r in results] == [1500, 1500]
    assert len(await rows_of(store, batches, batch_id)) == 1
    assert len(await all_items(store, batch_id)) == 3000


async def test_concurrent_uploads_of_the_same_vins(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(V1))
    vins = make_vins(1500)
    results = await asyncio.gather(*(upload(store, batch_id, csv_of(*vins)) for _ in range(2)))
    # Each VIN is accepted once; the other file reports it as a duplicate.
    assert sorted(r.accepted for r in results) == [0, 1500]
    assert sorted(r.rejected for r in results) == [0, 1500]
    later = max(results, key=lambda r: r.rejected)
    # Whether the other file had committed when this one looked decides the wording.
    earlier = min(results, key=lambda r: r.rejected)
    assert later.rejections[0].reason in (
        f"duplicate VIN, first seen on line 2 of upload {earlier.upload_id}",
        "duplicate VIN, added by a concurrent upload",
    )
    assert len(await all_items(store, batch_id)) == 1501


async def test_batch_times_are_timezone_aware(store: Store, batch_id: str) -> None:
    before = datetime.now(UTC)
    await upload(store, batch_id, csv_of(V1))
    await store.batches.set_status(batch_id, BatchStatus.COMPLETED, summary={})
    batch = await store.batches.get(batch_id)
    after = datetime.now(UTC)
    for stamp in (batch.created_at, batch.updated_at, batch.finished_at):
        assert stamp is not None
        # Naive values are read as local time by .timestamp() and cannot be compared to now().
        assert stamp.utcoffset() == timedelta(0), stamp
        assert before - timedelta(seconds=1) <= stamp <= after + timedelta(seconds=1)


async def test_a_fresh_file_is_inserted_without_looking_anything_up(
    store: Store, batch_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database finds duplicates: rows go in with ON CONFLICT DO NOTHING, and a
    flush asks where its keys' items came from only when its insert left rows out."""
    asked: list[int] = []
    left_out = ItemIntake._left_out

    async def counted(intake: ItemIntake, rows: Sequence[Accepted]) -> list[Duplicate]:
        asked.append(len(rows))
        return await left_out(intake, rows)

    monkeypatch.setattr(ItemIntake, "_left_out", counted)
    result = await upload(store, batch_id, csv_of(*make_vins(FLUSH_ROWS + 10)))
    assert (result.accepted, result.rejected) == (FLUSH_ROWS + 10, 0)
    assert asked == []

    second = await upload(store, batch_id, csv_of(V1, make_vins(1)[0]))
    assert reasons(second) == [
        (3, make_vins(1)[0], f"duplicate VIN, first seen on line 2 of upload {result.upload_id}")
    ]
    assert asked == [2]


async def test_duplicates_across_flushes_and_files_name_the_stored_row(
    store: Store, batch_id: str
) -> None:
    """Every kind of duplicate in one file, in flushes that mix them: within a flush,
    of an earlier flush, of an earlier file, and repeats of each; the rejections come
    in line order and the items are exactly the first rows."""
    earlier = make_vins(5, start=50_000)
    first = await upload(store, batch_id, csv_of(*earlier))
    many = make_vins(2 * FLUSH_ROWS + 5)
    rows = list(many)
    rows[10] = many[3]  # within the first flush
    rows[FLUSH_ROWS + 1] = many[4]  # a later flush repeats the first flush's key
    rows[FLUSH_ROWS + 2] = earlier[2]  # an earlier file's key
    rows[FLUSH_ROWS + 3] = rows[FLUSH_ROWS + 4] = many[FLUSH_ROWS + 600]  # before its row
    rows.append(earlier[2])
    result = await upload(store, batch_id, csv_of(*rows))
    of_first = f" of upload {first.upload_id}"
    assert reasons(result) == [
        (12, many[3], "duplicate VIN, first seen on line 5"),
        (FLUSH_ROWS + 3, many[4], "duplicate VIN, first seen on line 6"),
        (FLUSH_ROWS + 4, earlier[2], f"duplicate VIN, first seen on line 4{of_first}"),
        (
            FLUSH_ROWS + 6,
            many[FLUSH_ROWS + 600],
            f"duplicate VIN, first seen on line {FLUSH_ROWS + 5}",
        ),
        (
            FLUSH_ROWS + 602,
            many[FLUSH_ROWS + 600],
            f"duplicate VIN, first seen on line {FLUSH_ROWS + 5}",
        ),
        (2 * FLUSH_ROWS + 7, earlier[2], f"duplicate VIN, first seen on line 4{of_first}"),
    ]
    stored = {r["key"]: (r["upload_id"], r["line"]) for r in await all_items(store, batch_id)}
    assert len(stored) == 5 + result.accepted == 5 + len(set(rows)) - 1
    assert stored[many[FLUSH_ROWS + 600]] == (result.upload_id, FLUSH_ROWS + 5)
    assert stored[earlier[2]] == (first.upload_id, 4)
    assert len(await rows_of(store, rejections, batch_id)) == 6


async def test_duplicate_of_an_earlier_upload_repeated_within_a_file(
    store: Store, batch_id: str
) -> None:
    """Each repeat names where the key was first seen, the row that became the item,
    not another row that was refused."""
    first = await upload(store, batch_id, csv_of(V1, V2))
    second = await upload(store, batch_id, csv_of(V3, V1, V1, V3))
    assert (second.accepted, second.rejected) == (1, 3)
    assert reasons(second) == [
        (3, V1, f"duplicate VIN, first seen on line 2 of upload {first.upload_id}"),
        (4, V1, f"duplicate VIN, first seen on line 2 of upload {first.upload_id}"),
        (5, V3, "duplicate VIN, first seen on line 2"),
    ]


async def test_duplicate_repeated_after_a_bulk_flush_names_the_stored_row(
    store: Store, batch_id: str
) -> None:
    many = make_vins(FLUSH_ROWS)
    # many[0] is stored in the first flush, then comes twice in the second.
    result = await upload(store, batch_id, csv_of(*many, many[0], many[0]))
    assert result.accepted == FLUSH_ROWS
    assert reasons(result) == [
        (FLUSH_ROWS + 2, many[0], "duplicate VIN, first seen on line 2"),
        (FLUSH_ROWS + 3, many[0], "duplicate VIN, first seen on line 2"),
    ]


async def test_enrich_items_store_their_payload(store: Store, batch_id: str) -> None:
    data = users_csv(
        ("u-1", " a@example.com ", "de"),
        ("u-2", "not-an-email", "fr"),
        ("u-3", "c@example.com", "IT"),
    )
    result = await upload(
        store, batch_id, data, filename="users.csv", pipeline="enrich", options={"format": "csv"}
    )
    assert (result.pipeline, result.label) == ("enrich", "enrich")
    assert (result.accepted, result.rejected) == (2, 1)
    assert reasons(result) == [(3, "u-2", "invalid email 'not-an-email'")]
    batch = await store.batches.get(batch_id)
    assert (batch.pipeline, batch.label, batch.options) == ("enrich", "enrich", {"format": "csv"})

    stored = await all_items(store, batch_id)
    assert [(r["line"], r["key"], r["payload"], r["effect_id"]) for r in stored] == [
        (2, "u-1", {"email": "a@example.com", "country": "DE"}, effect_id_for(batch_id, "u-1")),
        (4, "u-3", {"email": "c@example.com", "country": "IT"}, effect_id_for(batch_id, "u-3")),
    ]
    # What a step reads of its items.
    rows = await store.items.rows([r["id"] for r in stored][::-1])
    assert rows == [
        {
            "id": stored[0]["id"],
            "key": "u-1",
            "payload": {"email": "a@example.com", "country": "DE"},
            "status": "pending",
            "attempts": 0,
            "error": None,
            "result": None,
        },
        {
            "id": stored[1]["id"],
            "key": "u-3",
            "payload": {"email": "c@example.com", "country": "IT"},
            "status": "pending",
            "attempts": 0,
            "error": None,
            "result": None,
        },
    ]


async def test_enrich_duplicates_within_and_across_uploads(store: Store, batch_id: str) -> None:
    first = await upload(
        store,
        batch_id,
        users_csv(
            ("u-1", "a@example.com", "de"),
            ("u-2", "b@example.com", "fr"),
            ("u-1", "other@example.com", "it"),
        ),
        pipeline="enrich",
    )
    assert (first.accepted, first.rejected) == (2, 1)
    assert reasons(first) == [(4, "u-1", "duplicate user_id, first seen on line 2")]
    second = await upload(
        store,
        batch_id,
        users_csv(("u-3", "c@example.com", "se"), ("u-2", "b2@example.com", "fr")),
        pipeline="enrich",
    )
    assert (second.accepted, second.rejected) == (1, 1)
    assert reasons(second) == [
        (3, "u-2", f"duplicate user_id, first seen on line 3 of upload {first.upload_id}")
    ]
    # The first row of a key is the item, payload and all.
    assert {r["key"]: r["payload"]["email"] for r in await all_items(store, batch_id)} == {
        "u-1": "a@example.com",
        "u-2": "b@example.com",
        "u-3": "c@example.com",
    }
    stored = await rows_of(store, rejections, batch_id)
    assert [(r["upload_id"], r["line"], r["value"], r["reason"]) for r in stored] == [
        (first.upload_id, 4, "u-1", "duplicate user_id, first seen on line 2"),
        (
            second.upload_id,
            3,
            "u-2",
            f"duplicate user_id, first seen on line 3 of upload {first.upload_id}",
        ),
    ]


# --- atomicity ---------------------------------------------------------------


def _failing_file(count: int) -> bytes:
    # Valid rows and rejections past a bulk flush of each, then a line that is not UTF-8.
    good = make_vins(count)
    bad = [f"bad{i}" for i in range(FLUSH_ROWS + 5)]
    return csv_of(*good, *bad, good[0]).rstrip(b"\n") + b"\nabc\xff\n" + csv_of(V1)[4:]


async def test_failing_file_stores_nothing(store: Store, batch_id: str) -> None:
    count = FLUSH_ROWS * 2 + 7
    data = _failing_file(count)
    with pytest.raises(InputFileError) as caught:
        await upload(store, batch_id, data)
    assert str(caught.value) == (
        f"line {count + FLUSH_ROWS + 5 + 3}: not valid UTF-8 (byte 0xff at offset 3)"
    )
    assert await store.batches.find(batch_id) is None
    for table in (batches, uploads, items, rejections):
        assert await rows_of(store, table, batch_id) == [], table.name
    async with store.engine.connect() as conn:
        upload_ids = select(uploads.c.id).where(uploads.c.batch_id == batch_id)
        orphans = await conn.execute(
            select(func.count()).select_from(items).where(items.c.upload_id.in_(upload_ids))
        )
        assert orphans.scalar_one() == 0

    # The store is not left locked or half-written: the same batch can be uploaded now.
    result = await upload(store, batch_id, csv_of(V1, V2))
    assert (result.accepted, result.rejected) == (2, 0)
    assert [r["line"] for r in await all_items(store, batch_id)] == [2, 3]


async def test_failing_second_file_keeps_the_first(store: Store, batch_id: str) -> None:
    first = await upload(store, batch_id, csv_of(V1, "bad"))
    with pytest.raises(InputFileError):
        await upload(store, batch_id, _failing_file(FLUSH_ROWS + 50))
    [up] = await rows_of(store, uploads, batch_id)
    assert up["id"] == first.upload_id
    assert [r["key"] for r in await all_items(store, batch_id)] == [V1]
    assert [r["value"] for r in await rows_of(store, rejections, batch_id)] == ["bad"]
    assert (await store.batches.get(batch_id)).status == BatchStatus.OPEN


async def test_too_long_line_stores_nothing(store: Store, batch_id: str) -> None:
    data = csv_of(*make_vins(FLUSH_ROWS + 1)) + b"A" * 200_000 + b"\n"
    with pytest.raises(InputFileError, match=r"longer than 65536 bytes"):
        await upload(store, batch_id, data)
    for table in (batches, uploads, items, rejections):
        assert await rows_of(store, table, batch_id) == [], table.name


# --- items: chunks and outcomes -------------------------------------------------------


async def test_next_chunks(store: Store, batch_id: str) -> None:
    vins = make_vins(7)
    await upload(store, batch_id, csv_of(*vins))
    ids = [r["id"] for r in await all_items(store, batch_id)]

    chunks = await store.items.next_chunks(batch_id, 0, 3, 10)
    assert chunks == [
        ChunkSpec(ids[0], ids[2], 3),
        ChunkSpec(ids[3], ids[5], 3),
        ChunkSpec(ids[6], ids[6], 1),
    ]

    # At most max_chunks.
    assert await store.items.next_chunks(batch_id, 0, 3, 2) == chunks[:2]
    # The cursor: only items after it.
    assert await store.items.next_chunks(batch_id, chunks[0].last_id, 3, 10) == [
        ChunkSpec(ids[3], ids[5], 3),
        ChunkSpec(ids[6], ids[6], 1),
    ]
    assert await store.items.next_chunks(batch_id, ids[-1], 3, 10) == []
    # One-item chunks: one item id each.
    single = await store.items.next_chunks(batch_id, ids[1], 1, 100)
    assert single == [ChunkSpec(i, i, 1) for i in ids[2:]]
    # One chunk holding everything.
    assert await store.items.next_chunks(batch_id, 0, 100, 5) == [ChunkSpec(ids[0], ids[-1], 7)]
    assert await store.items.next_chunks("no-such-batch", 0, 3, 10) == []


async def test_next_chunks_only_pending(store: Store, batch_id: str) -> None:
    vins = make_vins(6)
    await upload(store, batch_id, csv_of(*vins))
    ids = [r["id"] for r in await all_items(store, batch_id)]
    first = ChunkSpec(ids[0], ids[1], 2)
    await store.items.begin_chunk(batch_id, first, "wf-1")
    await store.items.record_outcomes([Outcome(ids[2], ItemStatus.SUCCEEDED, 1)])
    assert await store.items.next_chunks(batch_id, 0, 2, 10) == [
        ChunkSpec(ids[3], ids[4], 2),
        ChunkSpec(ids[5], ids[5], 1),
    ]


async def test_chunks_skip_other_batches(store: Store, batch_id: str) -> None:
    other = batch_id + "-other"
    a1, b1, a2 = make_vins(2), make_vins(2, 100), make_vins(2, 200)
    await upload(store, batch_id, csv_of(*a1))
    await upload(store, other, csv_of(*b1))
    await upload(store, batch_id, csv_of(*a2))
    [chunk] = await store.items.next_chunks(batch_id, 0, 10, 10)
    assert chunk.size == 4
    # The id range spans the other batch's items; the chunk only ever holds its own.
    refs, blocked = await store.items.begin_chunk(batch_id, chunk, "wf-a")
    assert ([r.key for r in refs], blocked) == (a1 + a2, 0)
    assert {r["status"] for r in await all_items(store, other)} == {ItemStatus.PENDING}


async def test_begin_chunk(store: Store, batch_id: str) -> None:
    vins = make_vins(5)
    await upload(store, batch_id, csv_of(*vins))
    ids = [r["id"] for r in await all_items(store, batch_id)]
    chunk, rest = await store.items.next_chunks(batch_id, 0, 3, 10)

    refs, _ = await store.items.begin_chunk(batch_id, chunk, "batch/chunk-1")
    assert refs == [
        ItemRef(i, v, effect_id_for(batch_id, v)) for i, v in zip(ids[:3], vins[:3], strict=True)
    ]
    stored = await all_items(store, batch_id)
    assert [(r["status"], r["workflow_id"]) for r in stored] == [
        (ItemStatus.IN_FLIGHT, "batch/chunk-1"),
    ] * 3 + [(ItemStatus.PENDING, None)] * 2

    # Repeat-safe: a retried activity gets the same items back.
    assert await store.items.begin_chunk(batch_id, chunk, "batch/chunk-1") == (refs, 0)
    assert [r["status"] for r in await all_items(store, batch_id)][:3] == [ItemStatus.IN_FLIGHT] * 3

    # Items that finished meanwhile are not handed out again.
    await store.items.record_outcomes([Outcome(ids[1], ItemStatus.SUCCEEDED, 1)])
    again, _ = await store.items.begin_chunk(batch_id, chunk, "batch/chunk-1")
    assert [r.id for r in again] == [ids[0], ids[2]]
    assert (await all_items(store, batch_id))[1]["status"] == ItemStatus.SUCCEEDED

    # The other chunk was untouched.
    others, _ = await store.items.begin_chunk(batch_id, rest, "batch/chunk-2")
    assert [r.id for r in others] == ids[3:]


async def test_record_outcomes_counts_the_breaker_in_the_same_write(
    store: Store, batch_id: str
) -> None:
    vins = make_vins(4)
    await upload(store, batch_id, csv_of(*vins))
    [chunk] = await store.items.next_chunks(batch_id, 0, 10, 1)
    refs, _ = await store.items.begin_chunk(batch_id, chunk, "wf-breaker")
    outcomes = [Outcome(r.id, ItemStatus.FAILED, 1, "rejected") for r in refs]
    # Below min_calls (20) the window only counts; at 20 calls, 75 % failed opens it.
    seen = await store.items.record_outcomes(
        outcomes[:2], ["wf-breaker"], BreakerCount("lock_doors", 5, 10)
    )
    assert seen is not None and seen.state == "closed"
    assert (await store.breakers.get("lock_doors")).failures == 10
    # The same write again (an activity retried after its report failed): not counted twice.
    again = await store.items.record_outcomes(
        outcomes[:2], ["wf-breaker"], BreakerCount("lock_doors", 5, 10)
    )
    assert again == seen
    assert (await store.breakers.get("lock_doors")).failures == 10
    seen = await store.items.record_outcomes(
        outcomes[2:], ["wf-breaker"], BreakerCount("lock_doors", 0, 5)
    )
    opened_at = (await store.breakers.get("lock_doors")).opened_at
    assert opened_at is not None
    # The opening is named by when it opened: the batch notices each one once.
    assert seen == BreakerSeen("lock_doors", "open", opened_at.timestamp())
    assert [r["status"] for r in await all_items(store, batch_id)] == [ItemStatus.FAILED] * 4
    assert await store.items.record_outcomes([]) is None


async def test_record_outcomes(store: Store, batch_id: str) -> None:
    vins = make_vins(6)
    await upload(store, batch_id, csv_of(*vins))
    ids = [r["id"] for r in await all_items(store, batch_id)]
    [chunk] = await store.items.next_chunks(batch_id, 0, 10, 1)
    await store.items.begin_chunk(batch_id, chunk, "wf")

    await store.items.record_outcomes(
        [
            Outcome(ids[0], ItemStatus.SUCCEEDED, 1),
            Outcome(ids[1], ItemStatus.FAILED, 3, "no response after 3 attempts"),
            Outcome(ids[2], ItemStatus.SKIPPED, 0, "owner has not consented"),
            Outcome(ids[3], ItemStatus.CANCELLED, 0),
            Outcome(ids[4], ItemStatus.SUCCEEDED, 2),
        ]
    )
    stored = await all_items(store, batch_id)
    assert [(r["status"], r["attempts"], r["error"]) for r in stored] == [
        (ItemStatus.SUCCEEDED, 1, None),
        (ItemStatus.FAILED, 3, "no response after 3 attempts"),
        (ItemStatus.SKIPPED, 0, "owner has not consented"),
        (ItemStatus.CANCELLED, 0, None),
        (ItemStatus.SUCCEEDED, 2, None),
        (ItemStatus.IN_FLIGHT, 0, None),
    ]

    # A second, different outcome for a terminal item changes nothing; open items still update.
    await store.items.record_outcomes(
        [
            Outcome(ids[0], ItemStatus.FAILED, 5, "late failure"),
            Outcome(ids[1], ItemStatus.SUCCEEDED, 4),
            Outcome(ids[3], ItemStatus.SUCCEEDED, 1),
            Outcome(ids[5], ItemStatus.FAILED, 2, "rejected by vehicle"),
        ]
    )
    stored = await all_items(store, batch_id)
    assert [(r["status"], r["attempts"], r["error"]) for r in stored] == [
        (ItemStatus.SUCCEEDED, 1, None),
        (ItemStatus.FAILED, 3, "no response after 3 attempts"),
        (ItemStatus.SKIPPED, 0, "owner has not consented"),
        (ItemStatus.CANCELLED, 0, None),
        (ItemStatus.SUCCEEDED, 2, None),
        (ItemStatus.FAILED, 2, "rejected by vehicle"),
    ]
    await store.items.record_outcomes([])


async def test_record_outcomes_of_pending_items(store: Store, batch_id: str) -> None:
    # Cancelling a batch finishes items that never started.
    await upload(store, batch_id, csv_of(V1, V2))
    ids = [r["id"] for r in await all_items(store, batch_id)]
    await store.items.record_outcomes([Outcome(i, ItemStatus.CANCELLED, 0) for i in ids])
    assert {r["status"] for r in await all_items(store, batch_id)} == {ItemStatus.CANCELLED}
    assert await store.items.next_chunks(batch_id, 0, 10, 10) == []


async def test_counts(store: Store, batch_id: str) -> None:
    assert await store.items.counts(batch_id) == {s.value: 0 for s in ItemStatus}
    await upload(store, batch_id, csv_of(*make_vins(8)))
    ids = [r["id"] for r in await all_items(store, batch_id)]
    await store.items.begin_chunk(batch_id, ChunkSpec(ids[0], ids[4], 5), "wf")
    await store.items.record_outcomes(
        [
            Outcome(ids[0], ItemStatus.SUCCEEDED, 1),
            Outcome(ids[1], ItemStatus.SUCCEEDED, 1),
            Outcome(ids[2], ItemStatus.FAILED, 3, "boom"),
            Outcome(ids[3], ItemStatus.SKIPPED, 0),
        ]
    )
    counts = await store.items.counts(batch_id)
    assert counts == {
        "pending": 3,
        "in_flight": 1,
        "succeeded": 2,
        "failed": 1,
        "skipped": 1,
        "cancelled": 0,
    }
    assert list(counts) == [s.value for s in ItemStatus]
    assert all(type(n) is int for n in counts.values())


async def test_stream_pages_in_id_order(store: Store, batch_id: str) -> None:
    other = batch_id + "-other"
    first, second = make_vins(6), make_vins(5, 6)
    await upload(store, batch_id, csv_of(*first))
    await upload(store, other, csv_of(*make_vins(4, 500)))
    await upload(store, batch_id, csv_of(*second))

    streamed = [r async for r in store.items.stream(batch_id, page=3)]
    assert [r["key"] for r in streamed] == first + second
    ids = [r["id"] for r in streamed]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {r["batch_id"] for r in streamed} == {batch_id}
    # Any page size gives the same rows.
    for page in (1, 2, 11, 5000):
        assert [r async for r in store.items.stream(batch_id, page=page)] == streamed
    assert [r async for r in store.items.stream("no-such-batch")] == []


async def test_set_status(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(V1))
    created = await store.batches.get(batch_id)

    await store.batches.set_status(batch_id, BatchStatus.RUNNING)
    running = await store.batches.get(batch_id)
    assert running.status == BatchStatus.RUNNING
    assert running.finished_at is None
    assert running.summary is None
    assert running.updated_at >= created.updated_at

    summary = {"succeeded": 1, "failed": 0, "reasons": {"timeout": 0}, "ratio": 1.0}
    await store.batches.set_status(batch_id, BatchStatus.COMPLETED, summary=summary)
    done = await store.batches.get(batch_id)
    assert done.status == BatchStatus.COMPLETED
    assert done.summary == summary
    assert done.finished_at is not None
    assert done.finished_at >= running.updated_at


async def test_list_batches_newest_first(store: Store, batch_id: str) -> None:
    names = [f"{batch_id}-{i}" for i in range(3)]
    for name in names:
        await upload(store, name, csv_of(V1))
    listed = [b.id for b in (await store.batches.list(limit=1000))[0] if b.id in names]
    assert listed == names[::-1]


async def test_list_batches_filters_and_counts(store: Store, batch_id: str) -> None:
    names = [f"{batch_id}-{i}" for i in range(4)]
    for name in names:
        await upload(store, name, csv_of(V1))
    await store.batches.set_status(names[1], BatchStatus.COMPLETED, {"counts": {}})
    await store.batches.set_status(names[3], BatchStatus.COMPLETED, {"counts": {}})

    async def ids(**filters: Any) -> tuple[list[str], int]:
        found, total = await store.batches.list(1000, **filters)
        mine = [b.id for b in found if b.id in names]
        return mine, total

    done, total = await ids(status=BatchStatus.COMPLETED)
    assert done == [names[3], names[1]]
    assert total >= 2
    assert (await ids(status="no-such-status")) == ([], 0)
    assert (await ids(label="no-such-command")) == ([], 0)
    assert (await ids(pipeline="no-such-pipeline")) == ([], 0)
    assert (await ids(pipeline="enrich", label="lock_doors")) == ([], 0)
    vehicle, total = await ids(pipeline="vehicle", label="lock_doors")
    assert vehicle == names[::-1]
    assert total >= 4
    first, _ = await store.batches.list(2, 0, status=BatchStatus.COMPLETED, label="lock_doors")
    second, _ = await store.batches.list(2, 1, status=BatchStatus.COMPLETED, label="lock_doors")
    assert first[1].id == second[0].id


async def test_item_page_filters_and_cursor(store: Store, batch_id: str) -> None:
    vins = make_vins(5)
    await upload(store, batch_id, csv_of(*vins))
    rows = await all_items(store, batch_id)
    await store.items.record_outcomes(
        [
            Outcome(rows[1]["id"], ItemStatus.FAILED, 1, "no"),
            Outcome(rows[3]["id"], ItemStatus.SUCCEEDED, 1),
        ]
    )

    failed = await store.items.page(batch_id, status="failed")
    assert [r["key"] for r in failed] == [vins[1]]
    assert [r["key"] for r in await store.items.page(batch_id, key=vins[2])] == [vins[2]]
    # The store matches keys as stored; the pipeline normalises what an operator typed.
    typed = get_pipeline("vehicle").normalise_key(f" {vins[2].lower()} ")
    assert [r["key"] for r in await store.items.page(batch_id, key=typed)] == [vins[2]]
    assert [r["key"] for r in await store.items.page(batch_id, key=vins[0][:8])] == vins
    assert await store.items.page(batch_id, key="1FBT%") == []
    assert await store.items.page(batch_id, key="_") == []

    first = await store.items.page(batch_id, limit=2)
    rest = await store.items.page(batch_id, after=first[-1]["id"], limit=10)
    assert [r["key"] for r in first + rest] == vins
    pending = await store.items.page(batch_id, status="pending", after=first[0]["id"])
    assert [r["key"] for r in pending] == [vins[2], vins[4]]


async def test_begin_chunk_leases_keys_across_batches(store: Store, batch_id: str) -> None:
    other = batch_id + "-other"
    keys, extra = make_vins(3), make_vins(1, 50)[0]
    await upload(store, batch_id, csv_of(*keys))
    await upload(store, other, csv_of(*keys[1:], extra))
    [mine] = await store.items.next_chunks(batch_id, 0, 10, 1)
    [theirs] = await store.items.next_chunks(other, 0, 10, 1)

    refs, blocked = await store.items.begin_chunk(batch_id, mine, "wf-mine")
    assert ([r.key for r in refs], blocked) == (keys, 0)
    assert await held_leases(store, batch_id, other) == dict.fromkeys(keys, "wf-mine")

    # The other batch's chunk waits for the two keys held elsewhere; the third goes.
    refs, blocked = await store.items.begin_chunk(other, theirs, "wf-theirs")
    assert ([r.key for r in refs], blocked) == ([extra], 2)
    statuses = {r["key"]: r["status"] for r in await all_items(store, other)}
    assert statuses == {keys[1]: "pending", keys[2]: "pending", extra: "in_flight"}

    # Once the holder's items are terminal its leases end, and the waiting items go.
    mine_ids = [r["id"] for r in await all_items(store, batch_id)]
    await store.items.record_outcomes(
        [Outcome(i, ItemStatus.SUCCEEDED, 1) for i in mine_ids], ["wf-mine"]
    )
    refs, blocked = await store.items.begin_chunk(other, theirs, "wf-theirs")
    assert ([r.key for r in refs], blocked) == ([*keys[1:], extra], 0)
    assert await held_leases(store, batch_id, other) == dict.fromkeys(
        [*keys[1:], extra], "wf-theirs"
    )


async def test_begin_chunk_without_leases(store: Store, batch_id: str) -> None:
    other = batch_id + "-other"
    keys = make_vins(3)
    await upload(store, batch_id, csv_of(*keys))
    await upload(store, other, csv_of(*keys))
    [held] = await store.items.next_chunks(batch_id, 0, 10, 1)
    await store.items.begin_chunk(batch_id, held, "wf-holder")
    before = await held_leases(store, batch_id, other)
    assert before == dict.fromkeys(keys, "wf-holder")

    # Keys another chunk holds do not hold this one back, and it takes no leases.
    [chunk] = await store.items.next_chunks(other, 0, 10, 1)
    with recorded(store) as seen:
        refs, blocked = await store.items.begin_chunk(other, chunk, "wf-free", lease=False)
    ids = [r["id"] for r in await all_items(store, other)]
    assert (refs, blocked) == (
        [ItemRef(i, k, effect_id_for(other, k)) for i, k in zip(ids, keys, strict=True)],
        0,
    )
    assert targets(seen, "item_leases") == []
    assert await held_leases(store, batch_id, other) == before
    stored = await all_items(store, other)
    assert [(r["status"], r["workflow_id"]) for r in stored] == [("in_flight", "wf-free")] * 3
    # Repeat-safe as with leases.
    assert await store.items.begin_chunk(other, chunk, "wf-free", lease=False) == (refs, 0)


async def test_record_one_writes_status_and_result_once(store: Store, batch_id: str) -> None:
    data = users_csv(
        ("u-1", "a@example.com", "de"),
        ("u-2", "b@example.com", "fr"),
        ("u-3", "c@example.com", "it"),
    )
    await upload(store, batch_id, data, pipeline="enrich")
    [chunk] = await store.items.next_chunks(batch_id, 0, 10, 1)
    refs, _ = await store.items.begin_chunk(batch_id, chunk, "wf-enrich", lease=False)
    one, two, three = refs
    result = {"score": 7, "segments": ["a", "b"], "nested": {"ok": True}}

    assert await store.items.record_one(Outcome(one.id, ItemStatus.SUCCEEDED, 1), result) is True
    failed = Outcome(two.id, ItemStatus.FAILED, 3, "enrichment service answered 422")
    assert await store.items.record_one(failed, None) is True
    # The second time (a retried attempt) the item is terminal: nothing is written.
    late = Outcome(one.id, ItemStatus.FAILED, 5, "late")
    assert await store.items.record_one(late, {"score": 0}) is False
    assert await store.items.record_one(Outcome(two.id, ItemStatus.SUCCEEDED, 4), {}) is False

    rows = await store.items.rows([r.id for r in refs])
    assert [(r["key"], r["status"], r["attempts"], r["error"], r["result"]) for r in rows] == [
        ("u-1", "succeeded", 1, None, result),
        ("u-2", "failed", 3, "enrichment service answered 422", None),
        ("u-3", "in_flight", 0, None, None),
    ]
    # The chunk's bulk write leaves what was recorded one by one alone.
    await store.items.record_outcomes(
        [Outcome(one.id, ItemStatus.CANCELLED, 0), Outcome(three.id, ItemStatus.SUCCEEDED, 1)]
    )
    assert await store.items.in_flight("wf-enrich", [r.id for r in refs]) == set()
    rows = await store.items.rows([r.id for r in refs])
    assert [(r["status"], r["result"]) for r in rows] == [
        ("succeeded", result),
        ("failed", None),
        ("succeeded", None),
    ]
    assert await store.items.record_one(Outcome(three.id, ItemStatus.FAILED, 2), None) is False


# --- closing a batch ---------------------------------------------------------------


async def test_close_batch_waits_for_pending_items(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(*make_vins(3)))
    counts, pending = await store.items.close_batch(batch_id)
    assert (pending, counts["pending"]) == (3, 3)
    assert (await store.batches.get(batch_id)).status == "open"


async def test_close_batch_fails_orphaned_in_flight_items(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(*make_vins(4)))
    chunk = (await store.items.next_chunks(batch_id, 0, 4, 1))[0]
    refs, _ = await store.items.begin_chunk(batch_id, chunk, "wf-gone")
    await store.items.record_outcomes([Outcome(refs[0].id, ItemStatus.SUCCEEDED, 1)])

    counts, pending = await store.items.close_batch(batch_id)

    assert pending == 0
    assert (counts["succeeded"], counts["failed"], counts["in_flight"]) == (1, 3, 0)
    failed = [r for r in await all_items(store, batch_id) if r["status"] == "failed"]
    assert {r["error"] for r in failed} == {"its chunk workflow ended without recording an outcome"}
    batch = await store.batches.get(batch_id)
    assert batch.status == "completed"
    assert batch.summary == {"counts": counts}
    assert batch.finished_at is not None


async def test_postgresql_duplicate_lookup_uses_a_key_index_inside_an_upload(pg_url: str) -> None:
    """Inside an upload's transaction the planner's statistics predate its rows; the
    lookup of where left-out (duplicate) keys were first seen must still find each key
    by index, not scan the batch (which made a large re-upload quadratic)."""
    store = await Store.open(pg_url)
    batch_id = f"b-plan-{uuid.uuid4().hex[:8]}"
    keys = make_vins(1_000, start=2_000)
    new = NewBatch("vehicle", "lock_doors", {"command": "lock_doors"}, 100, 4)
    try:
        async with store.engine.connect() as conn, conn.begin() as transaction:
            await BatchRepository.create(conn, batch_id, new)
            upload_id = (
                await conn.execute(
                    uploads.insert()
                    .values(
                        batch_id=batch_id, filename="f", accepted=0, rejected=0, created_at=now()
                    )
                    .returning(uploads.c.id)
                )
            ).scalar_one()
            intake = ItemIntake(conn, batch_id, upload_id)
            rows = [Accepted(n + 2, v) for n, v in enumerate(make_vins(5_000))]
            assert await intake.add(rows) == (5_000, [])
            # The same keys again: the unique key leaves every one out.
            again = [Accepted(n + 6_000, v) for n, v in enumerate(keys)]
            inserted, left_out = await intake.add(again)
            # What did the lookup do?
            driver = (await conn.get_raw_connection()).driver_connection
            plan = await driver.fetch(
                "EXPLAIN " + _PG_LEFT_OUT,
                batch_id,
                upload_id,
                [row.line for row in again],
                [row.key for row in again],
            )
            # Each plan line cut short: a filter lists every key.
            lines = "\n".join(row[0][:120] for row in plan)
            await transaction.rollback()
    finally:
        await store.close()
    assert "uq_items_batch_key" in lines or "ix_items_key" in lines, lines
    assert "ix_items_batch_status_id" not in lines, lines
    assert inserted == 0
    assert left_out == [Duplicate(6_000 + n, v, upload_id, 2_002 + n) for n, v in enumerate(keys)]


async def test_one_bulk_write_records_many_chunks_and_ends_their_leases(
    store: Store, batch_id: str
) -> None:
    """The write batcher's flush: several one-item chunks' outcomes in one call."""
    await upload(store, batch_id, csv_of(*make_vins(3)))
    chunks = await store.items.next_chunks(batch_id, 0, 1, 3)
    refs = [
        (await store.items.begin_chunk(batch_id, c, f"wf-{n}"))[0][0] for n, c in enumerate(chunks)
    ]
    outcomes = [Outcome(r.id, ItemStatus.SUCCEEDED, 1) for r in refs]
    with recorded(store) as first:
        await store.items.record_outcomes(outcomes, ["wf-0", "wf-1"])
    with recorded(store) as repeated:
        await store.items.record_outcomes(outcomes)  # repeated: changes nothing

    # One statement writes the three chunks' outcomes (they are alike), one ends
    # two chunks' leases. Repeated, the write finds nothing in flight and looks for
    # pending items (each statement moves items from one status: the counts' delta).
    assert targets(first, "items") == ["UPDATE items"]
    assert targets(first, "item_leases") == ["DELETE FROM item_leases"]
    assert targets(repeated, "items") == ["UPDATE items", "UPDATE items"]
    assert targets(repeated, "item_leases") == []
    assert {r["status"] for r in await all_items(store, batch_id)} == {"succeeded"}
    assert await held_leases(store, batch_id) == {refs[2].key: "wf-2"}


# --- redrive ---------------------------------------------------------------------


async def test_redrive_resets_failed_items_with_new_effect_ids(store: Store, batch_id: str) -> None:
    data = users_csv(
        ("u-1", "a@example.com", "de"),
        ("u-2", "b@example.com", "fr"),
        ("u-3", "c@example.com", "it"),
    )
    await upload(store, batch_id, data, pipeline="enrich")
    [chunk] = await store.items.next_chunks(batch_id, 0, 10, 1)
    refs, _ = await store.items.begin_chunk(batch_id, chunk, "wf-1", lease=False)
    await store.items.record_one(Outcome(refs[0].id, ItemStatus.SUCCEEDED, 1), {"score": 1})
    await store.items.record_one(
        Outcome(refs[1].id, ItemStatus.FAILED, 3, "service unavailable"), {"partial": True}
    )
    await store.items.record_outcomes([Outcome(refs[2].id, ItemStatus.FAILED, 1, "timed out")])

    with pytest.raises(BatchConflictError) as caught:
        await store.items.redrive(batch_id)
    assert str(caught.value) == (
        f"batch {batch_id!r} is open: only a finished batch can be redriven"
    )
    counts, _ = await store.items.close_batch(batch_id)
    assert (counts["succeeded"], counts["failed"]) == (1, 2)

    assert await store.items.redrive(batch_id) == 2
    batch = await store.batches.get(batch_id)
    assert (batch.status, batch.redrives, batch.finished_at) == (BatchStatus.OPEN, 1, None)
    stored = await all_items(store, batch_id)
    assert [
        (r["key"], r["status"], r["attempts"], r["error"], r["result"], r["workflow_id"])
        for r in stored
    ] == [
        ("u-1", "succeeded", 1, None, {"score": 1}, "wf-1"),
        ("u-2", "pending", 0, None, None, None),
        ("u-3", "pending", 0, None, None, None),
    ]
    # A new effect for each redriven item (a downstream would repeat the old answer).
    assert [r["effect_id"] for r in stored] == [
        effect_id_for(batch_id, "u-1"),
        effect_id_for(batch_id, "u-2", 1),
        effect_id_for(batch_id, "u-3", 1),
    ]
    assert effect_id_for(batch_id, "u-2", 1) != effect_id_for(batch_id, "u-2")
    assert stored[1]["payload"] == {"email": "b@example.com", "country": "FR"}

    # The next round hands out the new effect ids; a second redrive makes newer ones.
    [again] = await store.items.next_chunks(batch_id, 0, 10, 1)
    refs, _ = await store.items.begin_chunk(batch_id, again, "wf-2", lease=False)
    assert [(r.key, r.effect_id) for r in refs] == [
        ("u-2", effect_id_for(batch_id, "u-2", 1)),
        ("u-3", effect_id_for(batch_id, "u-3", 1)),
    ]
    await store.items.record_one(Outcome(refs[0].id, ItemStatus.FAILED, 1, "again"), None)
    await store.items.record_one(Outcome(refs[1].id, ItemStatus.SUCCEEDED, 1), {"score": 3})
    await store.items.close_batch(batch_id)
    assert await store.items.redrive(batch_id) == 1
    stored = {r["key"]: r for r in await all_items(store, batch_id)}
    assert stored["u-2"]["effect_id"] == effect_id_for(batch_id, "u-2", 2)
    assert (stored["u-3"]["status"], stored["u-3"]["result"]) == ("succeeded", {"score": 3})
    assert (await store.batches.get(batch_id)).redrives == 2


async def test_redrive_without_failed_items_changes_nothing(store: Store, batch_id: str) -> None:
    await upload(store, batch_id, csv_of(V1))
    [item] = await all_items(store, batch_id)
    await store.items.record_outcomes([Outcome(item["id"], ItemStatus.SUCCEEDED, 1)])
    await store.items.close_batch(batch_id)
    assert await store.items.redrive(batch_id) == 0
    batch = await store.batches.get(batch_id)
    assert (batch.status, batch.redrives) == (BatchStatus.COMPLETED, 0)
    with pytest.raises(BatchNotFoundError) as caught:
        await store.items.redrive("no-such-batch")
    assert str(caught.value) == "no batch 'no-such-batch'"
