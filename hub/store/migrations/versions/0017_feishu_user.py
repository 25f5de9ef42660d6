"""contacts carry a Feishu user id (`feishu_user`: the open_id or user_id a Feishu robot's `post` message @s,
issue 38), sealed at rest like the other contact points

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("feishu_user", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("feishu_user")
