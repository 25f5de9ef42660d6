"""`gridwatch`: edge agent, rule tools, hub and simulators behind one command."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

if TYPE_CHECKING:
    from gridwatch.core.findings import Findings
    from simulators.player import Connection

T = TypeVar("T")


def _print_problems(problems: list[str], out: TextIO) -> None:
    """One `file:path: reason` line per problem."""
    for line in problems:
        print(line, file=out)


def _load(loader: Callable[[Path], T], path: Path, out: TextIO | None = None) -> T | None:
    """The loaded file, or None after printing its `file:path: reason` lines (to stderr by default)."""
    from gridwatch.core.errors import ConfigError

    try:
        return loader(path)
    except ConfigError as exc:
        _print_problems(exc.problems, out or sys.stderr)
        return None


def _rules_check(args: argparse.Namespace) -> int:
    from edge.rules.loader import load_rules
    from gridwatch.core.errors import ConfigError

    status = 0
    for f in args.files:
        try:
            rf = load_rules(f)
        except ConfigError as exc:
            _print_problems(exc.problems, sys.stdout)
            status = 1
        else:
            print(f"{f}: ok, {len(rf.rules)} rules", file=sys.stderr)
    return status


def _rules_backtest(args: argparse.Namespace) -> int:
    from edge.backtest import backtest
    from edge.rules.loader import load_rules
    from edge.rules.ruleset import RuleSet
    from gridwatch.core.alert import iso_ms

    rules = _load(load_rules, args.rules)
    if rules is None:
        return 1
    ruleset = RuleSet(rules)
    feeds = None
    limits = None
    root = args.topic_root
    if args.edge_config is not None:
        from edge.config import load_edge_config
        from edge.feeds import FeedSet
        cfg = _load(load_edge_config, args.edge_config)
        if cfg is None:
            return 1
        limits, root = cfg.limits.limits(), cfg.mqtt.topic_root
        feeds = FeedSet(cfg.feed_specs(), limits, root, cfg.registry())
    if args.trace is not None and args.trace not in ruleset.rules:
        print(f"{args.rules}: no enabled rule {args.trace!r} to trace (rules: {', '.join(ruleset.rules)})",
              file=sys.stderr)
        return 1
    res = backtest(ruleset, args.input, root=root, limits=limits, feeds=feeds, trace=args.trace)
    for row in res.trace:
        if args.json:
            print(json.dumps({"trace": row}, ensure_ascii=False))
            continue
        stamp = iso_ms(datetime.fromtimestamp(float(str(row.pop("ts"))), UTC))
        device, phase = row.pop("device"), row.pop("phase")
        print(f"{stamp}  {device:<16} {phase:<9} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    for a in res.alerts:
        if args.json:
            print(a.model_dump_json())
        else:
            print(f"{iso_ms(a.observed_at)}  {a.state:<8} {a.rule_id:<24} {a.device_id:<16} {a.message}")
    print(f"backtest: {res.messages} messages, {len(res.alerts)} alerts, rejected {dict(res.rejected)}",
          file=sys.stderr)
    for (rule, state), n in sorted(res.per_rule().items()):
        print(f"  {rule:<28} {state:<9} {n}", file=sys.stderr)
    return 0


def _feeds_check(args: argparse.Namespace) -> int:
    from edge.config import load_edge_config

    status = 0
    for f in args.files:
        cfg = _load(load_edge_config, f, sys.stdout)
        if cfg is None:
            status = 1
            continue
        specs = cfg.feed_specs()
        print(f"{f}: ok, {len(cfg.feeds)} feed entries, {len(specs)} feeds", file=sys.stderr)
        for s in specs:
            print(f"  {s.name:<32} {s.role:<6} {s.topic}", file=sys.stderr)
    return status


def _feeds_try(args: argparse.Namespace) -> int:
    """What one message would become: readings with device, grid and time, or why it is rejected."""
    import time
    from datetime import UTC, datetime

    from edge.config import load_edge_config
    from edge.errors import Rejected
    from edge.feeds import FeedSet
    from edge.message import Message

    cfg = _load(load_edge_config, args.config, sys.stdout)
    if cfg is None:
        return 2
    feeds = FeedSet(cfg.feed_specs(), cfg.limits.limits(), cfg.mqtt.topic_root, cfg.registry())
    if args.payload_file is not None:
        payload = Path(args.payload_file).read_bytes()
    else:
        payload = (args.payload or "").encode("utf-8")
    hit = feeds.route(args.topic)
    try:
        events = feeds.decode(Message(args.topic, payload, time.time()))
    except Rejected as rej:
        print(f"rejected ({rej.reason}): {rej.detail}")
        return 1
    assert hit is not None
    print(f"feed {hit[0].name}: {len(events)} event(s)")
    for ev in events:
        when = datetime.fromtimestamp(ev.ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        what = (json.dumps(ev.metrics, ensure_ascii=False) if ev.kind == "sensor"
                else f"{ev.event}" + (f" zone {ev.zone}" if ev.zone else ""))
        extra = f" (gateway {ev.gateway})" if ev.gateway else (
            f" (gateway of {len(ev.members)} devices)" if ev.members is not None else "")
        print(f"  {ev.kind:<7} grid={ev.grid} device={ev.device} ts={when} {what}{extra}")
    for topic, _ in feeds.take_outgoing():
        print(f"  would publish to {topic}")
    return 0


def _edge_run(args: argparse.Namespace) -> int:
    from edge.agent import Agent
    from edge.config import load_edge_config
    from edge.runtime import tune_gc
    from gridwatch.core.errors import ConfigError

    try:
        agent = Agent(load_edge_config(args.config))
    except ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        return 1
    tune_gc()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    agent.start()
    if agent.metrics_port is not None:
        print(f"edge {agent.cfg.edge_id}: metrics on http://{agent.cfg.metrics.host}:{agent.metrics_port}/metrics",  # type: ignore[union-attr]
              file=sys.stderr, flush=True)
    done.wait()
    agent.stop()
    return 0


def _report(found: Findings, path: Path, strict: bool) -> int:
    """A check's problems on stdout, what was sound and a summary on stderr; the exit code."""
    code = found.print(sys.stdout, strict)
    for line in found.checked:
        print(f"  ok  {line}", file=sys.stderr)
    print(f"{path}: {'ok' if code == 0 else 'problems'} ({len(found.errors)} errors, "
          f"{len(found.warnings)} warnings)", file=sys.stderr)
    return code


def _edge_check(args: argparse.Namespace) -> int:
    from edge.check import check_edge

    return max(_report(check_edge(path)[0], path, args.strict) for path in args.config)


def _hub_check(args: argparse.Namespace) -> int:
    from datetime import date

    from hub.check import check_hub

    return _report(check_hub(args.config, date.today())[0], args.config, args.strict)


def _hub_calendar(args: argparse.Namespace) -> int:
    """`hub calendar show FILE [--year]` and `hub calendar import FILE --year Y --from-package | --file F`."""
    from datetime import date

    from gridwatch.core.errors import ConfigError
    from gridwatch.core.yamlconf import load
    from hub.calendar import CalendarYear
    from hub.calendar_files import import_year, load_calendars, show, year_from_package

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
        _print_problems(exc.problems, sys.stderr)
        return 1
    return 0


def _hub_init(args: argparse.Namespace) -> int:
    from gridwatch.core.errors import ConfigError
    from hub.errors import Conflict
    from hub.init import init_hub

    try:
        made = init_hub(args.dir, database=args.database, admin=args.admin)
    except Conflict as exc:
        print(f"hub init: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        return 1
    from sqlalchemy import make_url

    db = make_url(made.database).render_as_string(hide_password=True)
    print(f"""gridwatch hub init: {made.config.parent}
  configuration  {made.config} (org, SLA, routing, labels and calendars of the example: edit them)
  database       {db} (migrated to {made.revision})

Shown once, stored only as hashes; keep them now:
  first administrator, board sign-in:  {made.admin_user} / {made.admin_password}
                                       (the first sign-in enrols a second factor: have an authenticator app)
  admin API key (keys: admin):         {made.admin_key}
                                       (bind it to its machines: sources in hub.yaml)
  agent key (keys: {made.edge_name}), for the agent's GRIDWATCH_EDGE_KEY:
                                       {made.edge_key}

Next: gridwatch hub check -c {made.config}
      gridwatch hub serve -c {made.config}""")
    return 0


def _hub_audit(args: argparse.Namespace) -> int:
    """`hub audit check`: walk the audit trail's hash chain; exit 1 naming each broken record."""
    from hub.audit import verify
    from hub.config import load_hub_config
    from hub.db import make_engine

    cfg = _load(load_hub_config, args.config)
    if cfg is None:
        return 1
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
    from hub.db import current_revision, head_revision, make_engine, migrate, revisions, upgrade_sql

    cfg = _load(load_hub_config, args.config)
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


def _gateway_camera(args: argparse.Namespace) -> int:
    from edge.camera_gateway.config import load_camera_config
    from edge.camera_gateway.gateway import CameraGateway
    from gridwatch.core.errors import ConfigError

    try:
        cfg = load_camera_config(args.config)
    except ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        return 1
    gw = CameraGateway(cfg)
    return _serve_gateway(gw, lambda: f"camera gateway: {len(cfg.cameras)} cameras")


def _serve_gateway(gw: Any, banner: Callable[[], str]) -> int:
    """Start a gateway, say what it serves (and where its metrics are), run until SIGTERM or SIGINT, stop it."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    gw.start()
    print(banner() + (f", metrics on http://127.0.0.1:{gw.metrics_port}/metrics" if gw.metrics_port else ""),
          file=sys.stderr, flush=True)
    done.wait()
    gw.stop()
    return 0


def _gateway_gb28181(args: argparse.Namespace) -> int:
    from edge.gb28181.config import load_gb_config
    from edge.gb28181.gateway import GbGateway
    from gridwatch.core.errors import ConfigError

    try:
        cfg = load_gb_config(args.config)
    except ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        return 1
    gw = GbGateway(cfg)
    return _serve_gateway(gw, lambda: f"GB/T 28181 gateway: SIP server {cfg.sip.id}@{cfg.sip.domain} on "
                                      f"{cfg.sip.host}:{gw.port} ({'/'.join(cfg.sip.transports)}), "
                                      f"{len(cfg.devices)} device(s) and platform(s)")


def _hub_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gridwatch.core.errors import ConfigError
    from hub.app import create_app
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
        _print_problems(exc.problems, sys.stderr)
        return 1
    from hub.check import DEMO_KEYS

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


def _broker_acl(args: argparse.Namespace) -> int:
    from gridwatch.core.yamlconf import load
    from hub.acl import mosquitto_acl, nats_users
    from hub.org import OrgFile

    org = _load(lambda p: load(OrgFile, p), args.org)
    if org is None:
        return 1
    edges: dict[str, list[str]] = {}
    for spec in args.edge or ["edge-a", "edge-b"]:
        user, _, grids = spec.partition("=")
        edges[user] = [g for g in grids.split(",") if g]
    make = nats_users if args.nats else mosquitto_acl
    sys.stdout.write(make(org, org_name=str(args.org), root=args.topic_root, edges=edges))
    return 0


def _hub_hash_key(args: argparse.Namespace) -> int:
    import secrets

    from hub.config import hash_key

    key = args.key or secrets.token_urlsafe(32)
    print(f"key:  {key}\nhash: {hash_key(key)}")
    return 0


def _connection(args: argparse.Namespace) -> Connection:
    import os

    from gridwatch.core.config import MqttTls
    from simulators.player import Connection

    first, *more = args.broker.split(",")  # a clustered broker: host:port,host:port,...
    host, _, port = first.rpartition(":")
    password = os.environ.get(args.password_env) if args.password_env and "{" not in args.password_env else None
    tls = MqttTls(ca_file=args.tls_ca, cert_file=args.tls_cert, key_file=args.tls_key,
                  server_name=args.tls_server_name) if args.tls_ca else None
    return Connection(host or "127.0.0.1", int(port), args.protocol, args.username, password, args.topic_root, tls,
                      args.password_env, tuple(more))


def _hub_key(args: argparse.Namespace) -> str | None:
    import os

    return args.key or os.environ.get(args.key_env)


def _sim_capture(args: argparse.Namespace) -> int:
    from simulators.scenario import capture, load_scenario

    sc = _load(load_scenario, args.scenario)
    if sc is None:
        return 1
    start = datetime.fromisoformat(args.start).timestamp() if args.start else time.time() - sc.duration
    rows = capture(sc, start, args.topic_root)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{args.out}: {len(rows)} readings of {sc.name} ({sc.duration / 3600:g} h of scenario time)", file=sys.stderr)
    return 0


def _sim_run(args: argparse.Namespace) -> int:
    from simulators.player import Player
    from simulators.scenario import load_scenario
    from simulators.verify import HubClient, report, table, verify

    sc = _load(load_scenario, args.scenario)
    if sc is None:
        return 1
    key = _hub_key(args)
    if args.verify and not key:
        print(f"--verify needs a hub key (--key or ${args.key_env})", file=sys.stderr)
        return 2
    try:
        player = Player(sc, _connection(args), client_prefix=f"sim-{sc.name}", as_=args.as_)
    except (OSError, ConnectionError) as exc:
        print(f"sim: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"playing {sc.name}: {len(sc.devices)} devices, {len(sc.incidents)} incidents, {sc.duration:.0f}s",
          file=sys.stderr, flush=True)
    try:
        played = player.run(0 if args.forever else None, stop)
    finally:
        player.close()
    print(f"played: {played.published} messages", file=sys.stderr, flush=True)
    if not args.verify:
        return 0
    rows = verify(sc, played, HubClient(args.hub, key or ""), settle=args.settle)
    print(table(rows), file=sys.stderr if args.json else sys.stdout, flush=True)
    rep = report(rows)
    if args.json:
        print(json.dumps(rep))
    return 0 if rep["passed"] else 1


def _sim_load(args: argparse.Namespace) -> int:
    from simulators.load import LoadSpec, run_load

    spec = LoadSpec(devices=args.devices, rate=args.rate, duration=args.duration, incidents=args.incidents,
                    hub=args.hub, key=_hub_key(args), settle=args.settle)
    rep = run_load(spec, _connection(args))
    print(json.dumps(rep))
    return 0 if rep["rate_ok"] else 1


def _sim_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", default="127.0.0.1:1883", help="host:port, or the nodes of a clustered broker "
                   "host:port,host:port,... (tried in turn)")
    p.add_argument("--protocol", choices=["v5", "v311"], default="v5")
    p.add_argument("--username", help="MQTT user; with {grid} in it (gw-{grid}) one connection per grid, as the "
                                      "shipped ACL grants")
    p.add_argument("--password-env", help="environment variable holding the MQTT password ({GRID} in it: one per "
                                          "grid, grid-01 -> GRID_01)")
    p.add_argument("--topic-root", default="gw")
    p.add_argument("--tls-ca", type=Path, help="MQTT over TLS: the CA that signed the broker's certificate")
    p.add_argument("--tls-cert", type=Path, help="client certificate, when the broker asks for one")
    p.add_argument("--tls-key", type=Path)
    p.add_argument("--tls-server-name", help="name to check the broker's certificate against (default: host)")
    p.add_argument("--hub", default="http://127.0.0.1:8080", help="hub URL (for --verify and latencies)")
    p.add_argument("--key", help="hub API key, viewer or operator (prefer --key-env)")
    p.add_argument("--key-env", default="GRIDWATCH_HUB_KEY")
    p.add_argument("--settle", type=float, default=30.0, help="seconds to wait for cases after playing")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridwatch", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = p.add_subparsers(dest="command", required=True)

    edge = top.add_parser("edge", help="the edge agent").add_subparsers(dest="edge_cmd", required=True)
    run = edge.add_parser("run", help="run one edge agent")
    run.add_argument("-c", "--config", type=Path, default=Path("configs/edge.yaml"))
    run.set_defaults(func=_edge_run)
    ec = edge.add_parser("check", help="check an agent config, its rules, feeds, devices and TLS files without "
                                       "connecting; prints file:path: reason, exits 1 on errors")
    ec.add_argument("-c", "--config", type=Path, action="append", required=True, help="edge.yaml (repeatable)")
    ec.add_argument("--strict", action="store_true", help="warnings fail too")
    ec.set_defaults(func=_edge_check)

    gateway = top.add_parser("gateway", help="gateways shipped with gridwatch").add_subparsers(
        dest="gateway_cmd", required=True)
    gcam = gateway.add_parser("camera", help="RTSP/MJPEG streams and camera alarms (ISAPI, Dahua) to MQTT")
    gcam.add_argument("-c", "--config", type=Path, default=Path("configs/cameras.yaml"))
    gcam.set_defaults(func=_gateway_camera)
    ggb = gateway.add_parser("gb28181", help="GB/T 28181: cameras, NVRs and lower platforms register over SIP; "
                                             "catalogs to the device registry, alarms and liveness to MQTT")
    ggb.add_argument("-c", "--config", type=Path, default=Path("configs/gb28181.yaml"))
    ggb.set_defaults(func=_gateway_gb28181)

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
    hk.set_defaults(func=_hub_hash_key)

    broker = top.add_parser("broker", help="the MQTT broker").add_subparsers(dest="broker_cmd", required=True)
    acl = broker.add_parser("acl", help="print the Mosquitto ACL for an org tree (one gateway user per grid)")
    acl.add_argument("org", type=Path)
    acl.add_argument("--edge", action="append", metavar="USER[=GRID,GRID]",
                     help="an agent user and the grids it owns (default: edge-a and edge-b, all grids)")
    acl.add_argument("--topic-root", default="gw")
    acl.add_argument("--nats", action="store_true", help="the same grants as the users of a NATS cluster's MQTT "
                                                         "listener (configs/nats/users.conf)")
    acl.set_defaults(func=_broker_acl)

    rules = top.add_parser("rules", help="rule files").add_subparsers(dest="rules_cmd", required=True)
    check = rules.add_parser("check", help="validate rule files; prints file:path: reason, exits 1 on errors")
    check.add_argument("files", nargs="+", type=Path)
    check.set_defaults(func=_rules_check)
    bt = rules.add_parser("backtest", help="replay a capture through rules in event time")
    bt.add_argument("rules", type=Path)
    bt.add_argument("--input", "-i", type=Path, required=True, help="JSONL capture (record: in the agent config)")
    bt.add_argument("--json", action="store_true", help="one JSON alert per line on stdout")
    bt.add_argument("--trace", metavar="RULE", default=None,
                    help="print what RULE concluded at each reading it judged: a forecast's time to the line "
                         "(eta_s), trend per minute and fit (r2); a deviation rule's normal, spread and z; the level")
    bt.add_argument("--topic-root", default="gw")
    bt.add_argument("--edge-config", type=Path, default=None,
                    help="apply this agent config's feeds (raw gateway captures replay as live)")
    bt.set_defaults(func=_rules_backtest)

    feeds = top.add_parser("feeds", help="feed mappings in the edge config").add_subparsers(
        dest="feeds_cmd", required=True)
    fc = feeds.add_parser("check", help="validate the feeds of edge configs; prints file:path: reason, exits 1")
    fc.add_argument("files", nargs="+", type=Path)
    fc.set_defaults(func=_feeds_check)
    ft = feeds.add_parser("try", help="print what one message would become; exits 1 with the reason if rejected")
    ft.add_argument("config", type=Path)
    ft.add_argument("--topic", required=True)
    ft.add_argument("--payload", default=None)
    ft.add_argument("--payload-file", type=Path, default=None, help="binary payloads (Sparkplug B)")
    ft.set_defaults(func=_feeds_try)

    sim = top.add_parser("sim", help="simulated gateways").add_subparsers(dest="sim_cmd", required=True)
    sr = sim.add_parser("run", help="play a scenario; --verify checks the hub for exactly the expected cases")
    sr.add_argument("scenario")
    sr.add_argument("--verify", action="store_true")
    sr.add_argument("--json", action="store_true", help="with --verify: the report as one JSON line on stdout")
    sr.add_argument("--forever", action="store_true", help="keep playing the baseline after the last incident")
    from simulators.shapes import SHAPES

    sr.add_argument("--as", dest="as_", choices=SHAPES, default=None,
                    help="every sensor speaks this gateway kind (default: each device's `gateway:`, else native)")
    _sim_common(sr)
    sr.set_defaults(func=_sim_run)
    sc = sim.add_parser("capture", help="write a scenario's sensor readings as a JSONL capture, without playing "
                                        "it (days in a second), for `rules backtest`")
    sc.add_argument("scenario")
    sc.add_argument("--out", "-o", type=Path, required=True)
    sc.add_argument("--start", default=None, help="ISO time the scenario starts (default: its duration ago)")
    sc.add_argument("--topic-root", default="gw")
    sc.set_defaults(func=_sim_capture)
    sl = sim.add_parser("load", help="many devices at a steady rate; reports achieved rate and case latency")
    sl.add_argument("--devices", type=int, default=1000)
    sl.add_argument("--rate", type=float, default=5000.0, help="readings per second")
    sl.add_argument("--duration", type=float, default=60.0, help="seconds")
    sl.add_argument("--incidents", type=int, default=10, help="gas leaks injected during the run (0 = none)")
    _sim_common(sl)
    sl.set_defaults(func=_sim_load)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:  # one line per HTTP request or migration step is noise in an operator's log
        for noisy in ("httpx", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
