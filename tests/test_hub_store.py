"""The case store on SQLite and PostgreSQL: idempotent alerts, merging, transitions, timeline, clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gridwatch.core.yamlconf import load
from hub.policy.calendar import Calendar
from hub.policy.org import Org, OrgFile
from hub.policy.sla import SlaFile
from hub.store.cases import Conflict, NotFound, Store
from hub.store.db import make_engine, migrate
from hub.store.models import Base
from tests.storekit import act, ingest

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)  # idempotent
    clock = Clock()
    st = Store(engine, load(SlaFile, "configs/sla.yaml"), Org(load(OrgFile, "configs/org.yaml")),
               {"cn-mainland": Calendar.from_file("configs/calendars/cn-mainland.yaml")}, clock)
    st.test_clock = clock  # type: ignore[attr-defined]
    yield st
    engine.dispose()


def alert(aid="a1", state="firing", device="gas-03", grid="grid-01", category="gas_leak", at=T, **kw):
    return {"alert_id": aid, "state": state, "rule_id": "gas-high", "edge_id": "edge-a", "device_id": device,
            "grid_id": grid, "kind": "sensor", "category": category, "severity": "critical",
            "started_at": at.isoformat(), "observed_at": at.isoformat(), "value": 6120.0,
            "message": "CH4 6120 ppm at gas-03", "labels": {}, "evidence": {}, **kw}


def test_schema_from_migrations_matches_models(store):
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []


def test_alerts_open_merge_dedupe_and_clear(store):
    r = ingest(store, [alert()], actor="edge-a")
    assert r[0]["status"] == "created"
    case_id = r[0]["case_id"]
    assert ingest(store, [alert()], actor="edge-a")[0] == {"alert_id": "a1", "state": "firing",
                                                          "status": "duplicate", "case_id": case_id}
    late = alert("a0", at=T - timedelta(minutes=30))  # arrived late after an edge outage
    assert ingest(store, [late, alert("a2", at=T + timedelta(minutes=5))], actor="edge-a")[1]["status"] == "merged"
    assert ingest(store, [alert("a1", state="resolved", at=T + timedelta(minutes=9))],
                        actor="edge-a")[0]["status"] == "updated"
    assert store.get(case_id)[0].cleared_at is None  # a0 and a2 still fire
    ingest(store, [alert("a0", state="resolved", at=T + timedelta(minutes=8)),
                  alert("a2", state="resolved", at=T + timedelta(minutes=9))], actor="edge-a")
    case, timeline, _ = store.get(case_id)
    assert case.alert_count == 3 and case.status == "open"
    assert case.first_seen == T - timedelta(minutes=30) and case.last_seen == T + timedelta(minutes=5)
    assert case.cleared_at == T + timedelta(minutes=9)
    assert case.owner == "grid-01" and case.policy["id"] == "life-safety"
    assert [e.action for e in timeline] == ["opened", "merged", "merged", "condition_cleared"]
    assert all(e.at.tzinfo is not None and e.actor == "edge-a" for e in timeline)
    other = ingest(store, [alert("b1", device="gas-04")], actor="edge-a")[0]
    assert other["status"] == "created" and other["case_id"] != case_id


def test_unknown_grid_opens_at_the_district_with_a_note(store):
    case_id = ingest(store, [alert(grid="grid-99")], actor="edge-a")[0]["case_id"]
    case, timeline, _ = store.get(case_id)
    assert case.owner == "district-a" and "not in the org tree" in timeline[0].detail["note"]


def test_lifecycle_and_illegal_transitions(store):
    case_id = ingest(store, [alert()], actor="edge-a")[0]["case_id"]
    with pytest.raises(Conflict, match="cannot resolve a case that is open"):
        act(store, case_id, "resolve", actor="op", note="done")
    act(store, case_id, "accept", actor="op")
    with pytest.raises(Conflict, match="needs a note"):
        act(store, case_id, "resolve", actor="op")
    with pytest.raises(Conflict, match="transfer needs a unit"):
        act(store, case_id, "transfer", actor="op", unit="nowhere")
    act(store, case_id, "comment", actor="op", note="team on site")
    act(store, case_id, "resolve", actor="op", note="valve closed")
    with pytest.raises(Conflict, match="someone else must verify") as refused:
        act(store, case_id, "close", actor="op", note="callback done")  # separation of duties
    assert refused.value.code == "same_person"
    case = act(store, case_id, "close", actor="op-2", note="callback done")
    assert case.status == "closed" and case.next_due is None
    with pytest.raises(Conflict):
        act(store, case_id, "accept", actor="op")
    with pytest.raises(NotFound):
        act(store, "nope", "accept", actor="op")
    _, timeline, _ = store.get(case_id)
    assert [e.action for e in timeline] == ["opened", "accept", "comment", "resolve", "close"]
    # a new alert after closing opens a new case
    assert ingest(store, [alert("a9")], actor="edge-a")[0]["status"] == "created"


def test_clock_light_and_hold_from_stored_stamps(store):
    case_id = ingest(store, [alert()], actor="edge-a")[0]["case_id"]  # life-safety: accept within 5m
    case, _, pauses = store.get(case_id)
    assert case.next_due == T + timedelta(seconds=150)
    stage, r = store.clock_of(case, pauses, T + timedelta(minutes=3))
    assert (stage, r.light) == ("accept", "yellow")
    store.test_clock.now = T + timedelta(minutes=1)
    act(store, case_id, "hold", actor="op", note="waiting for the gas company")
    store.test_clock.now = T + timedelta(hours=2)
    case = act(store, case_id, "resume", actor="op")
    case, _, pauses = store.get(case_id)
    stage, r = store.clock_of(case, pauses, T + timedelta(hours=2, minutes=1))
    assert (r.elapsed_s, r.light, case.status) == (120, "green", "open")
    stage, r = store.clock_of(case, pauses, T + timedelta(hours=2, minutes=5))
    assert r.light == "red"


def test_stamps_are_utc_milliseconds(store):
    store.test_clock.now = T.replace(microsecond=123456)
    case_id = ingest(store, [alert()], actor="edge-a")[0]["case_id"]
    case, timeline, _ = store.get(case_id)
    assert case.opened_at == T.replace(microsecond=123000) and timeline[0].at == case.opened_at


def test_sqlite_database_folder_is_created(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'sub' / 'hub.sqlite'}")
    migrate(engine)
    assert (tmp_path / "var" / "sub" / "hub.sqlite").exists()
    engine.dispose()


def test_a_merged_alarm_raises_the_case_severity_and_the_case_clears_when_all_alerts_have(store):
    warn = alert("w1", severity="major", category="fire", device="th-01")
    alarm = alert("a1", severity="critical", category="fire", device="th-01")
    r = ingest(store, [warn], actor="edge")
    case_id = r[0]["case_id"]
    assert ingest(store, [alarm], actor="edge")[0]["status"] == "merged"
    case, timeline, _ = store.get(case_id)
    assert case.severity == "critical"
    assert [e.action for e in timeline][-1] == "severity_raised"
    ingest(store, [{**warn, "state": "resolved"}], actor="edge")
    assert store.get(case_id)[0].cleared_at is None  # the alarm still fires
    ingest(store, [{**alarm, "state": "resolved"}], actor="edge")
    assert store.get(case_id)[0].cleared_at is not None
    again = alert("a2", severity="critical", category="fire", device="th-01")
    ingest(store, [again], actor="edge")
    case, timeline, _ = store.get(case_id)
    assert case.cleared_at is None and timeline[-1].action == "condition_returned"


def test_new_case_rows_have_exactly_the_columns_of_the_cases_table():
    import dataclasses

    from hub.store.models import Case, NewCase

    assert [f.name for f in dataclasses.fields(NewCase)] == [c.key for c in Case.__table__.columns]
