"""Engines and migrations: SQLite (WAL) by default, PostgreSQL by URL; schema by Alembic at start-up and by
`gridwatch hub migrate` (upgrade, the SQL of it, the current revision)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _json(value: Any) -> str:
    """JSON columns keep Chinese as written (not \\u escapes), so a search for 西门 finds the place."""
    return json.dumps(value, ensure_ascii=False)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)  # e.g. var/ on a fresh clone
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               json_serializer=_json)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    # a lock awaited for a minute means something holds it that never lets go (a bug): the waiting request
    # fails (503, retry) and names the statement, instead of the hub hanging on it for ever
    return create_engine(url, pool_pre_ping=True, json_serializer=_json,
                         connect_args={"options": "-c lock_timeout=60s"})


def libpq_conninfo(engine: Engine) -> str:
    """The engine's connection for a raw psycopg connection (LISTEN, session advisory locks), as libpq's
    key=value string made from what SQLAlchemy's dialect passes psycopg: so a multi-host URL (a primary and its
    standby, `?host=a:5432&host=b:5432&target_session_attrs=read-write`) reaches the same primary."""
    from psycopg.conninfo import make_conninfo

    _, kwargs = engine.dialect.create_connect_args(engine.url)
    return make_conninfo("", **{k: v for k, v in kwargs.items() if isinstance(v, str | int)})  # (not "context")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, to: str = "head") -> None:
    """Bring the schema to revision `to` (the newest by default; idempotent)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, to)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def revisions() -> list[str]:
    """Every revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def head_revision() -> str:
    return revisions()[-1]


def upgrade_sql(url: str, since: str | None = None) -> str:
    """The SQL that brings a database of `url`'s dialect from `since` (None: empty) to the newest revision,
    written out, not run (Alembic's offline mode)."""
    import contextlib
    import io

    cfg = alembic_config()
    cfg.attributes["url"] = url
    buf = io.StringIO()
    cfg.output_buffer = buf
    with contextlib.redirect_stdout(buf):
        command.upgrade(cfg, f"{since}:head" if since else "head", sql=True)
    return buf.getvalue()
