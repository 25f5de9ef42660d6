"""fleet: the device registry, rule versions and deploys, agents' heartbeats, maintenance windows and the
alerts they hold; cases carry the device's place

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("place", sa.JSON(), nullable=True))
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grid", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("vendor", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("feed", sa.String(64), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
    )
    op.create_table(
        "rule_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("rules", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
    )
    op.create_table(
        "rule_deploys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer(), sa.ForeignKey("rule_versions.version"), nullable=False),
        sa.Column("grids", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", STAMP, nullable=False),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("grids", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=True),
        sa.Column("rule_hash", sa.String(64), nullable=False),
        sa.Column("broker", sa.String(16), nullable=False),
        sa.Column("outbox_depth", sa.Integer(), nullable=False),
        sa.Column("oldest_unsent", STAMP, nullable=True),
        sa.Column("dropped_frames", sa.BigInteger(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("started_at", STAMP, nullable=True),
        sa.Column("last_seen", STAMP, nullable=False),
        sa.Column("offline_since", STAMP, nullable=True),
        sa.Column("problem", sa.Text(), nullable=False),
    )
    op.create_table(
        "maintenance",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("starts_at", STAMP, nullable=False),
        sa.Column("ends_at", STAMP, nullable=True),
        sa.Column("recurrence", sa.JSON(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", STAMP, nullable=False),
        sa.Column("cancelled_at", STAMP, nullable=True),
    )
    op.create_table(
        "held_alerts",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("window_id", sa.Integer(), sa.ForeignKey("maintenance.id"), nullable=False, index=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", STAMP, nullable=False),
        sa.Column("resolved", sa.JSON(), nullable=True),
        sa.Column("released_at", STAMP, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
    )
    with op.batch_alter_table("held_alerts") as batch:
        batch.create_index("ix_held_alerts_pending", ["released_at"], unique=False,
                           postgresql_where=sa.text("released_at IS NULL"),
                           sqlite_where=sa.text("released_at IS NULL"))


def downgrade() -> None:
    for t in ("held_alerts", "maintenance", "agents", "rule_deploys", "rule_versions", "devices"):
        op.drop_table(t)
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("place")
