"""Batches, uploads, items and rejections.

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
        sa.Column("command", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("chunk_size", sa.Integer, nullable=False),
        sa.Column("max_in_flight", sa.Integer, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.Column("finished_at", Stamp),
        sa.Column("summary", sa.JSON),
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
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("command_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("workflow_id", sa.String(200)),
        sa.Column("updated_at", Stamp, nullable=False),
        sa.UniqueConstraint("batch_id", "vin", name="uq_items_batch_vin"),
    )
    op.create_index("ix_items_batch_status_id", "items", ["batch_id", "status", "id"])
    op.create_index("ix_items_vin", "items", ["vin"])
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


def downgrade() -> None:
    op.drop_table("rejections")
    op.drop_table("items")
    op.drop_table("uploads")
    op.drop_table("batches")
