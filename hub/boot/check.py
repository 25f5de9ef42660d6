"""`gridwatch hub check`: every file a hub reads, checked without starting it.

hub.yaml, the org tree, the SLA policies (and the calendars they name), the routing, every calendar, the
labels, the keys (units that exist; the demo's keys, whose plain text is public, as warnings) and the TLS
files. Each problem is one `file:path: reason (line N)` line, the hub's own loaders' wording; a file that
fails does not stop the others being checked. Calendars in use are named when their data ends before a
clock could still be running on them (`hub.policy.calendar_watch`): after that, every Monday-Friday counts as a
working day.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridwatch.core.findings import Findings
from gridwatch.core.yamlconf import YamlSource, load, load_sourced, problem
from hub.config import HubConfig, hash_key, load_hub_config_sourced
from hub.files.calendar_files import load_calendars
from hub.people.seed import load_people_file
from hub.policy.calendar import Calendar
from hub.policy.calendar_watch import notices
from hub.policy.labels import load_labels
from hub.policy.notify_config import load_notify
from hub.policy.org import Org, OrgFile
from hub.policy.roster import load_rosters
from hub.policy.routing import RoutingFile, load_routing
from hub.policy.sla import SlaFile
from hub.store.db import make_engine
from hub.store.models import User

DEMO_KEYS = {hash_key(k): k for k in ("demo-edge-key", "demo-operator-key", "demo-viewer-key", "demo-admin-key")}


def check_hub(path: Path, today: date) -> tuple[Findings, HubConfig | None]:
    f = Findings()
    hub_loaded = f.load(lambda: load_hub_config_sourced(path))
    if hub_loaded is None:
        return f, None
    cfg, src = hub_loaded
    f.checked.append(str(path))
    org = f.load(lambda: Org(load(OrgFile, cfg.org)))
    if org is not None:
        f.checked.append(str(cfg.org))
    cals: dict[str, Calendar] = {}
    if not cfg.calendars.is_dir():
        f.errors.append(f"{path}:calendars: {cfg.calendars} is not a directory")
    else:
        cals = f.load(lambda: load_calendars(cfg.calendars)) or {}
        f.checked += [str(c.path) for c in cals.values()]
    sla_loaded = f.load(lambda: load_sourced(SlaFile, cfg.sla))
    if sla_loaded is not None:
        sla, sla_src = sla_loaded
        for i, p in enumerate(sla.policies):
            if p.calendar != "24x7" and p.calendar not in cals:
                f.errors.append(problem(cfg.sla, sla_src, ("policies", i, "calendar"),
                                        f"no calendar named {p.calendar!r} in {cfg.calendars} (known: "
                                        f"{', '.join(sorted(cals)) or 'none'}; or 24x7)"))
        f.warnings += [n.detail for n in notices(cals, sla, today) if n.calendar in cals and n.level == "warning"]
        f.checked.append(str(cfg.sla))
    if cfg.routing is not None:  # against the org tree; without one (it failed), its own shape at least
        routing = cfg.routing
        loaded = (f.load(lambda: load_routing(routing, org)) if org is not None
                  else f.load(lambda: load(RoutingFile, routing)))
        if loaded is not None:
            f.checked.append(str(routing))
    if cfg.labels is not None and f.load(lambda: load_labels(cfg.labels)) is not None:
        f.checked.append(str(cfg.labels))
    _notices(f, cfg, org, cals)
    _keys(f, path, src, cfg, org)
    _files(f, path, src, cfg)
    _secrets(f, cfg)
    return f, cfg


def _secrets(f: Findings, cfg: HubConfig) -> None:
    """The data key and the audit key this environment gives can open and verify what the database holds
    (a database not there yet, or not answering, is not checked)."""
    from sqlalchemy import inspect

    from hub.boot import keys

    try:
        keys.configure(cfg)
        engine = make_engine(cfg.database)
        try:
            if not inspect(engine).has_table("key_checks"):
                return
            f.errors += [f"keys: {p}" for p in keys.check(engine, write=False)]
        finally:
            engine.dispose()
    except Exception as exc:
        f.warnings.append(f"keys: not checked against the database: {str(exc).splitlines()[0][:200]}")


def _notices(f: Findings, cfg: HubConfig, org: Org | None, cals: dict[str, Calendar]) -> None:
    """notify.yaml (its channels' secrets from this environment, rules, templates) and rosters.yaml (units,
    calendars, and the people: against the database's accounts when it answers)."""
    if org is None:
        return
    notify = cfg.notify
    if notify is not None and (policy := f.load(lambda: load_notify(notify, org))) is not None:
        f.checked.append(str(notify))
        f.warnings += list(policy.off.values())
    listed: set[str] = set()
    people_file = cfg.people
    if people_file is not None and (spec_p := f.load(lambda: load_people_file(people_file, org))) is not None:
        f.checked.append(str(people_file))
        listed = {p.username for p in spec_p.people}
    rosters = cfg.rosters
    if rosters is None:
        return
    try:
        engine = make_engine(cfg.database)
        with Session(engine) as s:
            people: set[str] | None = set(s.scalars(select(User.username))) | listed  # people.yaml's: made at start
        engine.dispose()
    except Exception as exc:  # no database yet, or out of reach: the rest of the file is still checked
        f.warnings.append(f"{rosters}: people not checked against the accounts: the database did not answer "
                          f"({str(exc).splitlines()[0][:120]})")
        people = None
    spec = f.load(lambda: load_rosters(rosters, org, people, cals))
    if spec is not None:
        f.checked.append(str(rosters))


def _keys(f: Findings, path: Path, src: YamlSource, cfg: HubConfig, org: Org | None) -> None:
    for i, k in enumerate(cfg.keys):
        if k.hash in DEMO_KEYS:
            f.warnings.append(problem(path, src, ("keys", i, "hash"),
                                      f"key {k.name!r} is the demo key {DEMO_KEYS[k.hash]!r}, whose plain text is "
                                      f"public: make new keys with `gridwatch hub init` or `gridwatch hub hash-key`"))
        if org is not None and k.unit is not None and k.unit not in org.units:
            f.errors.append(problem(path, src, ("keys", i, "unit"), f"unit {k.unit!r} is not in {cfg.org}"))
        if org is not None:
            for g in k.grids or []:
                if g not in org.units:
                    f.errors.append(problem(path, src, ("keys", i, "grids"), f"grid {g!r} is not in {cfg.org}"))


def _files(f: Findings, path: Path, src: YamlSource, cfg: HubConfig) -> None:
    wanted: list[tuple[tuple[str, ...], Path | None]] = [
        (("listen", "tls_cert"), cfg.listen.tls_cert), (("listen", "tls_key"), cfg.listen.tls_key)]
    if cfg.mqtt is not None and cfg.mqtt.tls is not None:
        t = cfg.mqtt.tls
        wanted += [(("mqtt", "tls", "ca_file"), t.ca_file), (("mqtt", "tls", "cert_file"), t.cert_file),
                   (("mqtt", "tls", "key_file"), t.key_file)]
    f.files(path, src, wanted)
    if cfg.database.startswith("sqlite:///"):
        db = Path(cfg.database.removeprefix("sqlite:///"))
        if not db.parent.is_dir():
            f.errors.append(problem(path, src, ("database",), f"{db.parent}: no such directory for the SQLite file"))
