"""Notices end to end through real processes (issue 26; `make notify-test`): `gridwatch hub serve` under
faketime (Debian's libfaketime) at 22:00 and on a 2027 holiday, the channel emulators as their own process,
a hub SIGKILLed while a send hangs, and two replicas on PostgreSQL with the leader killed: each notice is
counted at the emulators, none lost, none twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from simulators.services import free_port, wait_port
from tests.hubkit import Hub, fresh_pg_database
from tests.notifykit import MOBILE, SECRETS, SLA, emulator_spec, notify_policy, seed_people, write_configs

pytestmark = pytest.mark.notify
ADMIN = "notify-e2e-admin-key"


def gas(aid: str, device: str = "gas-03", category: str = "gas_leak") -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"alert_id": aid, "state": "firing", "rule_id": "gas-high", "edge_id": "edge-a", "device_id": device,
            "grid_id": "grid-01", "kind": "sensor", "category": category, "severity": "critical",
            "started_at": now, "observed_at": now, "value": 1.0, "message": "燃气浓度超限", "labels": {},
            "evidence": {}}


@contextmanager
def emulators_at(tmp: Path, prefix: tuple[str, ...] = ()) -> Iterator[int]:
    """The emulators as a process of their own (hangs last 4 s), under `prefix` (the same faketime as the
    hub: the vendors check timestamps, so the two clocks must agree)."""
    port = free_port()
    spec = tmp / "emulators.json"
    spec.write_text(json.dumps(emulator_spec(tmp, port=port, hang_s=4)))
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "simulators.notify_emulators", str(spec)],
                            stdout=subprocess.DEVNULL)
    try:
        wait_port(port, 20, proc)  # type: ignore[arg-type]
        yield port
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def emulators(tmp_path):
    with emulators_at(tmp_path) as port:
        yield port


def shifted_to(local: str) -> tuple[str, ...]:
    """faketime moving a process's clock to an instant in Shanghai, as an offset from now (the same for every
    process started with it in this test)."""
    target = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    # the monotonic clock stays real: timed waits (threading, asyncio) count it against the kernel's deadlines,
    # and a faked one shifted by weeks left every `Event.wait(0.5)` waiting for weeks
    return ("env", "FAKETIME_DONT_FAKE_MONOTONIC=1", "faketime", "-f",
            f"{(target - datetime.now(UTC)).total_seconds():+.0f}s")


def received(port: int) -> list[dict]:
    return httpx.get(f"http://127.0.0.1:{port}/_received", timeout=10).json()["received"]


def wait_for(pred, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def hub_for(tmp: Path, port: int, database: str | None = None, *, seed: bool = True) -> Hub:
    """A hub (not started) with the people, rosters and policy of tests.notifykit; notices claimed by a hub that
    died are sent again after 3 s."""
    tmp.mkdir(parents=True, exist_ok=True)
    db = database or f"sqlite:///{tmp / 'hub.sqlite'}"
    if seed:
        seed_people(db)
    policy = notify_policy(port, None, None, "http://hub.example/")
    policy["lease"] = "3s"
    paths = write_configs(tmp, policy)
    return Hub(tmp, yaml.safe_dump(SLA), db, keys=[{"name": "admin", "role": "admin", "key": ADMIN}],
               rosters=paths["rosters"], notify=paths["notify"])


@pytest.mark.parametrize(("local", "who"), [("2026-12-03T22:00:00", "g01.night2"),  # a Thursday night
                                            ("2027-02-09T10:00:00", "g01.holiday")])  # a 2027 holiday morning
def test_a_gas_case_tells_whoever_the_roster_has_on_duty_then(tmp_path, local, who):
    clock = shifted_to(local)
    with emulators_at(tmp_path, clock) as port:
        hub = hub_for(tmp_path, port)
        hub.start(prefix=clock)
        try:
            _told(hub, port, who)
        finally:
            hub.stop()


def _told(hub: Hub, emulators: int, who: str) -> None:
    if True:
        case = hub.post([gas("n1")])[0]["case_id"]
        assert wait_for(lambda: any(r["service"] == "sms" for r in received(emulators)))
        time.sleep(1.5)  # anything else it would send
        sms = [r for r in received(emulators) if r["service"] == "sms"]
        assert [s["to"] for s in sms] == [MOBILE[who]] and sms[0]["params"]["case"] == case
        assert wait_for(lambda: any(r["service"] == "wecom" for r in received(emulators)))
        duty = hub.get("/api/v1/duty?unit=grid-01")
        assert [p["username"] for p in duty["people"]] == [who]


def test_a_hub_killed_while_a_send_hangs_sends_it_once_after_restart(tmp_path, emulators):
    hub = hub_for(tmp_path, emulators)
    httpx.post(f"http://127.0.0.1:{emulators}/_faults", json={"next": ["hang"]})
    hub.start()
    try:
        hub.post([gas("k1")])
        time.sleep(0.8)  # the first send (SMS or the robot) is hanging at the emulator now
        assert hub.proc is not None
        os.kill(hub.proc.pid, signal.SIGKILL)
        hub.proc.wait()
        hub.start()
        assert wait_for(lambda: {r["service"] for r in received(emulators)} >= {"sms", "wecom"}, 40)
        time.sleep(4)  # a second copy, if one were coming
        ids = Counter(i for r in received(emulators) for i in r["ids"])
        assert ids and max(ids.values()) == 1, ids
        listed = hub.get("/api/v1/notices", key=ADMIN)
        assert {n["state"] for n in listed} == {"delivered"} and sorted(ids) == sorted(n["id"] for n in listed)
    finally:
        hub.stop()


def test_two_replicas_on_postgresql_deliver_each_notice_once_with_the_leader_killed(tmp_path, emulators,
                                                                                   postgres_url):
    with fresh_pg_database(postgres_url) as db:
        a = hub_for(tmp_path / "a", emulators, db).start()
        b = hub_for(tmp_path / "b", emulators, db, seed=False).start()
        try:
            for i in range(10):
                (a if i % 2 else b).post([gas(f"r{i}", device=f"gas-{i}")])
            time.sleep(1.0)
            leader = a if "gridwatch_hub_notifier_leader 1.0" in httpx.get(f"{a.url}/metrics").text else b
            other = b if leader is a else a
            assert leader.proc is not None
            os.kill(leader.proc.pid, signal.SIGKILL)
            leader.proc.wait()
            for i in range(10, 20):
                other.post([gas(f"r{i}", device=f"gas-{i}")])
            # each new case: whoever is on duty now by SMS and by the grid's robot; all planned, all delivered
            def settled() -> bool:
                listed = other.get("/api/v1/notices?limit=1000", key=ADMIN)
                return len({n["case_id"] for n in listed}) == 20 and {n["state"] for n in listed} == {"delivered"}
            assert wait_for(settled, 60)
            time.sleep(4)  # a second copy, if one were coming
            ids = Counter(i for r in received(emulators) for i in r["ids"])
            listed = other.get("/api/v1/notices?limit=1000", key=ADMIN)
            assert sorted(ids) == sorted(n["id"] for n in listed) and max(ids.values()) == 1, ids
        finally:
            a.stop()
            b.stop()
