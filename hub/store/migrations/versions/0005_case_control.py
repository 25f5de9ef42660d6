"""case control (issue 13, first part): the escalation clock apart from the stage clock, the backup grid a
case was offered to, the repeat link, who reported the result

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("level_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("backup", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("repeat_of", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("reopened", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("resolved_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for col in ("resolved_by", "reopened", "repeat_of", "backup", "level_started_at"):
            batch.drop_column(col)
