"""The org tree and escalation decisions, without a database or a real clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.errors import ConfigError
from gridwatch.core.yamlconf import load
from hub.policy.calendar import Calendar
from hub.policy.escalation import CaseSituation, decide
from hub.policy.org import Org, OrgFile
from hub.policy.routing import RoutingFile
from hub.policy.sla import SlaFile, stage_clock

ORG = Org(load(OrgFile, "configs/org.yaml"))
T = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def reading(elapsed: float, paused: bool = False):
    from hub.policy.sla import Pause

    pauses = [Pause(T + timedelta(seconds=elapsed))] if paused else []
    return stage_clock(started=T, limit_s=600, yellow_at=0.5, calendar=Calendar.always(),
                       now=T + timedelta(seconds=elapsed + (10 if paused else 0)), pauses=pauses)


def case(owner: str, stage: str = "accept", backup_notified: bool = False, last_reminder=None):
    return CaseSituation(owner, "grid-01", stage, backup_notified, last_reminder)  # type: ignore[arg-type]


def test_tree_lookups():
    assert ORG.chain("grid-01") == ["grid-01", "community-11", "street-1", "district-a"]
    assert ORG.subtree("street-2") == {"street-2", "community-21", "grid-03", "grid-07", "dept-cg-2"}
    assert ORG.within("grid-07", "district-a") and not ORG.within("grid-07", "street-1")
    assert ORG.owner_at("grid-03", "street") == "street-2"


def test_nothing_before_red_or_while_on_hold():
    assert decide(case("grid-01"), reading(400), ORG, now=T, remind_every_s=60) is None
    assert decide(case("grid-03"), reading(700, paused=True), ORG, now=T, remind_every_s=60) is None


def test_grid_with_backup_notifies_backup_first_then_escalates():
    d = decide(case("grid-01"), reading(700), ORG, now=T, remind_every_s=60)
    assert (d.action, d.unit) == ("notify_backup", "grid-02")
    d = decide(case("grid-01", backup_notified=True), reading(700), ORG, now=T, remind_every_s=60)
    assert (d.action, d.unit) == ("escalate", "community-11")


def test_accepted_but_not_resolved_escalates_up_the_chain():
    for owner, parent in [("grid-03", "community-21"), ("community-21", "street-2"), ("street-2", "district-a")]:
        d = decide(case(owner, stage="resolve"), reading(700), ORG, now=T, remind_every_s=60)
        assert (d.action, d.unit) == ("escalate", parent) and "not resolved in time" in d.reason


def test_district_gets_reminders_at_the_set_interval():
    d = decide(case("district-a"), reading(700), ORG, now=T, remind_every_s=300)
    assert (d.action, d.unit) == ("remind", "district-a")
    assert decide(case("district-a", last_reminder=T - timedelta(seconds=100)), reading(700), ORG,
                  now=T, remind_every_s=300) is None
    assert decide(case("district-a", last_reminder=T - timedelta(seconds=300)), reading(700), ORG,
                  now=T, remind_every_s=300).action == "remind"


@pytest.mark.parametrize(("units", "expected"), [
    ("[{id: d, level: district}, {id: g, level: grid, parent: d}]", "a grid's parent must be a community"),
    ("[{id: d, level: district}, {id: d, level: street, parent: d}]", "duplicate unit id 'd'"),
    ("[{id: s, level: street, parent: nowhere}]", "parent 'nowhere' is not a unit"),
    ("[{id: d, level: district}, {id: s, level: street, parent: d, backup: d}]", "backup must name another grid"),
])
def test_bad_org_files(tmp_path, units, expected):
    f = tmp_path / "org.yaml"
    f.write_text(f"units: {units}\n")
    with pytest.raises(ConfigError) as exc:
        load(OrgFile, f)
    assert expected in str(exc.value) and str(f) in str(exc.value)


LIMITS = "limits: {accept: 1h, resolve: 1d, feedback: 1h}"


@pytest.mark.parametrize(("model", "text", "expected"), [
    (SlaFile, f"policies: [{{id: a, {LIMITS}}}, {{id: b, {LIMITS}}}, {{id: a, {LIMITS}}}]", "duplicate policy id 'a'"),
    (RoutingFile, "routes: [{id: r, lead: g}, {id: s, lead: g}, {id: s, lead: h}, {id: r, lead: g}]",
     "duplicate route id 's'"),
])
def test_an_sla_or_routing_file_naming_an_id_twice_is_refused_with_the_first_repeat(tmp_path, model, text, expected):
    f = tmp_path / "file.yaml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError) as exc:
        load(model, f)
    assert expected in str(exc.value) and str(f) in str(exc.value)
