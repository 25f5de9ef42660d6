"""预警 at the hub, on SQLite and PostgreSQL: an early-warning episode climbing blue → orange → red is one alert
and one case whose level and severity climb with it, each step on the timeline; a fall is recorded and, unless
the policy says `warning_falls: follow`, leaves the case as people were told it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridwatch.core.yamlconf import load
from hub.policy.calendar import Calendar
from hub.policy.org import Org, OrgFile
from hub.policy.sla import SlaFile
from hub.store.cases import Store
from hub.store.db import make_engine, migrate
from tests.rulekit import Driver, engine
from tests.storekit import ingest
from tests.test_rules_early import LEVELS, rising


def make_store(db_url: str, falls: str = "keep") -> Store:
    db = make_engine(db_url)
    migrate(db)
    sla = load(SlaFile, "configs/sla.yaml")
    sla = sla.model_copy(update={"policies": [p.model_copy(update={"warning_falls": falls}) for p in sla.policies]})
    return Store(db, sla, Org(load(OrgFile, "configs/org.yaml")),
                 {"cn-mainland": Calendar.from_file("configs/calendars/cn-mainland.yaml")},
                 lambda: datetime(2026, 11, 18, 4, 0, tzinfo=UTC))


def episode(tmp_path) -> list[dict]:
    """The alerts of one water-level episode from the edge's engine: fired at blue, then yellow, orange, red."""
    d = Driver(engine(tmp_path, LEVELS))
    rising(d, 1.6, 0.01, 2.49, device="water-01")
    return [a.model_dump(mode="json") for a in d.alerts]


def test_a_climbing_episode_is_one_case_whose_level_and_severity_climb(tmp_path, db_url):
    store = make_store(db_url)
    bodies = episode(tmp_path)
    assert [(b["state"], b["warning"]) for b in bodies] == [
        ("firing", "blue"), ("warning", "yellow"), ("warning", "orange"), ("warning", "red")]
    seen = []
    for b in bodies:
        r = ingest(store, [b], actor="edge-a")[0]
        case, timeline, _ = store.get(r["case_id"])
        seen.append((r["status"], case.warning, case.severity))
    assert seen == [("created", "blue", "info"), ("updated", "yellow", "minor"), ("updated", "orange", "major"),
                    ("updated", "red", "critical")]
    assert len({r["case_id"] for r in ingest(store, bodies, actor="edge-a")}) == 1  # a resend: duplicates
    assert {r["status"] for r in ingest(store, bodies, actor="edge-a")} == {"duplicate"}
    raised = [(e.detail["from"], e.detail["to"]) for e in timeline if e.action == "warning_raised"]
    assert raised == [("blue", "yellow"), ("yellow", "orange"), ("orange", "red")]
    assert [(e.detail["from"], e.detail["to"]) for e in timeline if e.action == "severity_raised"] == [
        ("info", "minor"), ("minor", "major"), ("major", "critical")]
    assert case.title.startswith("红色预警（Ⅰ级）")  # the wall shows the latest words
    assert timeline[0].detail["warning"] == "blue"
    # the episode ends: the case clears (a level change is not a resolve)
    done = {**bodies[0], "state": "resolved", "observed_at": bodies[-1]["observed_at"]}
    ingest(store, [done], actor="edge-a")
    assert store.get(case.id)[0].cleared_at is not None
    store.engine.dispose()


@pytest.mark.parametrize("falls", ["keep", "follow"])
def test_a_falling_level_is_recorded_and_lowers_the_case_only_if_the_policy_says(tmp_path, db_url, falls):
    store = make_store(db_url, falls)
    bodies = episode(tmp_path)
    case_id = ingest(store, bodies, actor="edge-a")[0]["case_id"]
    fall = {**bodies[-1], "warning": "yellow", "severity": "minor", "warning_seq": 4, "message": "黄色预警（Ⅲ级）：…"}
    assert ingest(store, [fall], actor="edge-a")[0]["status"] == "updated"
    case, timeline, _ = store.get(case_id)
    lowered = [e.detail for e in timeline if e.action == "warning_lowered"]
    assert [(d["from"], d["to"], d["applied"]) for d in lowered] == [("red", "yellow", falls == "follow")]
    if falls == "keep":
        assert (case.warning, case.severity) == ("red", "critical")
    else:
        assert (case.warning, case.severity) == ("yellow", "minor") and case.title.startswith("黄色预警")
    store.engine.dispose()


def test_a_climb_is_an_event_people_can_be_told_of_and_the_shipped_policy_tells_the_duty_and_leader():
    from hub.policy.notices import kind_of
    assert kind_of("warning_raised", {"from": "orange", "to": "red"}, "flood", "grid-02") == ("warning_raised",
                                                                                              "grid-02")
    assert kind_of("warning_lowered", {"from": "red", "to": "yellow"}, "flood", "grid-02") is None
    import yaml
    policy = yaml.safe_load(open("configs/notify.yaml", encoding="utf-8"))
    told = [r for r in policy["rules"] if "warning_raised" in r["events"]]
    assert told and set(told[0]["to"]) == {"duty", "leader"} and told[0]["urgent"] is True
