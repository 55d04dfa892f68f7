"""The schema of 0.2.0: batches, uploads, items and their attempts, rejections,
leases, breakers, the bus's dead letters, late answers, and each batch's counts by
status and timeline.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("max_in_flight", sa.Integer, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.Column("finished_at", Stamp),
        sa.Column("summary", sa.JSON),
        sa.Column("priority", sa.Float, nullable=False, server_default="1"),
        sa.Column("max_failures", sa.String(16)),
        sa.Column("redrives", sa.Integer, nullable=False, server_default="0"),
        sa.Column("stop_requested_at", Stamp),
        sa.Column("last_published_at", Stamp),
        sa.Column("rollout", sa.JSON),
    )
    op.create_table(
        "uploads",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_index("ix_uploads_batch_id", "uploads", ["batch_id"])
    op.create_table(
        "items",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("upload_id", Id, sa.ForeignKey("uploads.id"), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON),
        sa.Column("effect_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("result", sa.JSON),
        sa.Column("workflow_id", sa.String(200)),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.UniqueConstraint("batch_id", "key", name="uq_items_batch_key"),
    )
    op.create_index("ix_items_batch_status_id", "items", ["batch_id", "status", "id"])
    op.create_index("ix_items_key", "items", ["key"])
    op.create_table(
        "item_attempts",
        sa.Column("item_id", Id, sa.ForeignKey("items.id"), primary_key=True, autoincrement=False),
        sa.Column("effect_id", sa.String(36), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("published_at", Stamp, nullable=False),
        sa.Column("answered_at", Stamp),
        sa.Column("outcome", sa.Text),
    )
    op.create_table(
        "rejections",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("upload_id", Id, sa.ForeignKey("uploads.id"), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_index("ix_rejections_upload_id", "rejections", ["upload_id"])
    op.create_table(
        "item_leases",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", Stamp, nullable=False),
    )
    op.create_index("ix_item_leases_holder", "item_leases", ["holder"])
    op.create_index("ix_item_leases_batch_id", "item_leases", ["batch_id"])
    op.create_table(
        "breakers",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("window_started_at", Stamp, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened_at", Stamp),
        sa.Column("probe", sa.String(200)),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("replayed_at", Stamp),
    )
    op.create_table(
        "orphan_responses",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("effect_id", sa.String(36), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("item_key", sa.String(200), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("received_at", Stamp, nullable=False),
        sa.UniqueConstraint("effect_id", "workflow_id", name="uq_orphan_responses_effect"),
    )
    op.create_index("ix_orphan_responses_batch_id", "orphan_responses", ["batch_id"])
    op.create_table(
        "batch_counts",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(24), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_table(
        "batch_timeline",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("bucket", sa.BigInteger, primary_key=True),
        sa.Column("status", sa.String(24), primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "batch_timeline",
        "batch_counts",
        "orphan_responses",
        "dead_letters",
        "breakers",
        "item_leases",
        "rejections",
        "item_attempts",
        "items",
        "uploads",
        "batches",
    ):
        op.drop_table(table)
