"""personal data sealed at rest (issue 30): contact point columns wide enough for Fernet tokens

The values themselves are sealed by the hub at its next start (`People.seal_contacts`): a migration has no key.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMNS = {"mobile": 32, "email": 254, "wecom_user": 64, "dingtalk_mobile": 32}


def contacts(widths: dict[str, int]) -> sa.Table:
    """The contacts table as revision 0010 made it, with these widths: SQLite's batch mode copies the table,
    and `hub migrate --sql` (no database to reflect) needs to be told what it looks like."""
    return sa.Table(
        "contacts", sa.MetaData(),
        sa.Column("username", sa.String(64), sa.ForeignKey("users.username"), primary_key=True),
        *(sa.Column(name, sa.String(width), nullable=True) for name, width in widths.items()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False))


def upgrade() -> None:
    with op.batch_alter_table("contacts", copy_from=contacts(COLUMNS)) as batch:
        for name, old in COLUMNS.items():
            batch.alter_column(name, type_=sa.String(512), existing_type=sa.String(old), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("contacts", copy_from=contacts(dict.fromkeys(COLUMNS, 512))) as batch:
        for name, old in COLUMNS.items():
            batch.alter_column(name, type_=sa.String(old), existing_type=sa.String(512), existing_nullable=True)
