"""The audit trail (等保 安全审计), on SQLite and PostgreSQL: each security-relevant act leaves a record naming
who, from where, what and how it ended; the records form one hash chain; deleting or editing a row in the
database makes `gridwatch hub audit check` fail naming the row; administrators read and export it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text

from hub.audit.trail import verify
from hub.config import hash_key
from tests.hubkit import api_client

T = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
KEYS = {"admin": ("admin", None), "ops": ("operator", "district-a"), "view": ("viewer", "grid-01")}


def h(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


def acts(c) -> list[dict]:
    r = c.get("/api/v1/audit?limit=1000", headers=h("admin"))
    assert r.status_code == 200, r.text
    return list(reversed(r.json()))


def test_every_security_relevant_act_is_recorded_in_one_chain(tmp_path, db_url):
    from gridwatch.ruletools import EdgeRuleTools
    with api_client(db_url, KEYS, T, rule_tools=EdgeRuleTools()) as c:
        assert c.post("/api/v1/users", headers=h("admin"), json={
            "username": "zhang.wei", "name": "张伟", "unit": "grid-01", "role": "operator",
            "password": "Right-pw-2026"}).status_code == 201
        assert c.post("/api/v1/login", json={"username": "zhang.wei", "password": "wrong"}).status_code == 401
        token = c.post("/api/v1/login", json={"username": "zhang.wei", "password": "Right-pw-2026"}).json()["token"]
        assert c.patch("/api/v1/users/zhang.wei", headers=h("admin"), json={"unit": "grid-02"}).status_code == 200
        assert c.put("/api/v1/users/zhang.wei/contacts", headers=h("admin"),
                     json={"mobile": "13800000004"}).status_code == 200
        made = c.post("/api/v1/keys", headers=h("admin"), json={"name": "edge-x", "role": "edge", "grids": ["grid-01"]})
        assert made.status_code == 201
        assert c.delete("/api/v1/keys/edge-x", headers=h("admin")).status_code == 204
        assert c.post("/api/v1/users/zhang.wei/unlock", headers=h("admin")).status_code == 200
        assert c.post("/api/v1/rules", headers=h("admin"),
                      json={"text": Path("configs/rules.yaml").read_text(encoding="utf-8")}).status_code == 201
        assert c.put("/api/v1/devices/gas-03", headers=h("admin"),
                     json={"id": "gas-03", "grid": "grid-01"}).status_code == 200
        assert c.post("/api/v1/maintenance", headers=h("admin"), json={
            "scope": "device", "target": "gas-03", "reason": "检修", "starts_at": T.isoformat(),
            "ends_at": (T + timedelta(hours=1)).isoformat()}).status_code == 201
        assert c.get("/api/v1/cases/export?status=open", headers=h("ops")).status_code == 200
        assert c.get("/api/v1/users", headers=h("ops")).status_code == 403  # a refusal is recorded too
        # (the change of unit ended the first session: sign in again to sign out)
        token = c.post("/api/v1/login", json={"username": "zhang.wei", "password": "Right-pw-2026"}).json()["token"]
        assert c.post("/api/v1/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
        c.post("/api/v1/alerts", headers=h("admin"), json={"alerts": []})  # not audited: intake
        got = acts(c)
        seen = [(a["action"], a["actor"], a["outcome"]) for a in got]
        expected = [("user_added", "admin", "ok"), ("sign_in", "zhang.wei", "refused"),
                    ("sign_in", "zhang.wei", "ok"), ("user_changed", "admin", "ok"),
                    ("contacts_changed", "admin", "ok"), ("key_added", "admin", "ok"),
                    ("key_disabled", "admin", "ok"), ("user_unlocked", "admin", "ok"),
                    ("rules_saved", "admin", "ok"), ("device_changed", "admin", "ok"),
                    ("maintenance_added", "admin", "ok"),
                    ("export", "ops", "ok"), ("permission_refused", "ops", "refused"),
                    ("sign_in", "zhang.wei", "ok"), ("sign_out", "zhang.wei", "ok")]
        assert seen[:len(expected)] == expected, seen
        export = next(a for a in got if a["action"] == "export")
        assert export["detail"]["query"] == "status=open" and export["detail"]["rows"] == 0
        assert export["role"] == "operator" and export["address"] == "testclient"
        assert [a["seq"] for a in got] == list(range(1, len(got) + 1))
        assert "13800000004" not in str(got)  # the audit names the change, not the number
        csv = c.get("/api/v1/audit?format=csv&action=sign_in", headers=h("admin"))
        assert csv.status_code == 200 and csv.text.count("sign_in") == 3
        assert c.get("/api/v1/audit", headers=h("ops")).status_code == 403
        store = c.app.state.hub.store
        n, broken = verify(store.engine)
        assert n >= len(expected) and broken == []


def test_config_reloads_and_account_locks_are_recorded(tmp_path, db_url):
    sla = tmp_path / "sla.yaml"
    sla.write_text(Path("configs/sla.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with api_client(db_url, KEYS, T, sla=str(sla), limits={"account_failures": 3}) as c:
        c.post("/api/v1/users", headers=h("admin"), json={"username": "li.na", "name": "李娜", "unit": "grid-01",
                                                          "role": "viewer", "password": "Right-pw-2026"})
        for _ in range(3):
            c.post("/api/v1/login", json={"username": "li.na", "password": "wrong"})
        watcher = c.app.state.watcher
        watcher.stop()
        sla.write_text(sla.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        assert watcher.check() == {"sla.yaml": True}
        sla.write_text("policies: []\n", encoding="utf-8")
        assert watcher.check() == {"sla.yaml": False}
        got = acts(c)
        locked = [a for a in got if a["action"] == "account_locked"]
        assert [a["actor"] for a in locked] == ["li.na"] and locked[0]["detail"]["wrong_passwords"] == 3
        reloads = [a for a in got if a["action"] == "config_reload"]
        assert [a["outcome"] for a in reloads] == ["ok", "refused"]
        assert len(reloads[0]["detail"]["sha256"]) == 64 and reloads[1]["detail"]["problems"]


def _hub_yaml(tmp_path: Path, db_url: str, served: Any) -> Path:
    """The served hub's config as a file for `hub audit check`, with the same keys (its files)."""
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(yaml.safe_dump({"database": db_url, "data_key_file": str(served.data_key_file),
                                   "audit": {"key_file": str(served.audit.key_file)},
                                   "org": str(Path("configs/org.yaml").resolve()),
                                   "sla": str(Path("configs/sla.yaml").resolve()),
                                   "calendars": str(Path("configs/calendars").resolve()),
                                   "keys": [{"name": "admin", "role": "admin", "hash": hash_key("key-admin")}]}))
    return cfg


def check(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridwatch", "hub", "audit", "check", "-c", str(cfg)],
                          capture_output=True, text=True)


def test_a_deleted_or_edited_row_breaks_the_chain_and_is_named(tmp_path, db_url):
    with api_client(db_url, KEYS, T) as c:
        for i in range(6):
            c.post("/api/v1/login", json={"username": f"nobody-{i}", "password": "x"})
        engine = c.app.state.hub.store.engine
        served = c.app.state.config
    cfg = _hub_yaml(tmp_path, db_url, served)
    r = check(cfg)
    assert r.returncode == 0 and "6 records" in r.stdout, r.stdout + r.stderr
    with engine.begin() as conn:  # someone with the database's password edits a record...
        conn.execute(text("UPDATE audit SET actor = 'someone-else' WHERE seq = 3"))
    r = check(cfg)
    assert r.returncode == 1 and "audit record 3: altered" in r.stderr, r.stderr
    with engine.begin() as conn:  # ...puts it back, and deletes another instead
        conn.execute(text("UPDATE audit SET actor = 'nobody-2' WHERE seq = 3"))
        conn.execute(text("DELETE FROM audit WHERE seq = 5"))
    r = check(cfg)
    assert r.returncode == 1 and "audit record 5: records 5..5 are missing" in r.stderr, r.stderr
    with engine.begin() as conn:  # the newest records deleted, so no gap shows inside the chain
        conn.execute(text("DELETE FROM audit WHERE seq >= 4"))
    r = check(cfg)
    assert r.returncode == 1 and "records after it were deleted" in r.stderr, r.stderr
    engine.dispose()


def test_a_record_inserted_into_the_chain_is_named_even_with_a_correct_hash_of_its_own(tmp_path, db_url):
    """Someone with the database's password inserts a forged record after record 3, its hash computed as the
    hub computes it (SHA-256 has no key) and the later records renumbered to make room: the record after the
    forgery no longer follows it (its `prev_hash` is record 3's) and its own hash no longer matches its
    number. What the chain cannot catch: a forger who rewrites every later record and the head too (an unkeyed
    chain)."""
    from sqlalchemy.orm import Session

    from hub.audit.trail import Act, digest
    from hub.store.models import AuditRow
    with api_client(db_url, KEYS, T) as c:
        for i in range(6):
            c.post("/api/v1/login", json={"username": f"nobody-{i}", "password": "x"})
        engine = c.app.state.hub.store.engine
        served = c.app.state.config
    n, broken = verify(engine)
    assert n == 6 and not broken
    with Session(engine) as s, s.begin():
        for row in sorted(s.query(AuditRow).filter(AuditRow.seq >= 4), key=lambda r: -r.seq):
            row.seq += 1
            s.flush()
        third = s.get(AuditRow, 3)
        assert third is not None
        forged = Act("admin", "login", "ok", role="admin", address="10.0.0.9", target="admin", detail={})
        at = third.at + timedelta(seconds=1)
        s.add(AuditRow(seq=4, at=at, actor=forged.actor, role=forged.role, address=forged.address,
                       action=forged.action, target=forged.target, outcome=forged.outcome, detail={},
                       prev_hash=third.hash, hash=digest(third.hash, 4, at, forged, third.mac), mac=third.mac))
    n, broken = verify(engine)
    assert n == 7
    assert not [b for b in broken if b.seq == 4]  # the forgery itself is well formed...
    said = [b.reason for b in broken if b.seq == 5]  # ...the record after it says so
    assert any("does not follow the record before it" in r for r in said), broken
    assert any("altered" in r for r in said), broken  # (its number moved: its hash no longer matches)
    cfg = _hub_yaml(tmp_path, db_url, served)
    r = check(cfg)
    assert r.returncode == 1 and "audit record 5: does not follow" in r.stderr, r.stderr
    engine.dispose()


def test_every_state_changing_route_says_what_the_audit_trail_records_of_it(tmp_path):
    """Issue 38: the audit trail's table of paths was hand-written regular expressions beside the routes, and
    nothing held a new route to it. Now each route declares its action in its decorator (`x-audit` in the
    OpenAPI document): every POST, PUT, PATCH and DELETE under /api/v1 declares one (an action, the case's
    timeline, or none with the reason), and so do the exports. A route added without it fails here."""
    from hub.api.audited import KEY, NONE, TIMELINE
    with api_client(f"sqlite:///{tmp_path / 'hub.sqlite'}", KEYS, T) as c:
        paths = c.app.openapi()["paths"]
    undeclared, actions = [], {}
    for path, ops in paths.items():
        for method, op in ops.items():
            if path.startswith("/api/v1/") and (method in ("post", "put", "patch", "delete")
                                                or path.endswith("/export")):
                if KEY not in op:
                    undeclared.append(f"{method.upper()} {path}")
                elif op[KEY] in (TIMELINE, NONE):
                    assert op.get("x-audit-why"), (method, path)
                else:
                    actions[f"{method.upper()} {path}"] = op[KEY]
    assert not undeclared, undeclared
    assert actions["POST /api/v1/users"] == "user_added" and actions["PUT /api/v1/users/{username}/contacts"] \
        == "contacts_changed" and actions["GET /api/v1/cases/export"] == "export"
    assert len(actions) >= 24, sorted(actions)
