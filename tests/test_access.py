"""The access policy (`hub.policy.access`) as a table: every role × relation to a case × action, with what the
command centers' practice says each may do, written out by hand below (not derived from the policy); and,
through the API, that the map, the list, the page and the stream all follow it (a backup grid sees the case
it was offered on the map too: on the main before `hub.policy.access`, the map's own copy of the visibility rule
left out the backup grid and the assisting units)."""

from __future__ import annotations

from typing import Any

import pytest

from hub.policy import access
from hub.policy.access import Principal
from hub.policy.lifecycle import ACTIONS
from hub.policy.org import Org, OrgFile
from hub.store.models import Case
from tests.hubkit import api_client
from tests.test_case_control import KEYS, H, T, alert, at, send

ORG = Org(OrgFile.model_validate({"units": [
    {"id": "district-a", "level": "district"},
    {"id": "street-1", "level": "street", "parent": "district-a"},
    {"id": "community-1", "level": "community", "parent": "street-1"},
    {"id": "grid-01", "level": "grid", "parent": "community-1"},
    {"id": "grid-02", "level": "grid", "parent": "community-1"},
    {"id": "community-2", "level": "community", "parent": "street-1"},
    {"id": "grid-03", "level": "grid", "parent": "community-2"},
    {"id": "dept-gas", "level": "department", "kind": "燃气", "parent": "street-1"},
    {"id": "dept-fire", "level": "department", "kind": "消防", "parent": "district-a"},
]}))


def a_case(**kw: Any) -> Case:
    fields: dict[str, Any] = dict(id="c1", owner="grid-01", grid="grid-01", status="open", held_from=None,
                                  backup=None, assist=None, resolved_by=None, extensions=0, policy={})
    fields.update(kw)
    return Case(**fields)


# relation -> (the caller's unit, the case as it stands, the parts of joint handling)
SITUATIONS: dict[str, tuple[str | None, Case, list[access.Part]]] = {
    # the whole tree (an admin, a district-wide key): everything the state allows
    "tree": (None, a_case(), []),
    # the grid holding the case it was given: signs for it, may not dispatch, hold or decide its own 挂起
    "own": ("grid-01", a_case(), []),
    # the community above the grid: dispatches, holds, transfers, orders 督办
    "above": ("community-1", a_case(), []),
    # the backup grid (AB角) offered the case: sign for it or comment
    "backup": ("grid-02", a_case(backup="grid-02"), []),
    # the grid where a department's result is to be verified (核查)
    "verifier": ("grid-01", a_case(owner="dept-gas", status="resolved", resolved_by="gas-worker"), []),
    # the same grid, when its own person reported the result: separation of duties
    "reporter": ("grid-01", a_case(owner="dept-gas", status="resolved", resolved_by="me"), []),
    # an assisting unit (协办): sees the case, signs for and reports its part, acts on nothing else
    "assist": ("dept-fire", a_case(owner="dept-gas", status="accepted", assist=["dept-fire"]),
               [access.Part("dept-fire", signed=False, reported=False)]),
    # the grid where it happened while a department handles it: sees, does not act
    "witness": ("grid-01", a_case(owner="dept-gas", status="accepted"), []),
    # another community's grid: the case does not exist for it
    "outside": ("grid-03", a_case(), []),
}

# what an operator may do in each situation ("view" = sees it; the rest: lifecycle actions and controls)
OPERATOR: dict[str, set[str]] = {
    "tree": {"view", "dispatch", "accept", "hold", "transfer", "comment", "extension", "supervise"},
    "own": {"view", "accept", "transfer", "comment", "extension", "suspension", "send_back"},
    "above": {"view", "dispatch", "accept", "hold", "transfer", "comment", "extension", "supervise"},
    "backup": {"view", "accept", "comment"},
    "verifier": {"view", "close", "reject", "comment"},
    "reporter": {"view", "comment"},
    "assist": {"view", "part_sign", "part_report"},
    "witness": {"view"},
    "outside": set(),
}
# the relation access.relation names for each situation
RELATION = {"tree": "tree", "own": "holder", "above": "holder", "backup": "backup", "verifier": "verifier",
            "reporter": "verifier", "assist": "assist", "witness": "witness", "outside": "outside"}
CONTROLS = ("extension", "decide_extension", "decide_suspension", "suspension", "send_back", "supervise",
            "reply_supervision", "part_sign", "part_report")
EVERYTHING = ("view", *ACTIONS, *CONTROLS)


def expected(role: str, situation: str) -> set[str]:
    if role == "operator" or role == "admin":
        return OPERATOR[situation]
    if role == "viewer":
        return OPERATOR[situation] & {"view"}
    return set()  # an edge key only sends alerts and heartbeats


def granted(who: Principal, case: Case, parts: list[access.Part]) -> set[str]:
    out = {"view"} if access.sees(ORG, who, case) else set()
    out |= set(access.allowed(ORG, who, case))
    out |= set(access.controls(ORG, who, case, [], parts))
    return out


# an admin has no unit (the whole tree), so it meets a case only in the "tree" situation
COMBINATIONS = [(role, sit) for role in ("operator", "viewer", "edge") for sit in SITUATIONS] + [("admin", "tree")]


@pytest.mark.parametrize("role,situation", COMBINATIONS)
@pytest.mark.parametrize("action", EVERYTHING)
def test_the_policy_table(role: str, situation: str, action: str) -> None:
    unit, case, parts = SITUATIONS[situation]
    who = Principal("me", role, unit)  # type: ignore[arg-type]
    assert (action in granted(who, case, parts)) == (action in expected(role, situation)), (role, situation, action)


@pytest.mark.parametrize("situation", SITUATIONS)
def test_relations_and_the_routes_gate_agree_with_the_table(situation: str) -> None:
    unit, case, _ = SITUATIONS[situation]
    who = Principal("me", "operator", unit)
    assert access.relation(ORG, who, case) == RELATION[situation]
    for action in access.allowed(ORG, who, case):  # what the page offers, the route lets through
        assert access.may_take(ORG, who, case, action) is not None, (situation, action)
    # the stream's and the MQTT topics' turned-round rule names the caller's unit exactly when it sees the case
    seeing = access.units_seeing(ORG, owner=case.owner, grid=case.grid, backup=case.backup, assist=case.assist or ())
    assert (unit is None or unit in seeing) == access.sees(ORG, who, case)


def test_waiting_requests_move_the_controls() -> None:
    """A 延期 waiting: the holder may not ask again, the level above (not the asker) decides it; an open 督办
    order: the holder replies."""
    case = a_case(status="accepted")
    waiting = [access.Waiting("extension", "grid-worker"), access.Waiting("supervision", "community-boss")]
    own = access.controls(ORG, Principal("grid-worker", "operator", "grid-01"), case, waiting, [])
    above = access.controls(ORG, Principal("community-boss", "operator", "community-1"), case, waiting, [])
    assert "extension" not in own and "decide_extension" not in own and "reply_supervision" in own
    assert "decide_extension" in above
    asker = access.controls(ORG, Principal("grid-worker", "operator", "community-1"), case, waiting, [])
    assert "decide_extension" not in asker  # nobody decides their own request


# ---- through the API: the list, the page, the map and the stream follow the policy --------------------------
@pytest.fixture
def client(db_url):
    with api_client(db_url, KEYS, T) as c:
        yield c


def test_a_backup_grid_sees_the_case_it_was_offered_in_the_list_on_the_page_on_the_map_and_in_the_stream(client):
    r = client.put("/api/v1/devices/gas-03", headers=H("ops"), json={
        "id": "gas-03", "grid": "grid-01", "name": "3号燃气探头", "lat": 31.23, "lon": 121.47})
    assert r.status_code == 200, r.text
    cid = send(client, alert("m1"))[0]["case_id"]

    def on_map(key: str) -> list[str]:
        r = client.get("/api/v1/map", headers=H(key))
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["cases"]]
    assert on_map("ops-g1") == [cid] and on_map("ops-g2") == []  # not offered yet
    at(client, 5)  # grid-01 did not sign within 5 minutes: its backup grid-02 is asked (AB角)
    assert client.get(f"/api/v1/cases/{cid}", headers=H("ops-g2")).status_code == 200
    assert [c["id"] for c in client.get("/api/v1/cases", headers=H("ops-g2")).json()["cases"]] == [cid]
    assert on_map("ops-g2") == [cid] and on_map("view-g2") == [cid]
    assert on_map("ops-g3") == []  # another community's grid still sees nothing
    store = client.app.state.hub.store
    scope = access.scope(store.org, Principal("ops-g2", "operator", "grid-02"))
    assert any(e.case.id == cid for e in store.events_after(0, scope))


def test_an_assisting_unit_sees_its_case_on_the_map(db_url):
    """A critical gas leak is routed to the gas company with the fire brigade and 应急 assisting (the shipped
    routing): the fire brigade finds it on its map as in its list; another department does not."""
    keys = {"edge": ("edge", None), "ops": ("operator", "district-a"), "fire": ("viewer", "dept-fire"),
            "water": ("viewer", "dept-water")}
    with api_client(db_url, keys, T, routing="routing.yaml") as client:
        r = client.put("/api/v1/devices/gas-03", headers=H("ops"), json={
            "id": "gas-03", "grid": "grid-01", "name": "3号燃气探头", "lat": 31.23, "lon": 121.47})
        assert r.status_code == 200, r.text
        cid = send(client, alert("m2"))[0]["case_id"]
        c = client.get(f"/api/v1/cases/{cid}", headers=H("fire")).json()
        assert c["owner"] == "dept-gas" and "dept-fire" in c["assist"]
        for key, sees in (("fire", True), ("water", False)):
            listed = [x["id"] for x in client.get("/api/v1/cases", headers=H(key)).json()["cases"]]
            mapped = [m["id"] for m in client.get("/api/v1/map", headers=H(key)).json()["cases"]]
            assert (cid in listed, cid in mapped) == (sees, sees), key
