"""notices record the message they went in (`message`: the first notice id of that message), so a new leader
rebuilds each channel's per-minute window from the messages sent, not from the distinct send times (every
message of one send round shares its time: a round of 19 counted as one, issue 38)

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("message", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("message")
