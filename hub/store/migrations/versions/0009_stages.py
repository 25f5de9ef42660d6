"""the stage model of issue 13: 派单 by hand, 核查 passed or failed, 回访 with its rating; joint handling
(协办) parts; the assessment's covering index gains the rating (satisfaction %)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD = ["owner", "opened_at", "accept_s", "accept_late", "resolve_s", "resolve_late", "extensions", "escalations",
       "reopened", "repeat_of", "closed_at", "supervisions"]


def upgrade() -> None:
    op.drop_index("ix_cases_assessment", "cases")
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rejections", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rating", sa.String(16), nullable=True))
        batch.add_column(sa.Column("assist", sa.JSON(), nullable=True))
    op.create_index("ix_cases_assessment", "cases", [*OLD, "rating"])
    op.create_table(
        "case_parts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(32), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_by", sa.String(128), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_by", sa.String(128), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_index("ix_case_parts_case_id", "case_parts", ["case_id"])
    op.create_index("ix_case_parts_unit", "case_parts", ["unit"])


def downgrade() -> None:
    op.drop_table("case_parts")
    op.drop_index("ix_cases_assessment", "cases")
    with op.batch_alter_table("cases") as batch:
        for col in ("assist", "rating", "rejections", "verified_at", "dispatched_at"):
            batch.drop_column(col)
    op.create_index("ix_cases_assessment", "cases", OLD)
