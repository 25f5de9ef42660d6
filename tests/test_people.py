"""People, not only keys (issue 13), on SQLite and PostgreSQL: accounts managed by an administrator through
the API without a restart, sign-in sessions, the timeline naming the person, separation of duties between
people, machine keys added and withdrawn live, and cases assigned to a person of the owning unit. Roles and
scopes: 401 without a valid session or key, 403 for the wrong role, 404 outside the caller's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.store.models import User, UserSession
from tests.hubkit import api_client, person_sign_in

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEYS = {"edge": ("edge", None), "admin": ("admin", None), "ops": ("operator", "district-a")}


def H(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(db_url):
    with api_client(db_url, KEYS, T, limits={"auth_failures": 4}) as c:
        yield c


def alert(aid: str, grid: str = "grid-01", device: str = "gas-03") -> dict:
    return {"alert_id": aid, "state": "firing", "rule_id": "gas-high", "edge_id": "edge-a", "device_id": device,
            "grid_id": grid, "kind": "sensor", "category": "gas_leak", "severity": "critical",
            "started_at": T.isoformat(), "observed_at": T.isoformat(), "value": 1.0, "message": "m",
            "labels": {}, "evidence": {}}


def add(client, username: str, name: str, unit: str | None, role: str = "operator", password: str = "S3cret-pw-2026"):
    r = client.post("/api/v1/users", json={"username": username, "name": name, "unit": unit, "role": role,
                                          "password": password}, headers=H("admin"))
    assert r.status_code == 201, r.text
    return r.json()


def login(client, username: str, password: str = "S3cret-pw-2026") -> str:
    """A full session of the person (operators with their second factor, as by default)."""
    r = person_sign_in(client.post, username, password, now=client.clock["now"])
    assert r.status_code == 200, r.text
    return r.json()["token"]


def case_of(client, aid: str, **kw) -> str:
    r = client.post("/api/v1/alerts", json={"alerts": [alert(aid, **kw)]}, headers=H("edge"))
    return r.json()["results"][0]["case_id"]


def test_an_administrator_adds_people_who_sign_in_and_see_their_unit(client):
    add(client, "zhang.wei", "张伟", "grid-01")
    me = client.get("/api/v1/me", headers=bearer(login(client, "zhang.wei"))).json()
    assert (me["name"], me["person"], me["unit"], me["role"]) == ("zhang.wei", "张伟", "grid-01", "operator")
    # stored as an Argon2id hash, never the password itself
    with Session(client.app.state.hub.store.engine) as s:
        stored = s.get(User, "zhang.wei").password_hash
        assert stored.startswith("$argon2id$") and "S3cret-pw-2026" not in stored
        tokens = list(s.scalars(select(UserSession.token_hash)))
        assert tokens and all(t.startswith("sha256:") for t in tokens)
    mine = case_of(client, "a1", grid="grid-01")
    theirs = case_of(client, "a2", grid="grid-03", device="gas-30")
    token = login(client, "zhang.wei")
    assert [c["id"] for c in client.get("/api/v1/cases", headers=bearer(token)).json()["cases"]] == [mine]
    assert client.get(f"/api/v1/cases/{theirs}", headers=bearer(token)).status_code == 404


def test_sign_in_refusals_and_lockout(client):
    add(client, "li.na", "李娜", "grid-02")
    for name, pw in (("li.na", "wrong-password"), ("nobody", "S3cret-pw-2026")):
        r = client.post("/api/v1/login", json={"username": name, "password": pw})
        assert r.status_code == 401 and "wrong name or password" in r.json()["detail"]
    assert client.get("/api/v1/cases", headers=bearer("gws_forged")).status_code == 401
    for _ in range(2):
        client.post("/api/v1/login", json={"username": "li.na", "password": "guess"})
    r = client.post("/api/v1/login", json={"username": "li.na", "password": "S3cret-pw-2026"})
    assert r.status_code == 429 and "Retry-After" in r.headers  # 4 failures from this client


def test_only_an_administrator_manages_people_and_changes_take_effect_at_once(client):
    body = {"username": "x", "name": "X", "unit": "grid-01", "role": "operator", "password": "Long-enough-2026"}
    assert client.post("/api/v1/users", json=body).status_code == 401
    assert client.post("/api/v1/users", json=body, headers=H("ops")).status_code == 403
    assert client.get("/api/v1/users", headers=H("ops")).status_code == 403
    add(client, "wang.fang", "王芳", "grid-01")
    op_token = login(client, "wang.fang")
    assert client.post("/api/v1/users", json=body, headers=bearer(op_token)).status_code == 403  # a person, too
    r = client.post("/api/v1/users", json={**body, "username": "wang.fang"}, headers=H("admin"))
    assert r.status_code == 409 and r.json()["code"] == "exists"
    r = client.post("/api/v1/users", json={**body, "password": "short"}, headers=H("admin"))
    assert r.status_code == 409 and r.json()["code"] == "weak_password"
    r = client.post("/api/v1/users", json={**body, "unit": "nowhere"}, headers=H("admin"))
    assert r.status_code == 409 and r.json()["code"] == "needs_unit"
    assert client.patch("/api/v1/users/ghost", json={"name": "G"}, headers=H("admin")).status_code == 404
    # a new password ends the sessions; the new password works, the old does not
    r = client.patch("/api/v1/users/wang.fang", json={"password": "Another-pw-2027"}, headers=H("admin"))
    assert r.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(op_token)).status_code == 401
    assert client.post("/api/v1/login", json={"username": "wang.fang", "password": "S3cret-pw-2026"}).status_code == 401
    token = login(client, "wang.fang", "Another-pw-2027")
    # disabled: signed out at once, cannot sign in
    r = client.patch("/api/v1/users/wang.fang", json={"disabled": True}, headers=H("admin"))
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    old = client.post("/api/v1/login", json={"username": "wang.fang", "password": "Another-pw-2027"})
    assert old.status_code == 401
    assert [u["username"] for u in client.get("/api/v1/users", headers=H("admin")).json()] == ["wang.fang"]


def test_the_timeline_names_the_person_and_duties_are_separated(client):
    add(client, "zhao.lei", "赵磊", "grid-01")
    add(client, "chen.jing", "陈静", "community-11")
    a, b = login(client, "zhao.lei"), login(client, "chen.jing")
    cid = case_of(client, "d1")
    assert client.post(f"/api/v1/cases/{cid}/accept", headers=bearer(a)).status_code == 200
    r = client.post(f"/api/v1/cases/{cid}/resolve", json={"note": "关阀"}, headers=bearer(a))
    assert r.status_code == 200
    c = r.json()
    entry = c["timeline"][-1]
    assert (entry["actor"], entry["action"], entry["detail"]["by"]) == ("zhao.lei", "resolve", "赵磊")
    assert c["resolved_by"] == "zhao.lei" and "close" not in c["actions"]
    r = client.post(f"/api/v1/cases/{cid}/close", headers=bearer(a))
    assert r.status_code == 409 and r.json()["code"] == "same_person"
    r = client.post(f"/api/v1/cases/{cid}/close", json={"note": "核查通过"}, headers=bearer(b))
    assert r.status_code == 200 and r.json()["timeline"][-1]["detail"]["by"] == "陈静"


def test_machine_keys_are_added_and_withdrawn_without_a_restart(client):
    body = {"name": "edge-new", "role": "edge", "grids": ["grid-01"]}
    assert client.post("/api/v1/keys", json=body, headers=H("ops")).status_code == 403
    r = client.post("/api/v1/keys", json=body, headers=H("admin"))
    assert r.status_code == 201
    key = r.json()["key"]
    send = {"alerts": [alert("k1")]}
    assert client.post("/api/v1/alerts", json=send, headers=bearer(key)).status_code == 200
    r = client.post("/api/v1/alerts", json={"alerts": [alert("k2", grid="grid-03")]}, headers=bearer(key))
    assert r.json()["results"][0]["status"] == "rejected"  # its grids only
    listed = {k["name"]: k for k in client.get("/api/v1/keys", headers=H("admin")).json()}
    assert listed["edge-new"]["source"] == "api" and listed["admin"]["source"] == "file"
    assert "hash" not in listed["edge-new"] and key not in str(listed)
    assert client.post("/api/v1/keys", json=body, headers=H("admin")).status_code == 409
    assert client.delete("/api/v1/keys/edge-new", headers=H("admin")).status_code == 204
    assert client.post("/api/v1/alerts", json=send, headers=bearer(key)).status_code == 401
    assert client.delete("/api/v1/keys/admin", headers=H("admin")).status_code == 404  # hub.yaml's own
    r = client.post("/api/v1/keys", json={"name": "v", "role": "viewer"}, headers=H("admin"))
    assert r.status_code == 409 and r.json()["code"] == "bad_key"  # a viewer key needs a unit


def test_a_case_is_assigned_to_a_person_of_the_unit_holding_it(client):
    add(client, "sun.li", "孙丽", "grid-01")
    add(client, "zhou.qi", "周琦", "grid-03")
    add(client, "viewer.g1", "吴敏", "grid-01", role="viewer")
    cid = case_of(client, "s1")
    r = client.post(f"/api/v1/cases/{cid}/assign", json={"username": "sun.li"}, headers=H("ops"))
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["assignee"] == "sun.li"
    assert (c["timeline"][-1]["action"], c["timeline"][-1]["detail"]["name"]) == ("assigned", "孙丽")
    r = client.post(f"/api/v1/cases/{cid}/assign", json={"username": "zhou.qi"}, headers=H("ops"))
    assert r.status_code == 409 and r.json()["code"] == "not_member"
    v = login(client, "viewer.g1")
    assert client.post(f"/api/v1/cases/{cid}/assign", json={"username": "sun.li"}, headers=bearer(v)).status_code == 403
    other = login(client, "zhou.qi")
    assert client.post(f"/api/v1/cases/{cid}/assign", json={"username": "zhou.qi"},
                       headers=bearer(other)).status_code == 404
    assert client.post(f"/api/v1/cases/{cid}/assign", json={"username": "sun.li"}).status_code == 401


def test_a_session_ends_at_logout_and_after_its_time(client):
    add(client, "he.yu", "何宇", "grid-01")
    token = login(client, "he.yu")
    assert client.post("/api/v1/logout", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    token = login(client, "he.yu")
    client.clock["now"] = T + timedelta(hours=12, seconds=1)
    client.app.state.hub.people._sessions.clear()  # the cache would answer for 2 s more
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
