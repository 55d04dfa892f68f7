"""An upload's items into its open transaction, a flush at a time, with the database
finding the duplicates: the unique key on (batch, key) leaves a repeated key out.

A flush is one statement into ``items``: SQLite, an ``executemany`` of plain
tuples; PostgreSQL, ``INSERT … SELECT … FROM unnest(…) ON CONFLICT DO NOTHING``
with the flush's columns as arrays, one round trip (``COPY`` into a staging
table, then the same ``INSERT … SELECT``, measured alike within the noise: the insert into
the table, its indexes and its foreign-key checks is the cost, not the
transfer). Its row count says whether any key was left out; only then is the
flush asked where each left-out key's item came from. SQLAlchemy's statement
machinery is bypassed on purpose: binding each row's parameters through it cost
more than SQLite's own work (py-spy; docs/performance.md, "Intake").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from fleetbatch.domain import ItemStatus, effect_id_for
from fleetbatch.intake import Accepted, Rejection
from fleetbatch.store.batches import now
from fleetbatch.store.tables import items

_COLUMNS = "batch_id, upload_id, line, key, payload, effect_id, status, attempts, updated_at"
_PENDING = ItemStatus.PENDING.value

_SQLITE_INSERT = (
    f"INSERT INTO items ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, '{_PENDING}', 0, ?) "
    "ON CONFLICT (batch_id, key) DO NOTHING"
)
# The flush's columns as arrays, one round trip: the database inserts while the
# caller reads the next flush. In line order, so of two rows with one key in a flush
# the first becomes the item.
_PG_INSERT = (
    f"INSERT INTO items ({_COLUMNS}) SELECT $1, $2, r.line, r.key, CAST(r.payload AS json), "
    f"r.effect_id, '{_PENDING}', 0, $3 FROM unnest($4::integer[], $5::varchar[], $6::text[], "
    "$7::varchar[]) AS r(line, key, payload, effect_id) ORDER BY r.line "
    "ON CONFLICT (batch_id, key) DO NOTHING"
)
# Inside an upload's transaction the planner's statistics still describe the table
# before it, so a join may read the whole batch by batch id: quadratic over a file.
# A LATERAL lookup with LIMIT 1 cannot be flattened into a join: one index probe per key.
_PG_LEFT_OUT = (
    "SELECT r.line, r.key, i.upload_id, i.line FROM unnest($3::integer[], $4::varchar[]) "
    "AS r(line, key) LEFT JOIN LATERAL (SELECT upload_id, line FROM items "
    "WHERE items.batch_id = $1 AND items.key = r.key LIMIT 1) AS i ON true "
    "WHERE i.upload_id IS NULL OR i.upload_id <> $2 OR i.line <> r.line"
)


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row left out because its batch has its key: where that item's row was
    (``upload_id`` 0 and ``line`` 0: a concurrent upload, not committed yet, has it)."""

    line: int
    key: str
    upload_id: int
    first_line: int


def _payload(row: Accepted) -> str | None:
    # As the JSON column stores it (none_as_null): a row without a payload is NULL.
    return None if row.payload is None else json.dumps(row.payload)


_REJECTION_COLUMNS = ("batch_id", "upload_id", "line", "value", "reason")
_SQLITE_REJECT = f"INSERT INTO rejections ({', '.join(_REJECTION_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"


class ItemIntake:
    """Inserts one upload's rows: accepted ones as pending items, refused ones as its
    rejections."""

    def __init__(self, conn: AsyncConnection, batch_id: str, upload_id: int) -> None:
        self._conn = conn
        self._batch_id = batch_id
        self._upload_id = upload_id
        self._postgresql = conn.dialect.name == "postgresql"
        # A timestamp as SQLAlchemy writes it for this dialect (SQLite: its own text form).
        stamp = items.c.updated_at.type.dialect_impl(conn.dialect)
        bind = stamp.bind_processor(conn.dialect)
        self._stamp: Callable[[datetime], Any] = bind if bind is not None else (lambda v: v)

    async def add(self, rows: Sequence[Accepted]) -> tuple[int, list[Duplicate]]:
        """Insert ``rows`` (in line order) inside the caller's transaction.

        Returns:
            How many were inserted, and the rows left out (a key the batch has from an
            earlier file, an earlier row, or a concurrent upload), in line order.
        """
        if not rows:
            return 0, []
        if self._postgresql:
            inserted = await self._add_postgresql(rows)
        else:
            inserted = await self._add_sqlite(rows)
        if inserted == len(rows):
            return inserted, []
        return inserted, sorted(await self._left_out(rows), key=lambda d: d.line)

    async def add_rejections(self, rows: Sequence[Rejection]) -> None:
        """Store refused rows (PostgreSQL: by ``COPY``; nothing can conflict)."""
        if not rows:
            return
        records = [
            (self._batch_id, self._upload_id, r.line, r.value[:100], r.reason[:200]) for r in rows
        ]
        if self._postgresql:
            driver = await self._driver()
            await driver.copy_records_to_table(
                "rejections", records=records, columns=_REJECTION_COLUMNS
            )
        else:
            await self._conn.exec_driver_sql(_SQLITE_REJECT, records)

    async def _left_out(self, rows: Sequence[Accepted]) -> list[Duplicate]:
        """The rows of the last flush that are not an item, and where each key's item
        came from: asked only when the insert left rows out."""
        if self._postgresql:
            return await self._left_out_postgresql(rows)
        return await self._left_out_sqlite(rows)

    async def _add_sqlite(self, rows: Sequence[Accepted]) -> int:
        batch_id, upload_id = self._batch_id, self._upload_id
        stamp = self._stamp(now())
        result = await self._conn.exec_driver_sql(
            _SQLITE_INSERT,
            [
                (
                    batch_id,
                    upload_id,
                    row.line,
                    row.key,
                    _payload(row),
                    effect_id_for(batch_id, row.key),
                    stamp,
                )
                for row in rows
            ],
        )
        return int(result.rowcount)

    async def _left_out_sqlite(self, rows: Sequence[Accepted]) -> list[Duplicate]:
        keys = list({row.key: None for row in rows})
        marks = ", ".join("?" * len(keys))
        found = await self._conn.exec_driver_sql(
            f"SELECT key, upload_id, line FROM items WHERE batch_id = ? AND key IN ({marks})",
            (self._batch_id, *keys),
        )
        where = {r.key: (r.upload_id, r.line) for r in found}
        left_out = []
        for row in rows:
            upload_id, line = where.get(row.key, (0, 0))
            if (upload_id, line) != (self._upload_id, row.line):
                left_out.append(Duplicate(row.line, row.key, upload_id, line))
        return left_out

    async def _driver(self) -> Any:
        """The asyncpg connection under the transaction (the upload row was written
        through SQLAlchemy before, so its adapter has begun the transaction)."""
        raw = await self._conn.get_raw_connection()
        return raw.driver_connection

    async def _add_postgresql(self, rows: Sequence[Accepted]) -> int:
        batch_id = self._batch_id
        driver = await self._driver()
        status = await driver.execute(
            _PG_INSERT,
            batch_id,
            self._upload_id,
            now(),
            [row.line for row in rows],
            [row.key for row in rows],
            [_payload(row) for row in rows],
            [effect_id_for(batch_id, row.key) for row in rows],
        )
        return int(status.rsplit(" ", 1)[1])  # "INSERT 0 <rows>"

    async def _left_out_postgresql(self, rows: Sequence[Accepted]) -> list[Duplicate]:
        driver = await self._driver()
        found = await driver.fetch(
            _PG_LEFT_OUT,
            self._batch_id,
            self._upload_id,
            [row.line for row in rows],
            [row.key for row in rows],
        )
        return [Duplicate(r[0], r[1], r[2] or 0, r[3] or 0) for r in found]
