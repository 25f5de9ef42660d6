"""The stage model of issue 13 on SQLite and PostgreSQL with an injected clock, through the API: 派单 by a
street's command center (routing leaves citizen reports there), 签收 by a functional department, joint
handling (协办) where the lead's 办结 waits for the assisting department, 核查 by the grid failing the result
back to handling and passing it, 回访 answered 不满意 reopening the case and then 满意 closing it; routing of
sensor alerts to departments with their assisting units; send-back and re-dispatch; 挂起 asked and decided by
the dispatching level; and the role and scope of every new endpoint.

On the main before this change none of it exists: there is no `reported` state, no `dispatch`, `reject`
or `callback` action, no department, routing, part or suspension (the routes answer 404 and alerts open
at the grid)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from hub.stream.events import units_seeing
from tests.hubkit import api_client
from tests.test_case_control import H, T, at, case  # the same clock, keys by name, scheduler step

KEYS = {"edge": ("edge", None), "ops": ("operator", "district-a"), "s1": ("operator", "street-1"),
        "s1b": ("operator", "street-1"), "s2": ("operator", "street-2"), "cg1": ("operator", "dept-cg-1"),
        "cg1b": ("operator", "dept-cg-1"), "cg2": ("operator", "dept-cg-2"), "police": ("operator", "dept-police-1"),
        "gas": ("operator", "dept-gas"), "fire": ("operator", "dept-fire"), "g1": ("operator", "grid-01"),
        "g3": ("operator", "grid-03"), "view-s1": ("viewer", "street-1")}
SLA = {"policies": [
    {"id": "citizen", "match": {"manual": True}, "calendar": "24x7", "callback": True,
     "limits": {"dispatch": "30m", "accept": "1h", "resolve": "1d", "feedback": "4h", "callback": "1d"}},
    {"id": "life-safety", "match": {"categories": ["gas_leak"]}, "calendar": "24x7",
     "limits": {"accept": "5m", "resolve": "1h", "feedback": "1d"}},
    {"id": "flood", "match": {"categories": ["flood"]}, "calendar": "24x7", "callback": True,
     "limits": {"accept": "15m", "resolve": "4h", "feedback": "1d", "callback": "1d"}},
    {"id": "default", "calendar": "24x7", "limits": {"accept": "1h", "resolve": "1d", "feedback": "1d"}}]}


@pytest.fixture
def client(db_url, tmp_path):
    (tmp_path / "sla.yaml").write_text(yaml.safe_dump(SLA, allow_unicode=True))
    with api_client(db_url, KEYS, T, sla=str(tmp_path / "sla.yaml"), routing="routing.yaml") as c:
        yield c


def post(client, path: str, key: str, body: dict | None = None, status: int = 200) -> dict:
    r = client.post(f"/api/v1/cases/{path}", json=body, headers=H(key))
    assert r.status_code == status, r.text
    return r.json()


def report(client, key: str = "g1", grid: str = "grid-01", category: str = "city_management") -> str:
    r = client.post("/api/v1/cases", json={"grid": grid, "category": category, "title": "占道经营 人行道被堵"},
                    headers=H(key))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def stage_states(c: dict) -> dict[str, str]:
    return {s["stage"]: s["state"] for s in c["stages"]}


def gas(aid: str, severity: str = "critical") -> dict:
    return {"alert_id": aid, "state": "firing", "rule_id": "gas-high", "edge_id": "edge-a", "device_id": "gas-03",
            "grid_id": "grid-01", "kind": "sensor", "category": "gas_leak", "severity": severity,
            "started_at": T.isoformat(), "observed_at": T.isoformat(), "value": 6120.0, "message": "CH4 6120 ppm",
            "labels": {}, "evidence": {}}


def test_a_citizen_report_walks_every_stage_with_joint_handling_verification_and_callback(client):
    cid = report(client)
    c = case(client, cid, "s1")
    assert (c["status"], c["owner"], c["clock"]["stage"]) == ("reported", "street-1", "dispatch")
    assert "dispatch" in c["actions"] and "accept" not in c["actions"]
    assert {k: c["timeline"][0]["detail"].get(k) for k in ("route", "dispatch", "owner")} == {
        "route": "citizen-reports", "dispatch": "manual", "owner": "street-1"}
    assert stage_states(c) == {"dispatch": "running", "accept": "waiting", "resolve": "waiting",
                               "feedback": "waiting", "callback": "waiting"}
    at(client, 20)
    assert case(client, cid, "s1")["clock"]["light"] == "yellow"
    at(client, 40)  # 派单 has 30 minutes: the street did not dispatch in time, so the district does
    c = case(client, cid, "s1")
    assert (c["clock"]["light"], c["clock"]["elapsed_s"], c["owner"]) == ("red", 2400.0, "district-a")

    # 派单 by hand: 城管 leads, the police station assists; the sign-for clock starts now
    c = post(client, f"{cid}/dispatch", "ops", {"unit": "dept-cg-1", "assist": ["dept-police-1"],
                                               "note": "占道经营，派出所协助维持秩序"})
    assert (c["status"], c["owner"], c["assist"], c["clock"]["stage"]) == ("open", "dept-cg-1", ["dept-police-1"],
                                                                           "accept")
    assert c["clock"]["elapsed_s"] == 0.0 and c["dispatched_at"] is not None
    assert stage_states(c)["dispatch"] == "done"
    assert [p["unit"] for p in c["parts"]] == ["dept-police-1"]
    police = case(client, cid, "police")  # the assisting unit sees the case and may sign for its part
    assert police["actions"] == [] and {"part_sign", "part_report"} <= set(police["controls"])
    assert client.get("/api/v1/cases", headers=H("police")).json()["cases"][0]["id"] == cid

    at(client, 50)
    post(client, f"{cid}/accept", "cg1")
    post(client, f"{cid}/parts/dept-police-1/sign", "police")
    at(client, 90)
    # the lead may not report the whole result while the police's part is open
    r = client.post(f"/api/v1/cases/{cid}/resolve", json={"note": "已清理"}, headers=H("cg1"))
    assert r.status_code == 409 and r.json()["code"] == "parts_pending"
    assert r.json()["params"]["units"] == ["dept-police-1"]
    c = post(client, f"{cid}/parts/dept-police-1/report", "police", {"note": "已维持秩序，摊主已劝离"})
    assert c["parts"][0]["reported_by"] == "police" and c["parts"][0]["signed_by"] == "police"
    c = post(client, f"{cid}/resolve", "cg1", {"note": "摊位已清理，人行道恢复通行"})
    assert (c["status"], c["clock"]["stage"], c["resolved_by"]) == ("resolved", "feedback", "cg1")

    # 核查: whoever reported cannot verify; the grid where it happened fails it back to handling
    r = client.post(f"/api/v1/cases/{cid}/reject", json={"note": "x"}, headers=H("cg1"))
    assert r.status_code == 409 and r.json()["code"] == "same_person"
    g1 = case(client, cid, "g1")
    assert {"close", "reject"} <= set(g1["actions"])
    at(client, 120)
    c = post(client, f"{cid}/reject", "g1", {"note": "复查：摊位又回来了"})
    assert (c["status"], c["clock"]["stage"], c["rejections"], c["clock"]["elapsed_s"]) == ("accepted", "resolve", 1,
                                                                                            0.0)
    assert c["resolved_by"] is None
    assert case(client, cid, "g1")["actions"] == []  # once handled again, the grid only watches
    at(client, 180)
    post(client, f"{cid}/resolve", "cg1b", {"note": "设置隔离护栏，每日巡查"})
    c = post(client, f"{cid}/close", "g1", {"note": "复查通过"})
    assert (c["status"], c["clock"]["stage"]) == ("verified", "callback")  # the policy asks for a callback

    # 回访: 不满意 reopens (back to handling), then 满意 closes it
    r = client.post(f"/api/v1/cases/{cid}/callback", json={"rating": "great"}, headers=H("s1"))
    assert r.status_code == 422  # not a rating
    r = client.post(f"/api/v1/cases/{cid}/callback", json={}, headers=H("s1"))
    assert r.status_code == 409 and r.json()["code"] == "needs_rating"
    c = post(client, f"{cid}/callback", "s1", {"rating": "unsatisfied", "note": "居民反映晚上仍有摊点"})
    assert (c["status"], c["clock"]["stage"], c["reopened"], c["rating"]) == ("accepted", "resolve", 1, "unsatisfied")
    at(client, 300)
    post(client, f"{cid}/resolve", "cg1", {"note": "夜间增加巡查"})
    post(client, f"{cid}/close", "s1b", {"note": "核查通过"})
    at(client, 360)
    c = post(client, f"{cid}/callback", "s1", {"rating": "satisfied", "note": "居民满意"})
    assert (c["status"], c["rating"], c["clock"]) == ("closed", "satisfied", None)
    assert stage_states(c) == {s: "done" for s in ("dispatch", "accept", "resolve", "feedback", "callback")}
    stages = {s["stage"]: s for s in c["stages"]}
    assert stages["dispatch"]["by"] == "ops" and stages["accept"]["by"] == "cg1" and stages["callback"]["by"] == "s1"
    assert stages["accept"]["late"] is False  # signed 10 minutes after dispatch, within its hour
    actions = [e["action"] for e in c["timeline"]]
    for a in ("opened", "dispatch", "accept", "part_signed", "part_reported", "resolve", "reject", "close",
              "callback"):
        assert a in actions
    assert c["total_s"] == 360 * 60


def test_sensor_alerts_are_routed_to_departments_with_their_assisting_units(client):
    r = client.post("/api/v1/alerts", json={"alerts": [gas("g1"), gas("g2", "major") | {"device_id": "gas-04"}]},
                    headers=H("edge"))
    crit, major = (x["case_id"] for x in r.json()["results"])
    c = case(client, crit)
    assert (c["status"], c["owner"], c["assist"]) == ("open", "dept-gas", ["dept-fire", "dept-emergency"])
    opened = c["timeline"][0]["detail"]
    assert (opened["route"], opened["assist"]) == ("gas-critical", ["dept-fire", "dept-emergency"])
    assert case(client, major)["assist"] == [] and case(client, major)["owner"] == "dept-gas"
    # the lead and the assisting units see it; another street's department does not
    assert "accept" in case(client, crit, "gas")["actions"]
    assert "part_sign" in case(client, crit, "fire")["controls"]
    assert client.get(f"/api/v1/cases/{crit}", headers=H("cg2")).status_code == 404
    ev = {"grid": "grid-01", "owner": "dept-gas", "backup": None, "assist": ["dept-fire"]}
    assert {"dept-gas", "dept-fire", "grid-01", "district-a"} <= units_seeing(client.app.state.hub.store.org, ev)
    # a department not signing in time escalates to the level it is attached to
    at(client, 6)
    assert case(client, crit)["owner"] == "district-a"


def test_a_flood_returning_while_the_result_waits_for_its_callback_reopens_the_case(client):
    flood = gas("f1") | {"category": "flood", "device_id": "wl-07", "severity": "major", "message": "水位 1.2 m"}
    cid = client.post("/api/v1/alerts", json={"alerts": [flood]}, headers=H("edge")).json()["results"][0]["case_id"]
    c = case(client, cid)
    assert (c["owner"], c["assist"]) == ("dept-water", ["dept-emergency"])
    post(client, f"{cid}/parts/dept-emergency/report", "ops", {"note": "沙袋已到位"})
    post(client, f"{cid}/accept", "ops")
    post(client, f"{cid}/resolve", "ops", {"note": "已抽排"})
    assert post(client, f"{cid}/close", "g1")["status"] == "verified"
    at(client, 30)
    again = flood | {"alert_id": "f2", "observed_at": (T + timedelta(minutes=30)).isoformat()}
    r = client.post("/api/v1/alerts", json={"alerts": [again]}, headers=H("edge"))
    assert r.json()["results"][0]["case_id"] == cid
    c = case(client, cid)
    assert (c["status"], c["reopened"], c["verified_at"], c["clock"]["stage"]) == ("accepted", 1, None, "resolve")
    assert c["timeline"][-1]["action"] == "reopened"


def test_a_department_sends_a_case_back_and_the_street_re_dispatches_it(client):
    cid = report(client)
    post(client, f"{cid}/dispatch", "s1", {"unit": "dept-cg-1"})
    at(client, 10)
    c = post(client, f"{cid}/send_back", "cg1", {"reason": "摊主聚众滋事，属公安处置"})
    assert (c["owner"], c["status"]) == ("street-1", "open")
    # the department cannot re-dispatch a case it holds; the street does, with a note
    c = post(client, f"{cid}/dispatch", "s1", {"unit": "dept-police-1", "note": "转派出所"}, status=200)
    assert (c["owner"], c["status"]) == ("dept-police-1", "open")
    entry = c["timeline"][-1]
    assert (entry["action"], entry["detail"]["redispatch"], entry["detail"]["note"]) == ("dispatch", True, "转派出所")
    assert c["clock"]["elapsed_s"] == 600.0  # a re-dispatch does not restart the case's own wait
    r = client.post(f"/api/v1/cases/{cid}/dispatch", json={"unit": "dept-cg-1"}, headers=H("police"))
    assert r.status_code == 403 and r.json()["code"] == "not_dispatcher"


def test_suspension_is_asked_for_and_decided_by_the_dispatching_level(client):
    cid = report(client)
    post(client, f"{cid}/dispatch", "s1", {"unit": "dept-cg-1"})
    post(client, f"{cid}/accept", "cg1")
    r = client.post(f"/api/v1/cases/{cid}/hold", json={"note": "等待产权单位"}, headers=H("cg1"))
    assert r.status_code == 409 and r.json()["code"] == "needs_approval"
    assert "hold" not in case(client, cid, "cg1")["actions"] and "suspension" in case(client, cid, "cg1")["controls"]
    c = post(client, f"{cid}/suspension", "cg1", {"reason": "等待产权单位确认"}, status=201)
    rid = c["requests"][-1]["id"]
    assert c["requests"][-1]["kind"] == "suspension"
    r = client.post(f"/api/v1/cases/{cid}/suspension", json={"reason": "again"}, headers=H("cg1"))
    assert r.status_code == 409 and r.json()["code"] == "request_pending"
    assert client.post(f"/api/v1/cases/{cid}/suspension/{rid}/approve", headers=H("cg1b")).status_code == 403
    assert "decide_suspension" in case(client, cid, "s1")["controls"]
    r = client.post(f"/api/v1/cases/{cid}/suspension/{rid}/refuse", json={"note": "先行处置"}, headers=H("s1"))
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    c = post(client, f"{cid}/suspension", "cg1", {"reason": "等待产权单位确认"}, status=201)
    rid = c["requests"][-1]["id"]
    at(client, 30)
    c = post(client, f"{cid}/suspension/{rid}/approve", "s1", {"note": "同意"})
    assert (c["status"], c["clock"]["paused"]) == ("on_hold", True)
    assert [r["decision"] for r in c["requests"]] == ["refused", "approved"]
    at(client, 90)
    assert case(client, cid)["clock"]["elapsed_s"] == 30 * 60  # paused while suspended
    # the dispatching level holds directly; it is the one that approves
    post(client, f"{cid}/resume", "s1")
    post(client, f"{cid}/hold", "s1", {"note": "上级挂起"})


def test_every_new_endpoint_checks_key_role_and_scope(client):
    cid = report(client)
    post(client, f"{cid}/dispatch", "s1", {"unit": "dept-cg-1", "assist": ["dept-police-1"]})
    routes = [(f"{cid}/parts/dept-police-1/sign", None), (f"{cid}/suspension", {"reason": "x"}),
              (f"{cid}/dispatch", {"unit": "dept-cg-1"}), (f"{cid}/callback", {"rating": "satisfied"}),
              (f"{cid}/reject", {"note": "x"}), (f"{cid}/suspension/1/approve", None),
              (f"{cid}/parts/dept-police-1/report", {"note": "x"})]
    for path, body in routes:
        assert client.post(f"/api/v1/cases/{path}", json=body).status_code == 401, path
        assert client.post(f"/api/v1/cases/{path}", json=body, headers=H("view-s1")).status_code == 403, path
        assert client.post(f"/api/v1/cases/{path}", json=body, headers=H("g3")).status_code == 404, path
    # a part is its own unit's: the lead cannot sign it; an unknown part is 404
    r = client.post(f"/api/v1/cases/{cid}/parts/dept-police-1/sign", headers=H("cg1"))
    assert r.status_code == 403
    assert client.post(f"/api/v1/cases/{cid}/parts/dept-fire/sign", headers=H("s1")).status_code == 404
    # a street may dispatch within its subtree and to the district's departments, not to another street's
    r = client.post(f"/api/v1/cases/{cid}/dispatch", json={"unit": "dept-cg-2"}, headers=H("s1"))
    assert r.status_code == 403 and r.json()["code"] == "transfer_outside"
    assert client.post(f"/api/v1/cases/{cid}/dispatch", json={"unit": "dept-water"}, headers=H("s1")).status_code == 200
    r = client.post(f"/api/v1/cases/{cid}/dispatch", json={"unit": "nowhere"}, headers=H("ops"))
    assert r.status_code == 409 and r.json()["code"] == "needs_unit"


def test_routing_reloads_live_and_a_bad_file_keeps_the_last_good(tmp_path, caplog):
    import shutil

    from gridwatch.core.yamlconf import load
    from hub.files.reload import ConfigWatcher
    from hub.policy.org import Org, OrgFile
    from hub.policy.routing import Routing, load_routing
    from hub.policy.sla import SlaFile
    from hub.store.cases import Store

    for f in ("org.yaml", "sla.yaml", "routing.yaml"):
        shutil.copy(f"configs/{f}", tmp_path / f)
    org = Org(load(OrgFile, tmp_path / "org.yaml"))
    store = Store(None, load(SlaFile, tmp_path / "sla.yaml"), org, {},  # type: ignore[arg-type]
                  routing=load_routing(tmp_path / "routing.yaml", org))
    watcher = ConfigWatcher(store, tmp_path / "org.yaml", tmp_path / "sla.yaml", routing=tmp_path / "routing.yaml")
    place = {"category": "flood", "severity": "major", "grid": "grid-03", "manual": False}
    assert store.routing.place(store.org, **place).owner == "dept-water"
    text = (tmp_path / "routing.yaml").read_text()
    (tmp_path / "routing.yaml").write_text(text.replace("lead_kind: 水务", "lead_kind: 水利"))
    assert watcher.check() == {"routing.yaml": False}
    assert any("routing.yaml:routes[3].lead_kind: no department of kind '水利'" in r.message and "(line " in r.message
               for r in caplog.records)
    assert store.routing.place(store.org, **place).owner == "dept-water"  # the last good routing runs on
    (tmp_path / "routing.yaml").write_text(text.replace("lead_kind: 水务", "lead_kind: 应急"))
    assert watcher.check() == {"routing.yaml": True}
    assert store.routing.place(store.org, **place).owner == "dept-emergency"
    # an org file that would leave the routing pointing nowhere is refused too
    org_text = (tmp_path / "org.yaml").read_text()
    (tmp_path / "org.yaml").write_text("\n".join(line for line in org_text.splitlines() if "kind: 应急" not in line))
    assert watcher.check() == {"org.yaml": False}
    assert "dept-emergency" in store.org.units
    assert isinstance(Routing.empty().place(store.org, **place), type(None))


def test_satisfaction_and_sent_back_in_the_assessment_match_a_brute_force_count(client):
    """回访 ratings and 退回 on a small random data set: the assessment's satisfaction % and sent-back figures
    against a count from each case's own timeline."""
    import random

    rnd = random.Random(13)
    ids = []
    for i in range(24):
        client.clock["now"] = T + timedelta(minutes=i)
        cid = report(client, key="g1")
        ids.append(cid)
        lead = rnd.choice(["dept-cg-1", "dept-police-1"])
        post(client, f"{cid}/dispatch", "s1", {"unit": lead})
        key = "cg1" if lead == "dept-cg-1" else "police"
        if rnd.random() < 0.3:  # sent back, then re-dispatched to the other department
            post(client, f"{cid}/send_back", key, {"reason": "不属本单位"})
            lead = "dept-police-1" if lead == "dept-cg-1" else "dept-cg-1"
            key = "cg1" if lead == "dept-cg-1" else "police"
            post(client, f"{cid}/dispatch", "s1", {"unit": lead})
        if rnd.random() < 0.2:
            continue
        post(client, f"{cid}/accept", key)
        post(client, f"{cid}/resolve", key, {"note": "已处理"})
        post(client, f"{cid}/close", "g1")
        for _ in range(rnd.choice([1, 1, 2])):
            rating = rnd.choice(["satisfied", "basically", "unsatisfied"])
            c = post(client, f"{cid}/callback", "s1", {"rating": rating})
            if c["status"] != "accepted":
                break
            post(client, f"{cid}/resolve", key, {"note": "再次处理"})
            post(client, f"{cid}/close", "g1")
    want: dict[str, dict[str, int]] = {}
    for cid in ids:
        c = case(client, cid)
        w = want.setdefault(c["owner"], {"rated": 0, "satisfied": 0, "sent_back": 0})
        ratings = [e["detail"]["rating"] for e in c["timeline"] if e["action"] == "callback"]
        if ratings:
            w["rated"] += 1
            w["satisfied"] += ratings[-1] in ("satisfied", "basically")
        for e in c["timeline"]:
            if e["action"] == "sent_back":
                want.setdefault(e["detail"]["from"], {"rated": 0, "satisfied": 0, "sent_back": 0})["sent_back"] += 1
    period = {"since": T.isoformat(), "until": (T + timedelta(days=1)).isoformat()}
    got = client.get("/api/v1/assessment", params=period, headers=H("ops")).json()
    rows = {r["unit"]: r for r in got["units"]}
    assert sum(w["sent_back"] for w in want.values()) > 0 and sum(w["rated"] for w in want.values()) > 0
    for unit, w in want.items():
        r = rows[unit]
        assert (r["rated"], r["satisfied"], r["sent_back"]) == (w["rated"], w["satisfied"], w["sent_back"]), unit
        assert r["satisfaction_pct"] == (round(100 * w["satisfied"] / w["rated"], 2) if w["rated"] else None)
    unit = next(u for u, w in want.items() if w["sent_back"])
    behind = client.get("/api/v1/assessment/cases", params={"unit": unit, "measure": "sent_back", **period},
                        headers=H("ops")).json()
    assert len(behind["cases"]) == want[unit]["sent_back"]
    csv_text = client.get("/api/v1/assessment/export", params={"since": T.isoformat()}, headers=H("ops")).text
    assert "退回" in csv_text.splitlines()[0] and "满意率%" in csv_text.splitlines()[0]
