"""The scheduler on SQLite and PostgreSQL, on an injected clock: lights, backup grid, escalation, reminders."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridwatch.core.yamlconf import load
from hub.cases.scheduler import Scheduler
from hub.policy.calendar import Calendar
from hub.policy.org import Org, OrgFile
from hub.policy.sla import SlaFile
from hub.store.cases import Store
from hub.store.db import make_engine, migrate
from hub.store.models import Case, TimelineEntry
from tests.storekit import act, ingest
from tests.test_hub_store import Clock, T, alert


def make_store(url: str, clock: Clock) -> Store:
    engine = make_engine(url)
    migrate(engine)
    return Store(engine, load(SlaFile, "configs/sla.yaml"), Org(load(OrgFile, "configs/org.yaml")),
                 {"cn-mainland": Calendar.from_file("configs/calendars/cn-mainland.yaml")}, clock)


def events(store: Store, case_id: str) -> list[tuple[str, dict]]:
    _, tl, _ = store.get(case_id)
    return [(e.action, e.detail) for e in tl if e.actor == "scheduler"]


def test_lights_backup_escalation_and_reminders_on_time(db_url):
    clock = Clock()
    store = make_store(db_url, clock)
    sched = Scheduler(store)
    case_id = ingest(store, [alert()], actor="edge-a")[0]["case_id"]  # grid-01, accept within 5 min
    assert sched.run_due(T + timedelta(seconds=149)) == 0
    assert sched.run_due(T + timedelta(seconds=150)) == 1
    assert events(store, case_id)[-1] == ("light", {"stage": "accept", "light": "yellow", "owner": "grid-01"})
    sched.run_due(T + timedelta(minutes=5))
    got = [a for a, _ in events(store, case_id)]
    assert got[-2:] == ["light", "backup_notified"]  # red, then backup grid-02 asked; the light stays red
    assert events(store, case_id)[-1][1]["backup"] == "grid-02"
    assert store.get(case_id)[0].backup == "grid-02"
    owners = []
    for minute in (10, 15, 20):
        sched.run_due(T + timedelta(minutes=minute))
        owners.append(store.get(case_id)[0].owner)
    assert owners == ["community-11", "street-1", "district-a"]  # each owner still gets its own 5 minutes
    case = store.get(case_id)[0]
    assert case.escalations == 3
    # 已挂单 is not hidden by the escalations: the accept clock has run 20 minutes and is red
    stage, clock = store.clock_of(case, [], T + timedelta(minutes=20))
    assert (stage, clock.light, clock.elapsed_s) == ("accept", "red", 1200.0)
    assert [a for a, d in events(store, case_id) if a == "light"] == ["light", "light"]  # yellow, red: no green
    sched.run_due(T + timedelta(minutes=25))
    assert events(store, case_id)[-1][0] == "reminder"
    n = len(events(store, case_id))
    assert sched.run_due(T + timedelta(minutes=27)) == 0  # life-safety reminds every 5 min
    sched.run_due(T + timedelta(minutes=30))
    assert len(events(store, case_id)) == n + 1 and events(store, case_id)[-1][0] == "reminder"
    # a restarted hub (new store and scheduler on the same database) carries on from the stored stamps
    again = Scheduler(make_store(db_url, clock))
    again.run_due(T + timedelta(minutes=35))
    assert events(store, case_id)[-1][0] == "reminder"
    store.engine.dispose()
    again.store.engine.dispose()


def test_accepted_case_escalates_when_not_resolved_and_hold_stops_it(db_url):
    clock = Clock()
    store = make_store(db_url, clock)
    sched = Scheduler(store)
    case_id = ingest(store, [alert(grid="grid-03")], actor="edge-a")[0]["case_id"]
    act(store, case_id, "accept", actor="op")  # resolve within 1 h
    sched.run_due(T + timedelta(minutes=61))
    action, detail = events(store, case_id)[-1]
    assert store.get(case_id)[0].owner == "community-21"
    assert action == "escalated" and "not resolved in time" in detail["reason"]
    clock.now = T + timedelta(minutes=62)
    act(store, case_id, "hold", actor="op", note="waiting for parts")
    assert store.get(case_id)[0].next_due is None
    assert sched.run_due(T + timedelta(days=3)) == 0
    store.engine.dispose()


HUB_PROCESS = """
import sys, time
from datetime import datetime
sys.path.insert(0, {root!r})
from hub.cases.scheduler import Scheduler
from tests.test_hub_scheduler import make_store
from tests.test_hub_store import Clock
store = make_store({url!r}, Clock())
while time.time() < {start}:
    time.sleep(0.001)
print(Scheduler(store, batch=20).run_due(datetime.fromisoformat({due!r})))
"""


def test_two_hub_processes_never_escalate_a_case_twice(postgres_url):
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    from sqlalchemy import create_engine, text

    name = "t" + uuid.uuid4().hex[:12]
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    store = make_store(url, Clock())
    n = 300
    ingest(store, [alert(f"a{i}", grid="grid-03", device=f"gas-{i}") for i in range(n)], actor="edge-a")
    code = HUB_PROCESS.format(root=str(Path.cwd()), url=url, start=time.time() + 3,
                              due=(T + timedelta(minutes=6)).isoformat())
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    counts = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
    print(f"cases handled by each hub process: {counts}")
    with Session(store.engine) as s:
        escalated = s.scalar(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.action == "escalated"))
        owners = set(s.scalars(select(Case.owner)))
    assert escalated == n and owners == {"community-21"} and sum(counts) == n, counts
    store.engine.dispose()
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def test_nothing_due_touches_nothing(db_url):
    store = make_store(db_url, Clock())
    ingest(store, [alert()], actor="edge-a")
    assert Scheduler(store).run_due(T + timedelta(seconds=10)) == 0
    store.engine.dispose()
