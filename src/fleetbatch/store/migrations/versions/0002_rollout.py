"""A batch's rollout: its waves, gates and approvals (``domain.rollout.Rollout``).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("rollout", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("rollout")
