"""Batch control: priority, tolerated failures and redrives; VIN leases; circuit breakers.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

Stamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("priority", sa.Float, nullable=False, server_default="1"))
        batch.add_column(sa.Column("max_failures", sa.String(16)))
        batch.add_column(sa.Column("redrives", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "vin_leases",
        sa.Column("vin", sa.String(17), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", Stamp, nullable=False),
    )
    op.create_index("ix_vin_leases_holder", "vin_leases", ["holder"])
    op.create_index("ix_vin_leases_batch_id", "vin_leases", ["batch_id"])
    op.create_table(
        "breakers",
        sa.Column("command", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("window_started_at", Stamp, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened_at", Stamp),
        sa.Column("probe", sa.String(200)),
        sa.Column("updated_at", Stamp, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("breakers")
    op.drop_table("vin_leases")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("redrives")
        batch.drop_column("max_failures")
        batch.drop_column("priority")
