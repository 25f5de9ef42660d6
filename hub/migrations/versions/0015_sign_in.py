"""signing in (issue 30): two-factor (TOTP) and recovery codes, password age, removed accounts, sessions
held in a cookie with an idle timeout (also for a key signed in on the board), keys bound to source addresses

`user_sessions` is made anew (a session may now stand for a key, and it records when it was last used):
whoever was signed in signs in again after the upgrade.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _sessions(new: bool) -> None:
    more: list[sa.Column[object]] = [
        sa.Column("key_name", sa.String(length=64), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("limited", sa.String(length=16), nullable=True)] if new else []
    op.create_table(
        "user_sessions",
        sa.Column("token_hash", sa.String(length=80), primary_key=True),
        sa.Column("username", sa.String(length=64), sa.ForeignKey("users.username"), nullable=new),
        *more,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_user_sessions_username", "user_sessions", ["username"])


def upgrade() -> None:
    op.drop_index("ix_user_sessions_username", "user_sessions")
    op.drop_table("user_sessions")
    _sessions(new=True)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(512), nullable=True))  # sealed (hub.datakey)
        batch.add_column(sa.Column("totp_pending", sa.String(512), nullable=True))  # enrolment begun, not confirmed
        batch.add_column(sa.Column("totp_step", sa.BigInteger(), nullable=True))  # the last time step used
        batch.add_column(sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("sources", sa.JSON(), nullable=True))
    op.create_table(
        "recovery_codes",
        sa.Column("hash", sa.String(length=80), primary_key=True),
        sa.Column("username", sa.String(length=64), sa.ForeignKey("users.username"), nullable=False, index=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("recovery_codes")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("sources")
    with op.batch_alter_table("users") as batch:
        for c in ("removed_at", "password_changed_at", "totp_step", "totp_pending", "totp_secret"):
            batch.drop_column(c)
    op.drop_index("ix_user_sessions_username", "user_sessions")
    op.drop_table("user_sessions")
    _sessions(new=False)
