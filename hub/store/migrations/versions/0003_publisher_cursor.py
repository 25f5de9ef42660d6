"""cursors: how far a once-per-deployment reader of the timeline got (the MQTT case-event publisher)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("cursors",
                    sa.Column("name", sa.String(length=64), primary_key=True),
                    sa.Column("last_id", sa.BigInteger(), nullable=False))


def downgrade() -> None:
    op.drop_table("cursors")
