"""`gridwatch`: edge agent, rule tools, hub and simulators behind one command."""

from __future__ import annotations

import argparse
import logging
import sys

from gridwatch.cli import broker, edge, gateway, hub, rules, sim


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gridwatch", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top = p.add_subparsers(dest="command", required=True)
    for group in (edge, gateway, hub, broker, rules, sim):
        group.add(top)
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
