"""`gridwatch hub`: serve, init, check, migrate, the audit trail, calendars and key hashing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridwatch.cli.common import load_or_say, print_problems, report

if TYPE_CHECKING:
    pass



def _hub_check(args: argparse.Namespace) -> int:
    from datetime import date

    from hub.boot.check import check_hub

    return report(check_hub(args.config, date.today())[0], args.config, args.strict)


def _hub_calendar(args: argparse.Namespace) -> int:
    """`hub calendar show FILE [--year]` and `hub calendar import FILE --year Y --from-package | --file F`."""
    from datetime import date

    from gridwatch.core.errors import ConfigError
    from gridwatch.core.yamlconf import load
    from hub.files.calendar_files import import_year, load_calendars, show, year_from_package
    from hub.policy.calendar import CalendarYear

    try:
        if args.calendar_cmd == "import":
            days = year_from_package(args.year) if args.from_package else load(CalendarYear, args.file)
            import_year(args.path, args.year, days)
            print(f"{args.path}: {args.year} imported from {days.source}"
                  + (" (provisional: statutory days only)" if days.provisional else ""))
        cals = load_calendars(args.path.parent)
        cal = next(c for c in cals.values() if c.path == args.path)
        today = date.today()
        for line in show(cal, args.year or today.year, today):
            print(line)
    except ConfigError as exc:
        print_problems(exc.problems, sys.stderr)
        return 1
    return 0


def _hub_init(args: argparse.Namespace) -> int:
    from gridwatch.core.errors import ConfigError
    from hub.boot.init import init_hub
    from hub.policy.errors import Conflict

    try:
        made = init_hub(args.dir, database=args.database, admin=args.admin)
    except Conflict as exc:
        print(f"hub init: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print_problems(exc.problems, sys.stderr)
        return 1
    from sqlalchemy import make_url

    db = make_url(made.database).render_as_string(hide_password=True)
    print(f"""gridwatch hub init: {made.config.parent}
  configuration  {made.config} (org, SLA, routing, labels and calendars of the example: edit them)
  notices        on: people.yaml (made at the first start), rosters.yaml, notify.yaml (a channel sends once
                 its secrets' variables are set: `hub check` lists those that are off)
  database       {db} (migrated to {made.revision})

Shown once, stored only as hashes; keep them now:
  system administrator (sysadmin), board sign-in:  {made.admin_user} / {made.admin_password}
                                       (the first sign-in enrols a second factor: have an authenticator app;
                                       the security administrator and the auditor are made with the admin key:
                                       三权分立, see README)
  admin API key (keys: admin):         {made.admin_key}
                                       (for scripts on this host only: bound to 127.0.0.1 and ::1)
  agent key (keys: {made.edge_name}), for the agent's GRIDWATCH_EDGE_KEY:
                                       {made.edge_key}

Next: gridwatch hub check -c {made.config}
      gridwatch hub serve -c {made.config}""")
    return 0


def _hub_audit(args: argparse.Namespace) -> int:
    """`hub audit check`: walk the audit trail's hash chain; exit 1 naming each broken record."""
    from hub.audit.trail import verify
    from hub.boot.keys import configure
    from hub.config import load_hub_config
    from hub.store.db import make_engine

    cfg = load_or_say(load_hub_config, args.config)
    if cfg is None:
        return 1
    configure(cfg)  # the chain's key, as the hub has it
    engine = make_engine(cfg.database)
    try:
        n, broken = verify(engine)
    finally:
        engine.dispose()
    for b in broken:
        print(f"audit record {b.seq}: {b.reason}", file=sys.stderr)
    if broken:
        return 1
    print(f"audit trail intact: {n} records, each chained to the one before")
    return 0


def _hub_migrate(args: argparse.Namespace) -> int:
    from hub.config import load_hub_config
    from hub.store.db import current_revision, head_revision, make_engine, migrate, revisions, upgrade_sql

    cfg = load_or_say(load_hub_config, args.config)
    if cfg is None:
        return 1
    if args.action == "history":
        for rev in revisions():
            print(rev)
        return 0
    engine = make_engine(cfg.database)
    try:
        before = None if args.sql and (args.from_empty or args.action != "upgrade") else current_revision(engine)
        if args.sql:
            if before == head_revision():
                print(f"-- the database is at {before}, the newest revision: nothing to run")
            else:
                sys.stdout.write(upgrade_sql(cfg.database, before))
            return 0
        if args.action == "current":
            head = head_revision()
            print(f"{before or '(empty)'}" + (" (head)" if before == head else f" (head is {head})"))
            return 0
        migrate(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    print(f"database at {after} (was {before or 'empty'})", file=sys.stderr)
    return 0


def _hub_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gridwatch.core.errors import ConfigError
    from hub.boot.app import create_app
    from hub.config import load_hub_config

    try:
        cfg = load_hub_config(args.config)
        from gridwatch.ruletools import EdgeRuleTools

        app = create_app(cfg, manage_gc=True, rule_tools=EdgeRuleTools())
        # Requests run in worker threads while the event loop writes streams; a worker gives the GIL up at
        # every database call and waited up to the default 5 ms to get it back each time (158 ms p99 per
        # POST while 10,000 streams were written). 1 ms bounds that wait.
        sys.setswitchinterval(0.001)
    except ConfigError as exc:
        print_problems(exc.problems, sys.stderr)
        return 1
    from hub.boot.check import DEMO_KEYS

    demo = sorted(k.name for k in cfg.keys if k.hash in DEMO_KEYS)
    if demo and cfg.listen.host not in ("127.0.0.1", "::1", "localhost"):
        print(f"hub: refusing to serve on {cfg.listen.host}: keys {', '.join(demo)} are the demo's, whose plain text "
              f"is public; make a configuration with `gridwatch hub init DIR` (or new keys with `gridwatch hub "
              f"hash-key`)", file=sys.stderr)
        return 1
    if demo:
        print(f"hub: warning: keys {', '.join(demo)} are the demo's (public plain text); serving on loopback only",
              file=sys.stderr, flush=True)
    port = args.port if args.port is not None else cfg.listen.port
    tls = cfg.listen.tls_cert is not None
    print(f"hub: {'https' if tls else 'http'}://{cfg.listen.host}:{port}/docs", file=sys.stderr, flush=True)
    uvicorn.run(app, host=cfg.listen.host, port=port, log_level="warning", server_header=False,  # no banner
                ssl_certfile=str(cfg.listen.tls_cert) if tls else None,
                ssl_keyfile=str(cfg.listen.tls_key) if tls else None)
    return 0


def _hub_hash_key(args: argparse.Namespace) -> int:
    import secrets

    from hub.config import hash_key

    if args.data_key:  # a key for GRIDWATCH_DATA_KEYS (or the data key file): Fernet, or SM4 for 国密
        from cryptography.fernet import Fernet

        from hub.store.datakey import new_sm4_key

        print((new_sm4_key() if args.sm4 else Fernet.generate_key()).decode())
        return 0
    key = args.key or secrets.token_urlsafe(32)
    print(f"key:  {key}\nhash: {hash_key(key)}")
    return 0


def add(top: Any) -> None:
    """The group's commands under the top-level parser's subcommands."""
    hub = top.add_parser("hub", help="the hub").add_subparsers(dest="hub_cmd", required=True)
    serve = hub.add_parser("serve", help="run the hub (FastAPI under uvicorn)")
    serve.add_argument("-c", "--config", type=Path, default=Path("configs/hub.yaml"))
    serve.add_argument("--port", type=int, default=None, help="override listen.port")
    serve.set_defaults(func=_hub_serve)
    hi = hub.add_parser("init", help="a new hub configuration in DIR: new keys, a first administrator (printed "
                                     "once), the example org and SLA to edit, the database migrated")
    hi.add_argument("dir", type=Path)
    hi.add_argument("--database", help="SQLAlchemy URL (default: SQLite in DIR/var)")
    hi.add_argument("--admin", default="admin", help="the first administrator's user name")
    hi.set_defaults(func=_hub_init)
    hc = hub.add_parser("check", help="check hub.yaml and every file it names without starting; prints "
                                      "file:path: reason, exits 1 on errors")
    hc.add_argument("-c", "--config", type=Path, default=Path("configs/hub.yaml"))
    hc.add_argument("--strict", action="store_true", help="warnings (demo keys, calendars running out) fail too")
    hc.set_defaults(func=_hub_check)
    hm = hub.add_parser("migrate", help="bring the database to the newest schema without serving; `current`: "
                                        "where it is; `history`: every revision; --sql: print the SQL instead")
    hm.add_argument("action", nargs="?", choices=["upgrade", "current", "history"], default="upgrade")
    hm.add_argument("-c", "--config", type=Path, default=Path("configs/hub.yaml"))
    hm.add_argument("--sql", action="store_true", help="print the SQL from the database's revision to the newest, "
                                                       "run nothing")
    hm.add_argument("--from-empty", action="store_true", help="with --sql: the SQL for an empty database")
    hm.set_defaults(func=_hub_migrate)
    ha = hub.add_parser("audit", help="the audit trail: `check` walks its hash chain and names any record "
                                      "deleted or altered").add_subparsers(dest="audit_cmd", required=True)
    hac = ha.add_parser("check", help="verify the audit trail's hash chain (exit 1 naming broken records)")
    hac.add_argument("-c", "--config", type=Path, default=Path("configs/hub.yaml"))
    hac.set_defaults(func=_hub_audit)
    hcal = hub.add_parser("calendar", help="working-time calendars: show a year's days and how far the data "
                                           "reaches; import a year").add_subparsers(dest="calendar_cmd", required=True)
    cs = hcal.add_parser("show", help="a calendar file's years, how far its data reaches, a year's days")
    cs.add_argument("path", type=Path)
    cs.add_argument("--year", type=int, help="the year to list (default: this year)")
    cs.set_defaults(func=_hub_calendar)
    ci = hcal.add_parser("import", help="put a year's days into a calendar file (then shows it); the hub reloads "
                                        "the calendars folder by itself")
    ci.add_argument("path", type=Path)
    ci.add_argument("--year", type=int, required=True)
    src = ci.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-package", action="store_true", help="from python-holidays (the State Council notice "
                                                                 "once the package has it; else statutory days, "
                                                                 "marked provisional)")
    src.add_argument("--file", type=Path, help="a YAML file with source, holidays and workdays (the notice "
                                               "typed in)")
    ci.set_defaults(func=_hub_calendar)
    hk = hub.add_parser("hash-key", help="make an API key (or hash a given one) for configs/hub.yaml")
    hk.add_argument("key", nargs="?")
    hk.add_argument("--data-key", action="store_true", help="print a new data key (contact points) instead: put "
                    "it first in GRIDWATCH_DATA_KEYS to rotate to it")
    hk.add_argument("--sm4", action="store_true", help="with --data-key: an SM4 key (国密, sm4:<hex>)")
    hk.set_defaults(func=_hub_hash_key)
