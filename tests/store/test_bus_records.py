"""Dead letters and orphan responses in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

from fleetbatch.store import Orphan, Store


async def test_dead_letters_are_kept_listed_and_marked_replayed(store: Store) -> None:
    subject = f"fleetbatch.commands.vehicle.t{uuid.uuid4().hex[:8]}"
    await store.dead_letters.add(subject, b"\x00bad", "ValueError: no", 5)
    await store.dead_letters.add(subject, b"second", "KeyError: 'vin'", 6)
    mine = [d for d in await store.dead_letters.list(limit=10_000) if d.subject == subject]
    assert [(d.payload, d.error, d.deliveries) for d in mine] == [
        (b"\x00bad", "ValueError: no", 5),
        (b"second", "KeyError: 'vin'", 6),
    ]
    assert all(d.replayed_at is None and d.created_at.tzinfo is not None for d in mine)

    await store.dead_letters.mark_replayed([mine[0].id])
    assert [d.id for d in await store.dead_letters.list(ids=[d.id for d in mine])] == [mine[1].id]
    both = await store.dead_letters.list(ids=[d.id for d in mine], include_replayed=True)
    assert both[0].replayed_at is not None and both[1].replayed_at is None


async def test_orphans_are_recorded_once_per_effect_and_workflow(store: Store) -> None:
    batch = f"b-{uuid.uuid4().hex[:12]}"
    first = Orphan("c-1", "chunk-1", batch, "WDB00000000000001", True, None)
    failed = Orphan("c-2", "chunk-1", batch, "WDB00000000000002", False, "vehicle unreachable")
    await store.orphans.add([first, failed, first])
    await store.orphans.add([first])
    rows = await store.orphans.list(batch)
    assert [(o.effect_id, o.item_key, o.ok, o.error) for o in rows] == [
        ("c-1", "WDB00000000000001", True, None),
        ("c-2", "WDB00000000000002", False, "vehicle unreachable"),
    ]
    assert all(o.received_at is not None for o in rows)
    assert await store.orphans.list("no-such-batch") == []
