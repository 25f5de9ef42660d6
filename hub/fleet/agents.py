"""The fleet of edge agents as the hub runs it: rule sets with versions and deploys, what each agent must run
(its assignment: rules and its grids' devices), heartbeats, and the watchdog that opens one `agent_offline`
case when an agent falls silent.

Agents pull their assignment by long-poll (`GET /api/v1/fleet/assignment`): the same authenticated HTTP(S)
path the forwarder already uses, through the same proxies and TLS, with no broker ACL to widen and no
retained state to clean up on the broker, and it works when the hub has no MQTT link. A deploy wakes the
waiting polls of the hub process that took it at once; other replicas see it within `RECHECK` seconds.

Which version an agent runs: the newest deploy that reaches it. A deploy names grids (staged) or none
(all); it reaches every agent serving one of those grids (an agent without `grids:` serves them all). A
rollback is a deploy of an earlier version.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridwatch.core.alert import Alert
from gridwatch.core.heartbeat import Heartbeat, text_hash
from hub.cases.ingest import Batch
from hub.policy.org import Org
from hub.store.cases import Store
from hub.store.models import AgentRow, Device, RuleDeploy, RuleVersion

logger = logging.getLogger(__name__)
RECHECK = 1.0
"""Seconds between a waiting poll's looks at the database (deploys taken by another hub replica)."""
OFFLINE_CATEGORY = "agent_offline"


class RuleTools(Protocol):
    """What the hub needs of the edge's rule code (lent by `gridwatch.ruletools`; the hub never imports it)."""

    def check(self, text: str) -> tuple[int, list[str]]:
        """(rules, problems): the checker's `file:path: reason` lines, empty when the set is good."""
        ...

    def backtest(self, text: str, capture: Path) -> dict[str, Any]:
        """The alerts the set would have raised on a recorded capture."""
        ...


# ---- rule sets ---------------------------------------------------------------------------------------
def save_version(s: Session, text: str, rules: int, author: str, note: str, now: datetime) -> RuleVersion:
    v = RuleVersion(text=text, hash=text_hash(text), rules=rules, author=author, note=note, created_at=now)
    s.add(v)
    s.flush()
    return v


def version(s: Session, number: int) -> RuleVersion | None:
    return s.get(RuleVersion, number)


def versions(s: Session) -> list[RuleVersion]:
    return list(s.scalars(select(RuleVersion).order_by(RuleVersion.version.desc())))


def diff(old: RuleVersion | None, new: RuleVersion) -> str:
    a = old.text.splitlines(keepends=True) if old is not None else []
    return "".join(difflib.unified_diff(a, new.text.splitlines(keepends=True),
                                        f"v{old.version}" if old is not None else "empty", f"v{new.version}"))


def deploy(s: Session, version: int, grids: list[str] | None, actor: str, note: str, now: datetime) -> RuleDeploy:
    d = RuleDeploy(version=version, grids=sorted(set(grids)) if grids else None, actor=actor, note=note, at=now)
    s.add(d)
    s.flush()
    return d


def deploys(s: Session, limit: int = 100) -> list[RuleDeploy]:
    return list(s.scalars(select(RuleDeploy).order_by(RuleDeploy.id.desc()).limit(limit)))


def reaches(d: RuleDeploy, grids: Sequence[str]) -> bool:
    return d.grids is None or not grids or bool(set(d.grids) & set(grids))


def wanted(history: Sequence[RuleDeploy], grids: Sequence[str]) -> int | None:
    """Of the deploys newest first, the version an agent serving these grids must run (None: nothing
    deployed to it yet)."""
    return next((d.version for d in history if reaches(d, grids)), None)


def version_for(s: Session, grids: Sequence[str]) -> RuleVersion | None:
    """The version (text included) an agent serving these grids must run."""
    v = wanted(list(s.scalars(select(RuleDeploy).order_by(RuleDeploy.id.desc()))), grids)
    return s.get(RuleVersion, v) if v is not None else None


# ---- devices an agent gets ---------------------------------------------------------------------------
def devices_etag(s: Session, grids: Sequence[str]) -> str:
    """Changes whenever a device of these grids is added, changed or removed (count and newest change)."""
    q = select(func.count(), func.max(Device.updated_at)).select_from(Device)
    if grids:
        q = q.where(Device.grid.in_(grids))
    n, newest = s.execute(q).one()
    return f"{n}-{int(newest.timestamp() * 1000) if newest else 0}"


# ---- heartbeats --------------------------------------------------------------------------------------
def heartbeat(store: Store, hb: Heartbeat, key: str, now: datetime) -> None:
    """Record a heartbeat in its own transaction; an agent marked offline that beats again clears its
    agent_offline case (as the watchdog's alert, resolved)."""
    with store.transaction() as s:
        back = beat(s, hb, key, now)
        if back is not None:
            Batch(store, s, "watchdog").run([offline_alert(back, "resolved", now, store.org)])


def beat(s: Session, hb: Heartbeat, key: str, now: datetime) -> AgentRow | None:
    """Record a heartbeat; returns the row when the agent was marked offline (its case must clear)."""
    row = s.get(AgentRow, hb.edge_id, with_for_update=True)
    fields = dict(key=key, grids=sorted(set(hb.grids)), version=hb.version, rule_version=hb.rule_version,
                  rule_hash=hb.rule_hash, broker=hb.broker, outbox_depth=hb.outbox_depth,
                  oldest_unsent=hb.oldest_unsent, dropped_frames=hb.dropped_frames, devices=hb.devices,
                  started_at=hb.started_at, last_seen=now, problem=hb.problem)
    if row is None:
        s.add(AgentRow(id=hb.edge_id, offline_since=None, **fields))
        return None
    was = row.offline_since
    for k, v in fields.items():
        setattr(row, k, v)
    if was is None:
        return None
    back = AgentRow(id=row.id, grids=row.grids, offline_since=was, last_seen=now)
    row.offline_since = None
    return back


def agents(s: Session) -> list[AgentRow]:
    return list(s.scalars(select(AgentRow).order_by(AgentRow.id)))


def silent(s: Session, now: datetime, limit_s: float) -> list[AgentRow]:
    """Agents whose heartbeat is overdue and not yet marked offline, locked (replicas share the work)."""
    q = (select(AgentRow).where(AgentRow.offline_since.is_(None),
                                AgentRow.last_seen < now - timedelta(seconds=limit_s))
         .with_for_update(skip_locked=True))
    return list(s.scalars(q))


def offline_alert(agent: AgentRow, state: Literal["firing", "resolved"], at: datetime, org: Org) -> Alert:
    """The one alert for a silent agent: its case names every grid it serves (an agent serving all is filed
    under the org's first grid); the id is derived from the agent and when it fell silent, so replicas and
    repeats make one case."""
    first_grid = min((u.id for u in org.units.values() if u.level == "grid"), default="unknown")
    since = agent.offline_since or at
    aid = "agent-" + hashlib.sha256(f"{agent.id}|{since.isoformat()}".encode()).hexdigest()[:32]
    grids = ",".join(agent.grids) if agent.grids else "*"
    return Alert(alert_id=aid, state=state, rule_id="agent-heartbeat", edge_id="hub", device_id=agent.id,
                 grid_id=(agent.grids[0] if agent.grids else first_grid), category=OFFLINE_CATEGORY,
                 severity="major", started_at=since, observed_at=at,
                 message=(f"边缘节点 {agent.id} 失联：网格 {grids} 的设备状态未知 (edge agent {agent.id} silent "
                          f"since {since.isoformat()}; its devices' state is unknown)"),
                 labels={"edge_id": agent.id, "grids": grids})


def agent_list(s: Session, now: datetime, limit_s: float, grids: set[str] | None = None) -> list[dict[str, Any]]:
    """The agents (those serving any of `grids`, None: all) as the API shows them, each with the version it
    should run."""
    history = list(s.scalars(select(RuleDeploy).order_by(RuleDeploy.id.desc())))
    return [{**public_agent(a, now, limit_s), "wanted_version": wanted(history, a.grids)} for a in agents(s)
            if grids is None or not a.grids or set(a.grids) & grids]


def public_agent(a: AgentRow, now: datetime, limit_s: float) -> dict[str, Any]:
    state = "offline" if a.offline_since is not None else (
        "late" if (now - a.last_seen).total_seconds() > limit_s / 2 else "online")
    return {"id": a.id, "state": state, "grids": a.grids, "version": a.version, "rule_version": a.rule_version,
            "rule_hash": a.rule_hash, "broker": a.broker, "outbox_depth": a.outbox_depth,
            "oldest_unsent": a.oldest_unsent, "dropped_frames": a.dropped_frames, "devices": a.devices,
            "started_at": a.started_at, "last_seen": a.last_seen, "offline_since": a.offline_since,
            "problem": a.problem, "key": a.key}


def unknown_grids(rows: Sequence[AgentRow]) -> tuple[set[str], bool]:
    """Where the state of devices is unknown: the grids that only offline agents serve, and True when an
    offline agent serving every grid has no online agent beside it (then every device is unknown)."""
    online = [a for a in rows if a.offline_since is None]
    offline = [a for a in rows if a.offline_since is not None]
    if any(not a.grids for a in online):
        return set(), False
    served = {g for a in online for g in a.grids}
    return {g for a in offline for g in a.grids} - served, any(not a.grids for a in offline) and not online
