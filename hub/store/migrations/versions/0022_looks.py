"""视频复核 (issue 41): the camera (and preset) that covers a device, and the looks asked of cameras for cases

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("camera", sa.String(64), nullable=True))
        batch.add_column(sa.Column("preset", sa.Integer, nullable=True))
    op.create_table(
        "looks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), nullable=False, index=True),
        sa.Column("camera", sa.String(64), nullable=False, index=True),
        sa.Column("preset", sa.Integer, nullable=True),
        sa.Column("sensor", sa.String(64), nullable=True),
        sa.Column("asked_by", sa.String(128), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("looks")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("preset")
        batch.drop_column("camera")
