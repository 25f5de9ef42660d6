"""The broker's ACL for an org tree (`gridwatch broker acl configs/org.yaml`): one gateway user per grid
that writes its own grid's feeds and status (its will included) and nothing else; edge agents that read
feeds (all, or their grids' when sharded) and write nothing; the hub alone writes case events; case-event
subscribers read them. Pure: text in, text out; the shipped `configs/mosquitto/acl` is its output for the
shipped org (tests/test_broker_shipped.py checks they agree)."""

from __future__ import annotations

from hub.org import OrgFile

HEAD = """# Who may do what on the broker (Mosquitto ACL; a topic not granted is denied). Made by
# `gridwatch broker acl {org}` from the org tree: one gateway user per grid. Tested as shipped in
# tests/test_broker_shipped.py; make it again whenever grids change.
"""


def mosquitto_acl(org: OrgFile, *, org_name: str = "configs/org.yaml", root: str = "gw",
                  edges: dict[str, list[str]] | None = None, hub: str = "hub",
                  viewers: tuple[str, ...] = ("viewer",)) -> str:
    """`edges`: agent user -> the grids it owns (empty: every grid)."""
    edges = edges if edges is not None else {"edge-a": [], "edge-b": []}
    grids = [u.id for u in org.units if u.level == "grid"]
    out = [HEAD.format(org=org_name)]
    out.append("# Edge agents read every feed (or, sharded by grid, only their grids' lines) and write nothing.")
    for user, owned in edges.items():
        out.append(f"user {user}")
        out += [f"topic read {root}/{g}/+/+/+" for g in owned] or [f"topic read {root}/+/+/+/+"]
        out.append("")
    out += ["# The hub publishes case events, and only it does.", f"user {hub}", f"topic write {root}/cases/#", ""]
    out.append("# Case-event subscribers (wall screens, dispatch systems) read them.")
    for v in viewers:
        out += [f"user {v}", f"topic read {root}/cases/#", ""]
    out.append("# Gateways: each writes its own grid's feeds and status (its will message included), nothing else.")
    for g in grids:
        out += [f"user gw-{g}", f"topic write {root}/{g}/+/+/+", ""]
    return "\n".join(out).rstrip("\n") + "\n"
