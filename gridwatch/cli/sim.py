"""`gridwatch sim`: scenarios played, captured and verified; load."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridwatch.cli.common import load_or_say

if TYPE_CHECKING:
    from simulators.player import Connection



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

    sc = load_or_say(load_scenario, args.scenario)
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

    sc = load_or_say(load_scenario, args.scenario)
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


def add(top: Any) -> None:
    """The group's commands under the top-level parser's subcommands."""
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
