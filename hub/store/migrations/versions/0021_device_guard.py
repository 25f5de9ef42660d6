"""布防/撤防 (issue 41): what the hub asked of a device (armed, disarmed) and what its gateway heard it confirm

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("guard", sa.String(16), nullable=True))
        batch.add_column(sa.Column("guard_reported", sa.String(16), nullable=True))
        batch.add_column(sa.Column("guard_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("guard_at")
        batch.drop_column("guard_reported")
        batch.drop_column("guard")
