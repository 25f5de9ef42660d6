"""Alembic environment: the hub runs migrations at start-up through `hub.db.migrate()`."""

from __future__ import annotations

from alembic import context

from hub.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through hub.db.migrate(), which passes a connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
