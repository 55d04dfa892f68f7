"""An item's attempts: each publish of its effect, what answered it and when.

Written in the transactions and activities that already do the I/O, in bulk: the
publish activity records a round's attempts in one statement once the bus has
them; the outcomes' write closes them in its own transaction. Both are idempotent:
a retried publish keeps the first time, and an attempt's outcome is written once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from fleetbatch.domain import ItemStatus, Outcome
from fleetbatch.errors import BatchNotFoundError, ItemNotFoundError
from fleetbatch.store.batches import now
from fleetbatch.store.db import insert_ignoring_conflicts, transaction
from fleetbatch.store.tables import UtcDateTime, batches, item_attempts, items

# The attempts of the item's current effect: a redrive's new effect id leaves the
# attempts of the earlier ones as they were.
_CURRENT_EFFECT = item_attempts.c.effect_id == (
    select(items.c.effect_id).where(items.c.id == item_attempts.c.item_id).scalar_subquery()
)
_OPEN = item_attempts.c.outcome.is_(None)
_CLOSE_LAST = (
    update(item_attempts)
    .where(
        item_attempts.c.item_id.in_(bindparam("close_ids", expanding=True)),
        item_attempts.c.attempt == bindparam("close_attempt"),
        _CURRENT_EFFECT,
        _OPEN,
    )
    .values(answered_at=bindparam("close_answered_at"), outcome=bindparam("close_outcome"))
)
_CLOSE_EARLIER = (
    update(item_attempts)
    .where(
        item_attempts.c.item_id.in_(bindparam("close_ids", expanding=True)),
        item_attempts.c.attempt < bindparam("close_last"),
        _CURRENT_EFFECT,
        _OPEN,
    )
    .values(outcome=bindparam("close_outcome"))
)

# The publishes' rows from the items themselves: one parameter per item (its id), and
# the attempt and time once. (An executemany of rows cost ~0.1 ms a row on SQLite,
# in SQLAlchemy's per-row parameter processing: 10 ms a chunk of 100.)
_PUBLISHED_ROWS = select(
    items.c.id,
    items.c.effect_id,
    bindparam("publish_attempt", type_=Integer),
    bindparam("publish_stamp", type_=UtcDateTime()),
).where(items.c.id.in_(bindparam("publish_ids", expanding=True)))
_PUBLISHED_COLUMNS = ["item_id", "effect_id", "attempt", "published_at"]
_RECORD_PUBLISHED: dict[str, Any] = {}
"""The insert of ``_PUBLISHED_ROWS``, ignoring rows recorded before, per dialect."""


@dataclass(frozen=True)
class Attempt:
    """One publish of an item's effect."""

    attempt: int
    effect_id: str
    published_at: datetime
    answered_at: datetime | None
    outcome: str | None
    """``succeeded``, ``failed: …``, ``timed out after 30s``, ``cancelled: …``; None
    while the attempt waits for its answer."""


@dataclass(frozen=True)
class ItemHistory:
    """An item's row (every column of ``items``) and its attempts, oldest first."""

    item: dict[str, Any]
    attempts: list[Attempt]


def last_attempt_outcome(outcome: Outcome) -> str:
    """What an item's last attempt came to, given the item's final state."""
    timeout = outcome.attempt_timeout
    unanswered = outcome.answered_at is None and outcome.status == ItemStatus.FAILED
    if unanswered and timeout is not None:
        return timed_out(timeout)
    if outcome.status == ItemStatus.SUCCEEDED or not outcome.error:
        return outcome.status.value
    return f"{outcome.status.value}: {outcome.error}"


def timed_out(seconds: float) -> str:
    """The outcome of an attempt nothing answered within ``seconds``."""
    return f"timed out after {seconds:g}s"


def _utc(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


def close_attempts(conn: Connection, outcomes: Sequence[Outcome]) -> None:
    """Write what the attempts of items reaching ``outcomes`` came to, inside the
    caller's (the outcomes') transaction: the last attempt of each (its answer and
    when), and ``timed out after Ns`` for the ones before it. An attempt closed
    already is left alone, so a repeated write changes nothing.

    One statement per distinct (attempt, outcome, answer time) of the last attempts —
    a chunk's answers arrive in a few signals, and the ones a workflow task handles
    share its time, so a chunk of 100 takes a handful — and one per distinct timeout
    for the earlier attempts, usually none or one.
    """
    last: defaultdict[tuple[int, str, float | None], list[int]] = defaultdict(list)
    earlier: defaultdict[tuple[float, int], list[int]] = defaultdict(list)
    for o in outcomes:
        if o.attempts < 1:
            continue
        last[(o.attempts, last_attempt_outcome(o), o.answered_at)].append(o.item_id)
        if o.attempts > 1 and o.attempt_timeout is not None:
            earlier[(o.attempt_timeout, o.attempts)].append(o.item_id)
    for (attempt, outcome, answered), ids in last.items():
        conn.execute(
            _CLOSE_LAST,
            {
                "close_ids": ids,
                "close_attempt": attempt,
                "close_answered_at": _utc(answered),
                "close_outcome": outcome,
            },
        )
    for (seconds, attempts), ids in earlier.items():
        conn.execute(
            _CLOSE_EARLIER,
            {"close_ids": ids, "close_last": attempts, "close_outcome": timed_out(seconds)},
        )


def fail_open_attempts(conn: Connection, in_flight: ColumnElement[bool], reason: str) -> None:
    """Inside the caller's transaction, before it fails the in-flight items that
    ``in_flight`` selects (from ``items``) with ``reason``: their attempts still
    waiting end ``failed: <reason>``, not waiting for ever."""
    conn.execute(
        update(item_attempts)
        .where(
            item_attempts.c.item_id.in_(
                select(items.c.id).where(in_flight, items.c.status == ItemStatus.IN_FLIGHT.value)
            ),
            _CURRENT_EFFECT,
            _OPEN,
        )
        .values(outcome=f"{ItemStatus.FAILED.value}: {reason}")
    )


class AttemptRepository:
    """Records and reads items' attempts."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def published(self, item_ids: Sequence[int], attempt: int) -> None:
        """Attempt ``attempt`` of each item went out now under its current effect id, in
        one statement; an attempt recorded before (a retried publish) keeps its first time."""
        if not item_ids:
            return
        params = {"publish_ids": list(item_ids), "publish_attempt": attempt, "publish_stamp": now()}
        await transaction(self._engine, self._record_published, params)

    @staticmethod
    def _record_published(conn: Connection, params: dict[str, Any]) -> None:
        dialect = conn.dialect.name
        if dialect not in _RECORD_PUBLISHED:
            insert = insert_ignoring_conflicts(conn, item_attempts)
            _RECORD_PUBLISHED[dialect] = insert.from_select(_PUBLISHED_COLUMNS, _PUBLISHED_ROWS)
        conn.execute(_RECORD_PUBLISHED[dialect], params)

    async def for_item(self, batch_id: str, key: str) -> ItemHistory:
        """The batch's item ``key`` (as stored: normalise it first) with its attempts in
        the order they went out.

        Raises:
            BatchNotFoundError: no such batch.
            ItemNotFoundError: the batch has no item ``key``.
        """
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(items).where(items.c.batch_id == batch_id, items.c.key == key)
                )
            ).first()
            if row is None:
                known = await conn.scalar(select(batches.c.id).where(batches.c.id == batch_id))
                if known is None:
                    raise BatchNotFoundError(f"no batch {batch_id!r}")
                raise ItemNotFoundError(f"batch {batch_id!r} has no item {key!r}")
            found = await conn.execute(
                select(item_attempts)
                .where(item_attempts.c.item_id == row.id)
                .order_by(item_attempts.c.published_at, item_attempts.c.attempt)
            )
            attempts = [
                Attempt(a.attempt, a.effect_id, a.published_at, a.answered_at, a.outcome)
                for a in found
            ]
        return ItemHistory(dict(row._mapping), attempts)
