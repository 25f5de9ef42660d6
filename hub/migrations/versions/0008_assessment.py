"""assessment (考核): each stage's working time and lateness fixed when it ends; cases by opening time and owner

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("accept_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("accept_late", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("resolve_s", sa.Float(), nullable=True))
        batch.add_column(sa.Column("resolve_late", sa.Boolean(), nullable=True))
    op.create_index("ix_cases_opened_owner", "cases", ["opened_at", "owner"])


def downgrade() -> None:
    op.drop_index("ix_cases_opened_owner", "cases")
    with op.batch_alter_table("cases") as batch:
        for col in ("resolve_late", "resolve_s", "accept_late", "accept_s"):
            batch.drop_column(col)
