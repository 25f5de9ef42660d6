"""Case control as command centers practise it (issue 13, its measured gaps), on SQLite and PostgreSQL with an
injected clock, through the API: the stage clock and the light are not restarted by an escalation (the
case shows how long it has waited and its deadline), the backup grid (AB角) sees a case it is offered and
can sign for it, a condition returning after the result was reported reopens the case, a return after
closing opens a linked repeat case (重复件), and whoever reported the result cannot also close it.

Each of these fails on the main before this change: the escalated case showed green 0:00:00, the backup
grid got 404, the returned gas leak only logged `condition_returned` on a resolved case, the new case was
not linked, and one key could resolve and close alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.cases.scheduler import Scheduler
from hub.stream.events import event_body, units_seeing
from tests.hubkit import api_client

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEYS = {"edge": ("edge", None), "ops": ("operator", "district-a"), "ops-2": ("operator", "district-a"),
        "ops-g1": ("operator", "grid-01"), "ops-g2": ("operator", "grid-02"), "ops-g3": ("operator", "grid-03"),
        "view-g2": ("viewer", "grid-02")}


def H(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


@pytest.fixture
def client(db_url):
    with api_client(db_url, KEYS, T) as c:
        yield c


def alert(aid: str, grid: str = "grid-01", device: str = "gas-03", state: str = "firing",
          at: datetime = T) -> dict:
    return {"alert_id": aid, "state": state, "rule_id": "gas-high", "edge_id": "edge-a", "device_id": device,
            "grid_id": grid, "kind": "sensor", "category": "gas_leak", "severity": "critical",
            "started_at": at.isoformat(), "observed_at": at.isoformat(), "value": 6120.0,
            "message": "CH4 6120 ppm", "labels": {}, "evidence": {}}


def send(client, *alerts: dict) -> list[dict]:
    r = client.post("/api/v1/alerts", json={"alerts": list(alerts)}, headers=H("edge"))
    assert r.status_code == 200, r.text
    return r.json()["results"]


def at(client, minutes: float) -> None:
    """Move the hub's clock to T + minutes and run what falls due."""
    client.clock["now"] = T + timedelta(minutes=minutes)
    Scheduler(client.app.state.hub.store).run_due()


def case(client, case_id: str, key: str = "ops") -> dict:
    r = client.get(f"/api/v1/cases/{case_id}", headers=H(key))
    assert r.status_code == 200, r.text
    return r.json()


def test_an_escalated_case_keeps_its_stage_clock_light_and_deadline(client):
    """life-safety: accept within 5 minutes. The grid does not accept: at 5 min its backup is asked, then
    each level gets its own 5 minutes; the case itself stays red and shows 20 minutes waited."""
    cid = send(client, alert("g1"))[0]["case_id"]
    for minute in (2.5, 5, 10, 15, 20):
        at(client, minute)
    c = case(client, cid)
    assert (c["owner"], c["escalations"]) == ("district-a", 3)
    clock = c["clock"]
    assert (clock["stage"], clock["light"]) == ("accept", "red")
    assert clock["elapsed_s"] == 1200.0 and clock["remaining_s"] == -900.0  # 已挂单 20 min, 15 min overdue
    assert datetime.fromisoformat(clock["deadline"]) == T + timedelta(minutes=5)  # 限期: fixed, not moved
    assert clock["owner_elapsed_s"] == 0.0  # the district got it just now
    assert c["total_s"] == 1200.0
    lights = [e["detail"]["light"] for e in c["timeline"] if e["action"] == "light"]
    assert lights == ["yellow", "red"]  # never green again
    at(client, 22)
    assert case(client, cid)["clock"]["owner_elapsed_s"] == 120.0


def test_the_backup_grid_sees_is_told_and_signs_for_a_case(client):
    cid = send(client, alert("b1"))[0]["case_id"]  # grid-01, whose backup (AB角) is grid-02
    assert client.get(f"/api/v1/cases/{cid}", headers=H("ops-g2")).status_code == 404  # not offered yet
    at(client, 5)  # grid-01 did not sign within 5 minutes: grid-02 is asked
    c = case(client, cid, "ops-g2")
    assert c["backup"] == "grid-02" and c["owner"] == "grid-01"
    assert c["actions"] == ["accept", "comment"]  # it may sign for it, nothing else
    assert [cc["id"] for cc in client.get("/api/v1/cases", headers=H("ops-g2")).json()["cases"]] == [cid]
    assert client.get(f"/api/v1/cases/{cid}", headers=H("view-g2")).status_code == 200
    # told: the backup_notified event goes to grid-02's stream and MQTT topic
    ev = next(e for e in client.app.state.hub.store.events_after(0, {"grid-02"}) if e.entry.action == "backup_notified")
    assert "grid-02" in units_seeing(client.app.state.hub.store.org, event_body(ev))
    # the backup may not do the owner's work
    r = client.post(f"/api/v1/cases/{cid}/transfer", json={"unit": "grid-02"}, headers=H("ops-g2"))
    assert r.status_code == 403 and r.json()["code"] == "held_elsewhere"
    assert client.get(f"/api/v1/cases/{cid}", headers=H("ops-g3")).status_code == 404  # others still do not see it
    r = client.post(f"/api/v1/cases/{cid}/accept", json={"note": "二网格代为签收"}, headers=H("ops-g2"))
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["status"], c["owner"]) == ("accepted", "grid-02")
    signed = c["timeline"][-1]
    assert (signed["actor"], signed["action"], signed["detail"]["as_backup"], signed["detail"]["from"]) == (
        "ops-g2", "accept", True, "grid-01")
    assert "resolve" in c["actions"]  # its own case now
    # a case grid-02 was never offered stays out of its reach
    other = send(client, alert("b2", grid="grid-03", device="gas-30"))[0]["case_id"]
    assert client.post(f"/api/v1/cases/{other}/accept", headers=H("ops-g2")).status_code == 404


def test_a_backup_cannot_sign_once_the_owner_has(client):
    cid = send(client, alert("b3"))[0]["case_id"]
    at(client, 5)
    assert client.post(f"/api/v1/cases/{cid}/accept", headers=H("ops-g1")).status_code == 200  # the owner, late
    r = client.post(f"/api/v1/cases/{cid}/accept", headers=H("ops-g2"))
    assert r.status_code == 403 and r.json()["code"] == "held_elsewhere"
    assert case(client, cid, "ops-g2")["actions"] == []


def test_a_condition_returning_after_the_result_reopens_the_case(client):
    cid = send(client, alert("r1"))[0]["case_id"]
    client.post(f"/api/v1/cases/{cid}/accept", headers=H("ops"))
    send(client, alert("r1", state="resolved", at=T + timedelta(minutes=3)))
    at(client, 20)
    assert client.post(f"/api/v1/cases/{cid}/resolve", json={"note": "阀门已关闭"}, headers=H("ops")).status_code == 200
    at(client, 30)
    res = send(client, alert("r2", at=T + timedelta(minutes=30)))[0]  # the gas is back, new episode
    assert (res["case_id"], res["status"]) == (cid, "merged")
    c = case(client, cid)
    assert (c["status"], c["reopened"], c["resolved_at"], c["resolved_by"]) == ("accepted", 1, None, None)
    assert [e["action"] for e in c["timeline"]][-3:] == ["merged", "condition_returned", "reopened"]
    assert (c["clock"]["stage"], c["clock"]["elapsed_s"], c["clock"]["light"]) == ("resolve", 0.0, "green")
    assert "resolve" in c["actions"] and "close" not in c["actions"]


def test_a_return_after_closing_opens_a_linked_repeat_case(client):
    first = send(client, alert("p1"))[0]["case_id"]
    for action, key in (("accept", "ops"), ("resolve", "ops"), ("close", "ops-2")):
        r = client.post(f"/api/v1/cases/{first}/{action}", json={"note": "ok"}, headers=H(key))
        assert r.status_code == 200, r.text
    client.clock["now"] = T + timedelta(days=3)
    again = send(client, alert("p2", at=T + timedelta(days=3)))[0]
    assert again["status"] == "created" and again["case_id"] != first
    c = case(client, again["case_id"])
    assert c["repeat_of"] == first
    assert [e["action"] for e in c["timeline"]][:2] == ["opened", "repeat"]
    # another place, or the same place long after (life-safety keeps the default 30 days), is no repeat
    other = send(client, alert("p3", device="gas-04", at=T + timedelta(days=3)))[0]["case_id"]
    assert case(client, other)["repeat_of"] is None
    second = again["case_id"]
    for action, key in (("accept", "ops"), ("resolve", "ops"), ("close", "ops-2")):
        client.post(f"/api/v1/cases/{second}/{action}", json={"note": "ok"}, headers=H(key))
    client.clock["now"] = T + timedelta(days=40)
    late = send(client, alert("p4", at=T + timedelta(days=40)))[0]["case_id"]
    assert case(client, late)["repeat_of"] is None


def test_whoever_reports_the_result_cannot_also_close_it(client):
    cid = send(client, alert("s1"))[0]["case_id"]
    client.post(f"/api/v1/cases/{cid}/accept", headers=H("ops"))
    assert client.post(f"/api/v1/cases/{cid}/resolve", json={"note": "done"}, headers=H("ops")).status_code == 200
    assert "close" not in case(client, cid, "ops")["actions"]
    assert "close" in case(client, cid, "ops-2")["actions"]
    r = client.post(f"/api/v1/cases/{cid}/close", headers=H("ops"))
    assert r.status_code == 409 and r.json()["code"] == "same_person"
    r = client.post(f"/api/v1/cases/{cid}/close", json={"note": "回访满意"}, headers=H("ops-2"))
    assert r.status_code == 200 and r.json()["status"] == "closed"


def ext(client, cid: str, until: datetime, key: str, reason: str = "等待燃气公司更换阀门"):
    return client.post(f"/api/v1/cases/{cid}/extension", json={"reason": reason, "until": until.isoformat()},
                       headers=H(key))


def test_an_extension_asked_by_the_grid_and_approved_above_moves_the_deadline(client):
    """life-safety: resolve within 1 h of accepting. grid-01 accepts at once, asks at 30 min for the deadline
    to be 3 h; it cannot approve its own request; the district approves; nothing escalates at 61 min; the
    light and the escalation follow the new deadline."""
    cid = send(client, alert("e1"))[0]["case_id"]
    assert client.post(f"/api/v1/cases/{cid}/accept", headers=H("ops-g1")).status_code == 200
    at(client, 30)
    r = ext(client, cid, T + timedelta(hours=3), "ops-g1")
    assert r.status_code == 201, r.text
    req = r.json()["requests"][0]
    assert (req["decision"], req["requested_by"], req["stage"]) == (None, "ops-g1", "resolve")
    assert ext(client, cid, T + timedelta(hours=4), "ops-g1").json()["code"] == "request_pending"
    queue = client.get("/api/v1/requests", headers=H("ops")).json()
    assert [(q["case"]["id"], q["can_decide"]) for q in queue] == [(cid, True)]
    assert [q["can_decide"] for q in client.get("/api/v1/requests", headers=H("ops-g1")).json()] == [False]
    assert client.get("/api/v1/requests", headers=H("ops-g3")).json() == []
    path = f"/api/v1/cases/{cid}/extension/{req['id']}"
    r = client.post(f"{path}/approve", headers=H("ops-g1"))
    assert r.status_code == 403 and r.json()["code"] == "not_dispatcher"
    assert client.post(f"{path}/approve", headers=H("ops-g3")).status_code == 404  # not even visible
    assert client.post(f"{path}/approve", headers=H("view-g2")).status_code == 403
    r = client.post(f"{path}/approve", json={"note": "同意延期至15时"}, headers=H("ops"))
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["extensions"] == 1 and c["requests"][0]["decision"] == "approved"
    assert datetime.fromisoformat(c["clock"]["deadline"]) == T + timedelta(hours=3)
    assert c["clock"]["remaining_s"] == 9000.0  # 3 h limit now, 30 min gone
    assert client.post(f"{path}/refuse", headers=H("ops")).json()["code"] == "decided"
    assert client.get("/api/v1/requests", headers=H("ops")).json() == []
    at(client, 61)
    c = case(client, cid)
    assert (c["owner"], c["escalations"], c["clock"]["light"]) == ("grid-01", 0, "green")
    at(client, 181)
    c = case(client, cid)
    assert c["owner"] == "community-11" and c["clock"]["light"] == "red"


def test_extensions_refused_limited_and_checked(client):
    cid = send(client, alert("e2"))[0]["case_id"]
    client.post(f"/api/v1/cases/{cid}/accept", headers=H("ops-g1"))
    assert ext(client, cid, T + timedelta(minutes=30), "ops-g1").json()["code"] == "not_later"  # before 1 h
    assert client.post(f"/api/v1/cases/{cid}/extension", json={"reason": "x", "until": "2026-11-23T05:00:00"},
                       headers=H("ops-g1")).status_code == 422  # a deadline without its offset
    assert ext(client, cid, T + timedelta(hours=2), "view-g2").status_code == 403
    assert ext(client, cid, T + timedelta(hours=2), "ops-g3").status_code == 404
    anonymous = client.post(f"/api/v1/cases/{cid}/extension", json={"reason": "x", "until": T.isoformat()})
    assert anonymous.status_code == 401
    # refused: the deadline stays
    rid = ext(client, cid, T + timedelta(hours=2), "ops-g1").json()["requests"][-1]["id"]
    r = client.post(f"/api/v1/cases/{cid}/extension/{rid}/refuse", json={"note": "不予延期"}, headers=H("ops"))
    assert r.status_code == 200 and r.json()["requests"][-1]["decision"] == "refused"
    assert datetime.fromisoformat(r.json()["clock"]["deadline"]) == T + timedelta(hours=1)
    # whoever asked cannot decide: the district asks for a case it holds, a colleague decides
    rid = ext(client, cid, T + timedelta(hours=2), "ops").json()["requests"][-1]["id"]
    r = client.post(f"/api/v1/cases/{cid}/extension/{rid}/approve", headers=H("ops"))
    assert r.status_code == 409 and r.json()["code"] == "same_person"
    assert client.post(f"/api/v1/cases/{cid}/extension/{rid}/approve", headers=H("ops-2")).status_code == 200
    rid = ext(client, cid, T + timedelta(hours=3), "ops-g1").json()["requests"][-1]["id"]
    assert client.post(f"/api/v1/cases/{cid}/extension/{rid}/approve", headers=H("ops")).status_code == 200
    r = ext(client, cid, T + timedelta(hours=4), "ops-g1")  # life-safety allows two
    assert r.status_code == 409 and r.json()["code"] == "extensions_used"
    assert client.post(f"/api/v1/cases/{cid}/extension/999/approve", headers=H("ops")).status_code == 404
    names = [e["action"] for e in case(client, cid)["timeline"]]
    assert names.count("extension_requested") == 3 and names.count("extension_approved") == 2
    assert names.count("extension_refused") == 1


def test_a_supervision_order_from_above_is_answered_late_and_counted(client):
    """督办: the district orders grid-01's case with a 30-minute reply deadline; grid-01 cannot order itself;
    the order waits in grid-01's queue; the reply after 40 minutes is marked late; the case is flagged and
    counted in the assessment."""
    cid = send(client, alert("v1"))[0]["case_id"]
    body = {"order": "立即组织排查并回复处置进展", "until": (T + timedelta(minutes=30)).isoformat()}
    r = client.post(f"/api/v1/cases/{cid}/supervise", json=body, headers=H("ops-g1"))
    assert r.status_code == 403 and r.json()["code"] == "not_dispatcher"
    assert client.post(f"/api/v1/cases/{cid}/supervise", json=body, headers=H("ops-g3")).status_code == 404
    assert client.post(f"/api/v1/cases/{cid}/supervise", json=body, headers=H("view-g2")).status_code == 403
    assert "supervise" in case(client, cid, "ops")["controls"]
    r = client.post(f"/api/v1/cases/{cid}/supervise", json=body, headers=H("ops"))
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["supervisions"] == 1
    order = c["requests"][0]
    assert (order["kind"], order["decision"], order["reason"]) == ("supervision", None, body["order"])
    mine = client.get("/api/v1/requests", headers=H("ops-g1")).json()
    assert [(q["kind"], q["can_decide"]) for q in mine] == [("supervision", True)]  # the holder answers it
    assert "reply_supervision" in case(client, cid, "ops-g1")["controls"]
    client.clock["now"] = T + timedelta(minutes=40)
    path = f"/api/v1/cases/{cid}/supervise/{order['id']}/reply"
    assert client.post(path, json={"note": "x"}, headers=H("ops-g3")).status_code == 404
    r = client.post(path, json={"note": "已排查，阀门更换中"}, headers=H("ops-g1"))
    assert r.status_code == 200, r.text
    answered = r.json()["requests"][0]
    assert (answered["decision"], answered["late"], answered["decided_by"]) == ("replied", True, "ops-g1")
    assert client.post(path, json={"note": "again"}, headers=H("ops-g1")).json()["code"] == "decided"
    assert client.get("/api/v1/requests", headers=H("ops-g1")).json() == []
    units = client.get("/api/v1/assessment", params={"since": T.isoformat()}, headers=H("ops")).json()["units"]
    assert [(u["unit"], u["supervised"]) for u in units] == [("grid-01", 1)]
    behind = client.get("/api/v1/assessment/cases", params={"unit": "grid-01", "measure": "supervised",
                                                            "since": T.isoformat()}, headers=H("ops")).json()
    assert behind["cases"] == [cid]


def test_a_grid_sends_a_case_back_within_its_sign_for_limit(client):
    """退回: grid-01 hands back a case that is not its own within the 5-minute sign-for limit; it goes to the
    community, which transfers it to grid-02; the case's clock runs on; nobody above may send it back for
    the grid, and after the limit it is too late."""
    cid = send(client, alert("k1"))[0]["case_id"]
    assert "send_back" in case(client, cid, "ops-g1")["controls"]
    assert "send_back" not in case(client, cid, "ops")["controls"]
    r = client.post(f"/api/v1/cases/{cid}/send_back", json={"reason": "x"}, headers=H("ops"))
    assert r.status_code == 403
    assert client.post(f"/api/v1/cases/{cid}/send_back", json={"reason": "x"}, headers=H("ops-g3")).status_code == 404
    at(client, 2)
    r = client.post(f"/api/v1/cases/{cid}/send_back", json={"reason": "管道属二网格辖区"}, headers=H("ops-g1"))
    assert r.status_code == 200, r.text
    c = r.json()
    assert (c["owner"], c["status"], c["escalations"]) == ("community-11", "open", 0)
    sent = c["timeline"][-1]
    assert (sent["action"], sent["detail"]["from"]) == ("sent_back", "grid-01")
    assert sent["detail"]["reason"] == "管道属二网格辖区"
    assert c["clock"]["elapsed_s"] == 120.0  # the case's own wait is not reset
    mine = case(client, cid, "ops-g1")  # it happened in grid-01, which still sees it but holds it no more
    assert mine["actions"] == [] and mine["controls"] == []
    r = client.post(f"/api/v1/cases/{cid}/transfer", json={"unit": "grid-02", "note": "改派二网格"}, headers=H("ops"))
    assert r.status_code == 200 and r.json()["owner"] == "grid-02"
    # grid-02's own limit runs from the re-dispatch; too late once it has passed
    at(client, 8)
    r = client.post(f"/api/v1/cases/{cid}/send_back", json={"reason": "也不是我们的"}, headers=H("ops-g2"))
    assert r.status_code == 409 and r.json()["code"] == "too_late", r.text
    client.post(f"/api/v1/cases/{cid}/accept", headers=H("ops-g2"))
    r = client.post(f"/api/v1/cases/{cid}/send_back", json={"reason": "x"}, headers=H("ops-g2"))
    assert r.status_code == 409 and r.json()["code"] == "wrong_state"
