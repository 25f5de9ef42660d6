"""one-time sign-in codes by SMS (issue 42): the second factor of a person with a mobile number and no
authenticator app; only a salted hash of the code is kept, with its expiry, when it was sent and the tries

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("sms_code", sa.String(128), nullable=True))
        batch.add_column(sa.Column("sms_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sms_tries", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("sms_tries")
        batch.drop_column("sms_sent_at")
        batch.drop_column("sms_code")
