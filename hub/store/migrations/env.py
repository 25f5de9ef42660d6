"""Alembic environment: the hub runs migrations through `hub.store.db` (at start-up, and `gridwatch hub migrate`).

Online: `hub.store.db.migrate()` passes a connection. Offline (`gridwatch hub migrate --sql`):
`hub.store.db.upgrade_sql()` passes the database URL, and the SQL is written out instead of run, for a DBA to
review and apply.
"""

from __future__ import annotations

from alembic import context

from hub.store.models import Base

config = context.config
if context.is_offline_mode():
    url = config.attributes.get("url")
    if url is None:
        raise RuntimeError("offline migrations go through hub.store.db.upgrade_sql(), which passes the URL")
    context.configure(url=url, target_metadata=Base.metadata, render_as_batch=True, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through hub.store.db.migrate(), which passes a connection")
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
with context.begin_transaction():
    context.run_migrations()
