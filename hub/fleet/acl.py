"""The broker's ACL for an org tree (`gridwatch broker acl configs/org.yaml`): one gateway user per grid
that writes its own grid's feeds and status (its will included) and nothing else; edge agents that read
feeds (all, or their grids' when sharded) and write nothing; the hub alone writes case events; case-event
subscribers read them. Pure: text in, text out; the shipped `configs/mosquitto/acl` is its output for the
shipped org (tests/test_broker_shipped.py checks they agree), and `configs/nats/users.conf` the same grants for
a NATS cluster (`gridwatch broker acl --nats`; MQTT topics become NATS subjects: `/` `.`, `+` `*`, `#` `>`)."""

from __future__ import annotations

from hub.policy.org import OrgFile

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


NATS_HEAD = """# Who may do what on the NATS cluster's MQTT listener: configs/mosquitto/acl's grants, as NATS grants.
# Made by `gridwatch broker acl --nats {org}` from the org tree: one gateway user per grid. Passwords come from
# each node's environment, PW_<USER> (bcrypt hashes: `htpasswd -nbBC 11 "" <password> | cut -d: -f2`), never
# from a shipped file. Tested as shipped in tests/test_broker_nats.py.
"""


def subject(topic: str) -> str:
    """An MQTT topic filter as the NATS subject NATS's MQTT layer uses for it."""
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in topic.split("/"))


def nats_users(org: OrgFile, *, org_name: str = "configs/org.yaml", root: str = "gw",
               edges: dict[str, list[str]] | None = None, hub: str = "hub",
               viewers: tuple[str, ...] = ("viewer",)) -> str:
    """The `authorization` block of the NATS nodes: the same users and grants as `mosquitto_acl`."""
    edges = edges if edges is not None else {"edge-a": [], "edge-b": []}
    grids = [u.id for u in org.units if u.level == "grid"]

    def grant(topics: list[str], reads: bool = False) -> str:
        if not topics:
            return '{deny: [">"]}'  # (an empty allow list would allow everything)
        subjects = [x for t in topics for x in ([subject(t), subject(t[:-2])] if t.endswith("/#") else [subject(t)])]
        if reads:  # NATS 2.9 delivers QoS 1 through a JetStream consumer on $MQTT.sub.<id>: the reader subscribes
            subjects.append("$MQTT.sub.>")
        return "{allow: [" + ", ".join(f'"{x}"' for x in subjects) + "]}"

    def user(name: str, *, pub: list[str], sub: list[str], why: str) -> str:
        var = "PW_" + name.upper().replace("-", "_").replace(".", "_")
        return (f'    {{user: "{name}", password: ${var}, allowed_connection_types: ["MQTT"],  # {why}\n'
                f"     permissions: {{publish: {grant(pub)}, subscribe: {grant(sub, reads=True)}}}}}")

    rows = [user(u, pub=[], sub=[f"{root}/{g}/+/+/+" for g in owned] or [f"{root}/+/+/+/+"],
                 why="an edge agent: reads feeds, writes nothing") for u, owned in edges.items()]
    rows.append(user(hub, pub=[f"{root}/cases/#"], sub=[], why="the hub alone writes case events"))
    rows += [user(v, pub=[], sub=[f"{root}/cases/#"], why="reads case events") for v in viewers]
    rows += [user(f"gw-{g}", pub=[f"{root}/{g}/+/+/+"], sub=[], why=f"the gateway of {g}") for g in grids]
    return NATS_HEAD.format(org=org_name) + "authorization {\n  users: [\n" + ",\n".join(rows) + "\n  ]\n}\n"
