"""The schema. Migrations in ``migrations/versions`` create exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, also on SQLite (which drops zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pipeline", String(64), nullable=False),
    Column("label", String(64), nullable=False),
    Column("options", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("chunk_size", Integer, nullable=False),
    Column("max_in_flight", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime()),
    Column("summary", JSON),
    Column("priority", Float, nullable=False, server_default="1"),
    Column("max_failures", String(16)),
    Column("redrives", Integer, nullable=False, server_default="0"),
    Column("stop_requested_at", UtcDateTime()),
    Column("last_published_at", UtcDateTime()),
    Column("rollout", JSON(none_as_null=True)),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), ForeignKey("batches.id"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), ForeignKey("batches.id"), nullable=False),
    Column("upload_id", Id, ForeignKey("uploads.id"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("key", String(200), nullable=False),
    Column("payload", JSON(none_as_null=True)),
    Column("effect_id", String(36), nullable=False),
    Column("status", String(24), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("error", Text),
    Column("result", JSON(none_as_null=True)),
    Column("workflow_id", String(200)),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("batch_id", "key", name="uq_items_batch_key"),
    Index("ix_items_batch_status_id", "batch_id", "status", "id"),
    Index("ix_items_key", "key"),
)
"""A batch's items: the key (a user id, …), the row's other fields as
``payload``, the status, attempts, the error and the step's ``result``."""

item_attempts = Table(
    "item_attempts",
    metadata,
    Column("item_id", Id, ForeignKey("items.id"), primary_key=True, autoincrement=False),
    Column("effect_id", String(36), primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("published_at", UtcDateTime(), nullable=False),
    Column("answered_at", UtcDateTime()),
    Column("outcome", Text),
)
"""Each publish of an item's effect: its attempt number under one effect id (a
redrive starts again at 1 under a new one), when it went out, when the answer came
and what the attempt came to (``succeeded``, ``failed: …``, ``timed out after 30s``,
``cancelled: …``); no outcome yet while the attempt waits."""

batch_counts = Table(
    "batch_counts",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("status", String(24), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""A batch's items by status, changed in the transactions that change the items
(``store.counts``): always adding up to the batch's items."""

batch_timeline = Table(
    "batch_timeline",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("status", String(24), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""Items that reached a terminal status, by batch, 10-second bucket (Unix seconds
at its start) and status: the completions chart and the recent rate."""

rejections = Table(
    "rejections",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("batch_id", String(64), ForeignKey("batches.id"), nullable=False),
    Column("upload_id", Id, ForeignKey("uploads.id"), nullable=False, index=True),
    Column("line", Integer, nullable=False),
    Column("value", String(100), nullable=False),
    Column("reason", String(200), nullable=False),
)

item_leases = Table(
    "item_leases",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("batch_id", String(64), nullable=False, index=True),
    Column("holder", String(200), nullable=False, index=True),
    Column("acquired_at", UtcDateTime(), nullable=False),
)
"""Which chunk workflow works on an item key now: at most one, across every batch
(for pipelines whose effects on one key must not overlap)."""

breakers = Table(
    "breakers",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("window_started_at", UtcDateTime(), nullable=False),
    Column("successes", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("opened_at", UtcDateTime()),
    Column("probe", String(200)),
    Column("updated_at", UtcDateTime(), nullable=False),
)
"""One circuit breaker per key (what a pipeline protects), shared by every worker."""

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subject", String(255), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("error", Text, nullable=False),
    Column("deliveries", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("replayed_at", UtcDateTime()),
)
"""Bus messages no handler could process within the bus's delivery limit."""

orphan_responses = Table(
    "orphan_responses",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("effect_id", String(36), nullable=False),
    Column("workflow_id", String(200), nullable=False),
    Column("batch_id", String(64), nullable=False, index=True),
    Column("item_key", String(200), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Column("received_at", UtcDateTime(), nullable=False),
    UniqueConstraint("effect_id", "workflow_id", name="uq_orphan_responses_effect"),
)
"""Answers (a domain's response to an effect) that arrived when their chunk
workflow was gone or finished."""
