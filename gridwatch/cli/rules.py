"""`gridwatch rules` and `gridwatch feeds`: rule files checked and backtested, feed mappings checked and tried."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridwatch.cli.common import load_or_say, print_problems

if TYPE_CHECKING:
    pass



def _rules_check(args: argparse.Namespace) -> int:
    from edge.rules.loader import load_rules
    from gridwatch.core.errors import ConfigError

    status = 0
    for f in args.files:
        try:
            rf = load_rules(f)
        except ConfigError as exc:
            print_problems(exc.problems, sys.stdout)
            status = 1
        else:
            print(f"{f}: ok, {len(rf.rules)} rules", file=sys.stderr)
    return status


def _rules_backtest(args: argparse.Namespace) -> int:
    from edge.backtest import backtest
    from edge.rules.loader import load_rules
    from edge.rules.ruleset import RuleSet
    from gridwatch.core.alert import iso_ms

    rules = load_or_say(load_rules, args.rules)
    if rules is None:
        return 1
    ruleset = RuleSet(rules)
    feeds = None
    limits = None
    root = args.topic_root
    if args.edge_config is not None:
        from edge.config import load_edge_config
        from edge.feeds import FeedSet
        cfg = load_or_say(load_edge_config, args.edge_config)
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
        cfg = load_or_say(load_edge_config, f, sys.stdout)
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
    from datetime import UTC, datetime

    from edge.config import load_edge_config
    from edge.errors import Rejected
    from edge.feeds import FeedSet
    from edge.message import Message

    cfg = load_or_say(load_edge_config, args.config, sys.stdout)
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


def add(top: Any) -> None:
    """The group's commands under the top-level parser's subcommands."""
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
