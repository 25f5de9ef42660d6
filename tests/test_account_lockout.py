"""Per-account protection (等保 身份鉴别), on SQLite and PostgreSQL: wrong passwords are counted per account
whatever address they come from, twenty of them from twenty addresses lock the account, the right password is
then refused until the lock passes or an administrator unlocks it, and other accounts are not touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gridwatch.core.yamlconf import load
from hub.people.accounts import People
from hub.policy.calendar import Calendar
from hub.policy.org import Org, OrgFile
from hub.policy.sla import SlaFile
from hub.store.cases import Store
from hub.store.db import make_engine, migrate
from tests.hubkit import Hub

SLA = """
policies:
  - id: default
    limits: {accept: 1h, resolve: 4h, feedback: 4h}
"""
ADMIN = "lockout-admin-key"


def login(hub: Hub, user: str, password: str, address: str) -> httpx.Response:
    return httpx.post(f"{hub.url}/api/v1/login", json={"username": user, "password": password},
                      headers={"X-Forwarded-For": address}, timeout=30)


@pytest.mark.slow
def test_twenty_wrong_passwords_from_twenty_addresses_lock_one_account(tmp_path, db_url):
    hub = Hub(tmp_path, SLA, db_url, keys=[{"name": "admin", "role": "admin", "key": ADMIN}],
              listen={"trusted_proxies": ["127.0.0.1/32"]}).start()
    try:
        for user in ("li.lei", "han.mei"):
            r = hub.call("POST", "/api/v1/users", key=ADMIN, json={"username": user, "name": user, "unit": "grid-01",
                                                                   "role": "operator", "password": "Right-pw-2026"})
            assert r.status_code == 201, r.text
        codes = [login(hub, "li.lei", f"guess-{i}", f"203.0.113.{i + 1}").status_code for i in range(20)]
        assert codes == [401] * 20  # no address reached the per-address limit: only the account can stop this
        assert login(hub, "li.lei", "Right-pw-2026", "198.51.100.7").status_code == 401  # locked: refused
        assert login(hub, "han.mei", "Right-pw-2026", "203.0.113.1").status_code == 200  # the others unaffected
        users = {u["username"]: u for u in hub.call("GET", "/api/v1/users", key=ADMIN).json()}
        assert users["li.lei"]["locked_until"] is not None and users["han.mei"]["locked_until"] is None
        assert hub.call("POST", "/api/v1/users/li.lei/unlock", key=ADMIN).json()["locked_until"] is None
        assert login(hub, "li.lei", "Right-pw-2026", "198.51.100.7").status_code == 200
        assert hub.call("POST", "/api/v1/users/nobody/unlock", key=ADMIN).status_code == 404
        assert hub.call("POST", "/api/v1/users/han.mei/unlock").status_code == 403  # an operator may not
    finally:
        hub.stop()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_the_lock_passes_and_grows_on_an_injected_clock(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    clock = Clock()
    store = Store(engine, load(SlaFile, "configs/sla.yaml"), Org(load(OrgFile, "configs/org.yaml")),
                  {"cn-mainland": Calendar.from_file("configs/calendars/cn-mainland.yaml")}, clock)
    people = People(store, [], lock_after=3, lock_for=60.0)
    people.add("wang.fang", "王芳", "grid-01", "operator", "Right-pw-2026")
    for _ in range(2):
        assert people.login("wang.fang", "wrong") is None
    assert people.login("wang.fang", "Right-pw-2026") is not None  # a right one clears the count
    for _ in range(3):
        people.login("wang.fang", "wrong")
    assert people.get("wang.fang").locked_until == clock.now + timedelta(seconds=60)
    assert people.login("wang.fang", "Right-pw-2026") is None
    clock.now += timedelta(seconds=61)
    for _ in range(3):  # locked again without a right password between: twice as long
        people.login("wang.fang", "wrong")
    assert people.get("wang.fang").locked_until == clock.now + timedelta(seconds=120)
    clock.now += timedelta(seconds=121)
    assert people.login("wang.fang", "Right-pw-2026") is not None  # the lock passed
    assert people.get("wang.fang").locked_until is None
    engine.dispose()
