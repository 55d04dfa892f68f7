"""The bus's leftovers: dead letters (never processed) and orphan responses (no one waiting).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

Stamp = sa.DateTime(timezone=True)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
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
        sa.Column("command_id", sa.String(36), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("received_at", Stamp, nullable=False),
        sa.UniqueConstraint("command_id", "workflow_id", name="uq_orphan_responses_command"),
    )
    op.create_index("ix_orphan_responses_batch_id", "orphan_responses", ["batch_id"])


def downgrade() -> None:
    op.drop_table("orphan_responses")
    op.drop_table("dead_letters")
