"""audit records name the keyed hash that chains them (`mac`: hmac-sha256/<key id> or hmac-sm3/<key id>; null
for the plain SHA-256 records written before, issue 42); `key_checks`: a value sealed with the data key, so a
hub given another key refuses to start

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("mac", sa.String(32), nullable=True))
    op.create_table("key_checks", sa.Column("name", sa.String(32), primary_key=True),
                    sa.Column("value", sa.String(512), nullable=False))


def downgrade() -> None:
    op.drop_table("key_checks")
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("mac")
