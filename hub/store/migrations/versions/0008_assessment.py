"""assessment (考核): each stage's working time and lateness fixed when it ends; 督办 orders counted; a
covering index for the assessment, in owner order

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
        batch.add_column(sa.Column("supervisions", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_cases_assessment", "cases", ["owner", "opened_at", "accept_s", "accept_late", "resolve_s",
                                                     "resolve_late", "extensions", "escalations", "reopened",
                                                     "repeat_of", "closed_at", "supervisions"])


def downgrade() -> None:
    op.drop_index("ix_cases_assessment", "cases")
    with op.batch_alter_table("cases") as batch:
        for col in ("supervisions", "resolve_late", "resolve_s", "accept_late", "accept_s"):
            batch.drop_column(col)
