"""`gridwatch edge`: run one agent, check an agent's config and everything it names."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridwatch.cli.common import print_problems, report

if TYPE_CHECKING:
    pass



def _edge_run(args: argparse.Namespace) -> int:
    from edge.agent import Agent
    from edge.config import load_edge_config
    from edge.runtime import tune_gc
    from gridwatch.core.errors import ConfigError

    try:
        agent = Agent(load_edge_config(args.config))
    except ConfigError as exc:
        print_problems(exc.problems, sys.stderr)
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


def _edge_check(args: argparse.Namespace) -> int:
    from edge.check import check_edge

    return max(report(check_edge(path)[0], path, args.strict) for path in args.config)


def add(top: Any) -> None:
    """The group's commands under the top-level parser's subcommands."""
    edge = top.add_parser("edge", help="the edge agent").add_subparsers(dest="edge_cmd", required=True)
    run = edge.add_parser("run", help="run one edge agent")
    run.add_argument("-c", "--config", type=Path, default=Path("configs/edge.yaml"))
    run.set_defaults(func=_edge_run)
    ec = edge.add_parser("check", help="check an agent config, its rules, feeds, devices and TLS files without "
                                       "connecting; prints file:path: reason, exits 1 on errors")
    ec.add_argument("-c", "--config", type=Path, action="append", required=True, help="edge.yaml (repeatable)")
    ec.add_argument("--strict", action="store_true", help="warnings fail too")
    ec.set_defaults(func=_edge_check)
