"""`gridwatch broker`: the broker's ACL (Mosquitto, or a NATS cluster's users) for an org tree."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridwatch.cli.common import load_or_say

if TYPE_CHECKING:
    pass



def _broker_acl(args: argparse.Namespace) -> int:
    from gridwatch.core.yamlconf import load
    from hub.fleet.acl import mosquitto_acl, nats_users
    from hub.policy.org import OrgFile

    org = load_or_say(lambda p: load(OrgFile, p), args.org)
    if org is None:
        return 1
    edges: dict[str, list[str]] = {}
    for spec in args.edge or ["edge-a", "edge-b"]:
        user, _, grids = spec.partition("=")
        edges[user] = [g for g in grids.split(",") if g]
    make = nats_users if args.nats else mosquitto_acl
    sys.stdout.write(make(org, org_name=str(args.org), root=args.topic_root, edges=edges))
    return 0


def add(top: Any) -> None:
    """The group's commands under the top-level parser's subcommands."""
    broker = top.add_parser("broker", help="the MQTT broker").add_subparsers(dest="broker_cmd", required=True)
    acl = broker.add_parser("acl", help="print the Mosquitto ACL for an org tree (one gateway user per grid)")
    acl.add_argument("org", type=Path)
    acl.add_argument("--edge", action="append", metavar="USER[=GRID,GRID]",
                     help="an agent user and the grids it owns (default: edge-a and edge-b, all grids)")
    acl.add_argument("--topic-root", default="gw")
    acl.add_argument("--nats", action="store_true", help="the same grants as the users of a NATS cluster's MQTT "
                                                         "listener (configs/nats/users.conf)")
    acl.set_defaults(func=_broker_acl)
