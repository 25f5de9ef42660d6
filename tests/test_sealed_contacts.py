"""Contact points sealed at rest (个人信息保护), on SQLite and PostgreSQL: a mobile number set through the API is
not in the database as plain text (not in the SQLite file's bytes, not in what PostgreSQL returns), an
administrator and the person read it whole, a legacy plain-text row is sealed at the next start, and a new key
put in front of the old one re-seals everything (rotation)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from hub.store import datakey
from tests.hubkit import api_client, person_sign_in

T = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
KEYS = {"admin": ("admin", None), "view": ("viewer", "grid-01")}
MOBILE, MAIL = "13912345678", "zhang.wei@example.gov.cn"


def h(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer key-{name}"}


def raw(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT mobile, email FROM contacts"))]


@pytest.fixture
def keys(monkeypatch):
    first = Fernet.generate_key().decode()
    monkeypatch.setenv("GRIDWATCH_DATA_KEY", first)
    monkeypatch.delenv("GRIDWATCH_DATA_KEYS", raising=False)
    return first


def test_a_mobile_number_is_sealed_in_the_database_and_whole_for_those_who_may_read_it(tmp_path, db_url, keys,
                                                                                        monkeypatch):
    with api_client(db_url, KEYS, T) as c:
        assert c.post("/api/v1/users", headers=h("admin"), json={
            "username": "zhang.wei", "name": "张伟", "unit": "grid-01", "role": "operator",
            "password": "Right-pw-2026"}).status_code == 201
        r = c.put("/api/v1/users/zhang.wei/contacts", headers=h("admin"), json={"mobile": MOBILE, "email": MAIL})
        assert r.status_code == 200 and r.json()["mobile"] == MOBILE
        assert c.get("/api/v1/users/zhang.wei/contacts", headers=h("admin")).json()["mobile"] == MOBILE
        assert c.get("/api/v1/users/zhang.wei/contacts", headers=h("view")).status_code == 403
        token = person_sign_in(c.post, "zhang.wei", "Right-pw-2026", now=c.clock["now"]).json()["token"]
        me = c.get("/api/v1/users/zhang.wei/contacts", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["mobile"] == MOBILE and me["email"] == MAIL
        engine = c.app.state.hub.store.engine
        [(mobile, email)] = raw(engine)
        assert mobile.startswith("enc:") and MOBILE not in mobile and MAIL not in email
        if db_url.startswith("sqlite:///"):
            engine.dispose()
            data = b"".join(p.read_bytes() for p in tmp_path.glob("hub.sqlite*"))
            assert data and MOBILE.encode() not in data and MAIL.encode() not in data
        # a legacy row (written before sealing existed) and a new key in front of the old one: the next start
        # seals the first and re-seals everything with the new key; both still read whole
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (username, name, unit, role, password_hash, disabled, created_at, "
                              "updated_at, failed_logins, locks) VALUES ('li.lei', '李雷', 'grid-01', 'viewer', 'x', "
                              ":f, :t, :t, 0, 0)"), {"t": T, "f": False})
            conn.execute(text("INSERT INTO contacts (username, mobile, updated_at) "
                              "VALUES ('li.lei', '13700000001', :t)"), {"t": T})
    newer = Fernet.generate_key().decode()
    monkeypatch.setenv("GRIDWATCH_DATA_KEYS", f"{newer},{keys}")
    with api_client(db_url, KEYS, T) as c:
        engine = c.app.state.hub.store.engine
        rows = raw(engine)
        assert all(m.startswith("enc:") for m, _ in rows) and "13700000001" not in str(rows)
        for m, _ in rows:  # sealed with the newest key: it alone opens them now
            Fernet(newer.encode()).decrypt(m.removeprefix("enc:").encode())
        assert c.get("/api/v1/users/li.lei/contacts", headers=h("admin")).json()["mobile"] == "13700000001"
        assert c.get("/api/v1/users/zhang.wei/contacts", headers=h("admin")).json()["mobile"] == MOBILE
    datakey.configure([Fernet.generate_key()])  # a wrong key: said so, not garbage
    with pytest.raises(ValueError, match="no configured data key opens"):
        datakey.unseal(rows[0][0])


def test_without_a_key_in_the_environment_the_hub_makes_a_key_file_only_it_may_read(tmp_path, db_url, monkeypatch):
    monkeypatch.delenv("GRIDWATCH_DATA_KEY", raising=False)
    monkeypatch.delenv("GRIDWATCH_DATA_KEYS", raising=False)
    key = tmp_path / "var" / "data.key"
    with api_client(db_url, KEYS, T, data_key_file=str(key)) as c:
        c.post("/api/v1/users", headers=h("admin"), json={"username": "wang.fang", "name": "王芳", "unit": "grid-01",
                                                          "role": "viewer", "password": "Right-pw-2026"})
        c.put("/api/v1/users/wang.fang/contacts", headers=h("admin"), json={"mobile": MOBILE})
        assert key.stat().st_mode & 0o777 == 0o600
        [(mobile, _)] = raw(c.app.state.hub.store.engine)
        Fernet(key.read_bytes().strip()).decrypt(mobile.removeprefix("enc:").encode())  # sealed with that key
    with api_client(db_url, KEYS, T, data_key_file=str(key)) as c:  # the next start reads the same file
        assert c.get("/api/v1/users/wang.fang/contacts", headers=h("admin")).json()["mobile"] == MOBILE
