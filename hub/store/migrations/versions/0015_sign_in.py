"""signing in (issue 30): two-factor (TOTP) and recovery codes, password age, removed accounts, sessions
held in a cookie with an idle timeout (also for a key signed in on the board), keys bound to source addresses

`user_sessions` gains a key's name (a session may stand for a key typed into the board), when it was last used
and what it is limited to; the sessions themselves are kept.

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


def _sessions() -> sa.Table:
    """user_sessions as revision 0006 made it: SQLite's batch mode copies the table, and `hub migrate --sql` (no
    database to reflect) needs to be told what it looks like."""
    return sa.Table(
        "user_sessions", sa.MetaData(),
        sa.Column("token_hash", sa.String(length=80), primary_key=True),
        sa.Column("username", sa.String(length=64), sa.ForeignKey("users.username"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_user_sessions_username", "username"))


def upgrade() -> None:
    with op.batch_alter_table("user_sessions", copy_from=_sessions()) as batch:  # sessions kept
        batch.alter_column("username", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("key_name", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("limited", sa.String(length=16), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.String(512), nullable=True))  # sealed (hub.store.datakey)
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
    op.execute("DELETE FROM user_sessions WHERE username IS NULL")  # a key's board sessions: none before
    with op.batch_alter_table("user_sessions") as batch:
        for c in ("limited", "last_seen", "key_name"):
            batch.drop_column(c)
        batch.alter_column("username", existing_type=sa.String(64), nullable=False)
