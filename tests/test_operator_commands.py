"""Operator commands (issue 29): `hub init`, `hub check`, `hub migrate`, `edge check`, as a district runs them.

- `hub init DIR` makes a configuration with no demo key anywhere, migrates its database and makes a first
  administrator who can sign in on the hub it starts; the keys it prints work, the file keeps their hashes only.
- `hub check` on a configuration with one broken file in each place (org, SLA, routing, a calendar, labels,
  keys, a TLS file, the database directory) exits 1 and names each with file, YAML path and line.
- Calendars running out are named (pure check with an injected date), and a policy naming a missing calendar
  is an error (the hub would otherwise count it 24x7 without a word).
- `hub migrate`: `current`, `--sql` (nothing run), upgrade, `history`.
- `edge check`: the rules the config names, TLS files, the outbox directory; unset secrets are warnings.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pyotp
import pytest
import yaml

from hub.boot.check import DEMO_KEYS, check_hub
from simulators.notify_emulators import serving
from simulators.services import free_port, stop_pid, wait_port


def gw(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridwatch", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(env or {})},
                          timeout=120)


def secrets_of(out: str) -> dict[str, str]:
    admin = re.search(r"board sign-in:\s+(\S+) / (\S+)", out)
    akey = re.search(r"admin API key \(keys: admin\):\s+(\S+)", out)
    ekey = re.search(r"GRIDWATCH_EDGE_KEY:\s+(\S+)", out)
    assert admin and akey and ekey, out
    return {"user": admin.group(1), "password": admin.group(2), "admin_key": akey.group(1), "edge_key": ekey.group(1)}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    d = tmp_path_factory.mktemp("hubinit") / "etc-gridwatch"
    r = gw("hub", "init", str(d))
    assert r.returncode == 0, r.stdout + r.stderr
    return d, secrets_of(r.stdout)


def test_hub_init_makes_a_hub_without_demo_keys_whose_admin_signs_in(made):
    d, sec = made
    text = "".join(p.read_text(encoding="utf-8") for p in d.rglob("*.yaml"))
    assert "DEMO" not in text and "demo-" not in text
    assert not any(h in text for h in DEMO_KEYS), "a demo key's hash is in the new configuration"
    for secret in (sec["password"], sec["admin_key"], sec["edge_key"]):
        assert secret not in text, "a plain secret was written to a file"
    assert oct((d / "hub.yaml").stat().st_mode & 0o777) == "0o640"
    r = gw("hub", "check", "-c", str(d / "hub.yaml"))
    assert r.returncode == 0 and "0 errors" in r.stderr, r.stdout + r.stderr
    assert "demo key" not in r.stdout
    again = gw("hub", "init", str(d))
    assert again.returncode == 1 and "does not overwrite" in again.stderr

    # notices on in this one start (issue 38): the operator gives the people their WeCom ids and points the
    # WeCom robot at the network's gateway (here the emulator); only that robot's secret is in the environment
    people = yaml.safe_load((d / "people.yaml").read_text(encoding="utf-8"))
    for p in people["people"]:
        p["contacts"] = {"wecom_user": "wx-" + p["username"].replace(".", "-")}
    (d / "people.yaml").write_text(yaml.safe_dump(people, allow_unicode=True), encoding="utf-8")
    notify = (d / "notify.yaml").read_text(encoding="utf-8")
    emulators = serving({"wecom_keys": ["grid01-robot-key"]})
    emu_port, _ = emulators.__enter__()
    notify = notify.replace("    key_env: GW_WECOM_KEY_GRID01\n", "    key_env: GW_WECOM_KEY_GRID01\n    url: "
                            f"http://127.0.0.1:{emu_port}/cgi-bin/webhook/send\n    group_wait: 0\n")
    (d / "notify.yaml").write_text(notify, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GW_")} | {"GW_WECOM_KEY_GRID01": "grid01-robot-key"}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(d / "hub.yaml"),
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_port(port, timeout=30, proc=proc)
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/healthz").status_code == 200
        login = httpx.post(f"{url}/api/v1/login", json={"username": sec["user"], "password": sec["password"]})
        assert login.status_code == 200, login.text
        assert login.json()["user"]["role"] == "sysadmin"
        token = login.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        # the first administrator enrols a second factor before reaching anything (等保 身份鉴别)
        assert login.json()["limited"] == "two_factor"
        assert httpx.get(f"{url}/api/v1/users", headers=auth).json()["code"] == "limited_two_factor"
        secret = httpx.post(f"{url}/api/v1/me/two-factor", headers=auth).json()["secret"]
        confirm = httpx.post(f"{url}/api/v1/me/two-factor/confirm", headers=auth,
                             json={"code": pyotp.TOTP(secret).now()})
        assert confirm.status_code == 200 and len(confirm.json()["recovery_codes"]) == 10
        users = httpx.get(f"{url}/api/v1/users", headers=auth)
        assert users.status_code == 200, users.text
        assert {u["username"] for u in users.json()} == {sec["user"], *(p["username"] for p in people["people"])}
        # the people the rosters name were made by this start, and cannot sign in until a password is set
        assert httpx.post(f"{url}/api/v1/login", json={"username": "zhao.duty", "password": "x" * 12}
                          ).status_code == 401
        # an alert opens a case at the grid, and its duty person is @-ed by the grid's robot, with no second start
        edge = {"Authorization": f"Bearer {sec['edge_key']}"}
        now = datetime.now(UTC).isoformat()
        r = httpx.post(f"{url}/api/v1/alerts", headers=edge, json={"alerts": [{
            "alert_id": "init-1", "state": "firing", "rule_id": "fence", "edge_id": "edge-1",
            "device_id": "fence-03", "grid_id": "grid-01", "kind": "sensor", "category": "intrusion",
            "severity": "major", "started_at": now, "observed_at": now, "value": 1.0, "message": "电子围栏告警",
            "labels": {}, "evidence": {}}]})
        assert r.status_code == 200, r.text
        case = r.json()["results"][0]["case_id"]
        got: list[dict] = []
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:
            time.sleep(0.2)
            got = httpx.get(f"http://127.0.0.1:{emu_port}/_received").json()["received"]
        assert len(got) == 1 and case in got[0]["text"], got
        assert re.search(r"<@wx-[a-z]+-[a-z]+>", got[0]["text"]), got[0]["text"]
        metrics = httpx.get(f"{url}/metrics", headers=edge).text
        assert 'gridwatch_hub_notify_channel_off{channel="sms"} 1.0' in metrics
        keys = httpx.get(f"{url}/api/v1/keys", headers={"Authorization": f"Bearer {sec['admin_key']}"})
        assert keys.status_code == 200 and {k["name"] for k in keys.json()} == {"admin", "edge-1"}, keys.text
        bad = httpx.post(f"{url}/api/v1/login", json={"username": sec["user"], "password": "demo-password"})
        assert bad.status_code == 401
        assert httpx.get(f"{url}/api/v1/keys", headers={"Authorization": "Bearer demo-admin-key"}).status_code == 401
    finally:
        stop_pid(proc)
        emulators.__exit__(None, None, None)


def test_hub_check_names_one_broken_file_in_each_place(made, tmp_path):
    d = tmp_path / "broken"
    shutil.copytree(made[0], d)
    (d / "var").rmdir() if not any((d / "var").iterdir()) else shutil.rmtree(d / "var")
    hub = d / "hub.yaml"
    text = hub.read_text(encoding="utf-8")
    text = text.replace("  - {name: admin, role: admin,",
                        "  - {name: ops, role: operator, unit: street-9, hash: \"sha256:" + "0" * 64 + "\"}\n"
                        "  - {name: admin, role: admin,")
    text = text.replace("listen: {host: 127.0.0.1, port: 8080}",
                        "listen: {host: 127.0.0.1, port: 8080, tls_cert: tls/hub.crt, tls_key: tls/hub.key}")
    hub.write_text(text, encoding="utf-8")
    org = d / "org.yaml"
    org.write_text(org.read_text(encoding="utf-8").replace("units:", "unitz: []\nunits:", 1), encoding="utf-8")
    sla = d / "sla.yaml"
    assert "calendar: 24x7" in sla.read_text(encoding="utf-8")
    sla.write_text(sla.read_text(encoding="utf-8").replace("calendar: 24x7", 'calendar: "2025"', 1), encoding="utf-8")
    routing = d / "routing.yaml"
    routing.write_text("routes:\n  - id: r1\n    match: {categories: [gas_leak]}\n    lead: no-such-unit\n",
                       encoding="utf-8")
    (d / "calendars" / "2027.yaml").write_text("name: \"2027\"\nholidays:\n  - 2027-02-30\n", encoding="utf-8")
    (d / "labels.yaml").write_text("categories: [not, a, map]\n", encoding="utf-8")

    r = gw("hub", "check", "-c", str(hub))
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    expect = [
        rf"{org}:unitz: unknown key \(check the spelling\) \(line \d+\)",
        rf"{sla}:policies\[\d+\]\.calendar: no calendar named '2025' in {d / 'calendars'} .* \(line \d+\)",
        rf"{d / 'calendars' / '2027.yaml'}:holidays\[0\]: .*2027-02-30.* \(line 3\)",
        rf"{d / 'labels.yaml'}:categories: unknown key \(check the spelling\) \(line 1\)",
        rf"{hub}:listen\.tls_cert: {d / 'tls' / 'hub.crt'}: no such file \(line \d+\)",
        rf"{hub}:database: {d / 'var'}: no such directory for the SQLite file \(line \d+\)",
    ]
    for pattern in expect:
        assert re.search(pattern, out), f"{pattern}\nnot in:\n{out}"
    # the org file failed, so the key's unit and the routing's units cannot be checked against it: fix the org
    # and they are named
    org.write_text(org.read_text(encoding="utf-8").replace("unitz: []\n", ""), encoding="utf-8")
    r = gw("hub", "check", "-c", str(hub))
    assert re.search(rf"{hub}:keys\[0\]\.unit: unit 'street-9' is not in {org} \(line 1\d\)", r.stdout), r.stdout
    assert f"{routing}:routes[0].lead: 'no-such-unit' is not a unit of the org tree (line 4)" in r.stdout
    hub.write_text("keys: []\n", encoding="utf-8")
    r = gw("hub", "check", "-c", str(hub))
    assert r.returncode == 1 and f"{hub}:keys: List should have at least 1 item" in r.stdout, r.stdout


def test_calendars_running_out_are_named_and_strict_fails_on_them(made):
    cfg = made[0] / "hub.yaml"
    cal = made[0] / "calendars" / "cn-mainland.yaml"
    quiet, _ = check_hub(cfg, date(2026, 12, 3))  # 2027 is there (provisional: said on the board, not here)
    assert not any("calendar" in w for w in quiet.warnings), quiet.warnings
    soon, _ = check_hub(cfg, date(2027, 11, 15))
    assert f"calendar 'cn-mainland' ({cal}) has data up to 2027-12-31, 47 days from now" in " ".join(soon.warnings)
    gone, _ = check_hub(cfg, date(2028, 1, 15))
    assert any(f"calendar 'cn-mainland' ({cal}) has no data for 2028" in w for w in gone.warnings), gone.warnings
    assert not gone.errors
    secrets = dict.fromkeys(re.findall(r"_env: (GW_\w+)", (made[0] / "notify.yaml").read_text(encoding="utf-8")), "x")
    r = gw("hub", "check", "--strict", "-c", str(cfg), env=secrets)  # every channel on: no warning of theirs
    expected = 1 if date.today() >= date(2027, 11, 2) else 0  # strict: a warning fails too
    assert r.returncode == expected, r.stdout


def test_hub_migrate_current_sql_upgrade_and_history(tmp_path):
    (tmp_path / "var").mkdir()
    r = gw("hub", "init", str(tmp_path / "h"))
    cfg = tmp_path / "h" / "hub.yaml"
    empty = tmp_path / "var" / "empty.sqlite"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("sqlite:///var/hub.sqlite", f"sqlite:///{empty}"),
                   encoding="utf-8")
    r = gw("hub", "migrate", "current", "-c", str(cfg))
    assert r.returncode == 0 and r.stdout.startswith("(empty) (head is "), r.stdout + r.stderr
    r = gw("hub", "migrate", "--sql", "-c", str(cfg))
    assert r.returncode == 0 and "CREATE TABLE cases" in r.stdout and "Running upgrade  -> 0001" in r.stdout
    assert gw("hub", "migrate", "current", "-c", str(cfg)).stdout.startswith("(empty)"), "--sql ran something"
    hist = gw("hub", "migrate", "history", "-c", str(cfg)).stdout.split()
    assert hist[0] == "0001" and len(hist) >= 9
    r = gw("hub", "migrate", "-c", str(cfg))
    assert r.returncode == 0 and f"database at {hist[-1]} (was empty)" in r.stderr, r.stderr
    assert gw("hub", "migrate", "current", "-c", str(cfg)).stdout.strip() == f"{hist[-1]} (head)"
    assert "nothing to run" in gw("hub", "migrate", "--sql", "-c", str(cfg)).stdout


def test_edge_check_names_rules_tls_and_outbox_problems(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [{id: hot, match: {metric: temperature}, when: {above: 50, for: 10s}, category: fire}]\n")
    good = tmp_path / "edge.yaml"
    good.write_text("rules: rules.yaml\nfeeds: [{preset: sparkplug-b, grid: '{group}'}]\n"
                    "outbox: {path: outbox.sqlite}\nhub: {url: 'http://127.0.0.1:8080', key_env: GW_TEST_KEY}\n")
    r = gw("edge", "check", "-c", str(good), env={"GW_TEST_KEY": "x", "GRIDWATCH_MQTT_PASSWORD": ""})
    assert r.returncode == 0 and "(1 rules)" in r.stderr, r.stdout + r.stderr
    assert "GW_TEST_KEY" not in r.stdout
    r = gw("edge", "check", "-c", str(good), env={"GW_TEST_KEY": ""})
    assert r.returncode == 0 and f"{good}:hub.key_env: $GW_TEST_KEY is not set here" in r.stdout, r.stdout
    bad = tmp_path / "bad.yaml"
    (tmp_path / "bad-rules.yaml").write_text("rules: [{id: hot, match: {metric: t}, when: {abov: 50}}]\n")
    bad.write_text("rules: bad-rules.yaml\n"
                   "mqtt: {tls: {ca_file: certs/ca.pem}}\n"
                   "outbox: {path: nowhere/outbox.sqlite}\n")
    r = gw("edge", "check", "-c", str(bad))
    assert r.returncode == 1, r.stdout
    assert f"{tmp_path / 'bad-rules.yaml'}:rules[0]" in r.stdout
    assert f"{bad}:mqtt.tls.ca_file: {tmp_path / 'certs' / 'ca.pem'}: no such file (line 2)" in r.stdout
    assert f"{bad}:outbox.path: {tmp_path / 'nowhere'}: no such directory (line 3)" in r.stdout


def test_hub_serve_refuses_demo_keys_beyond_loopback(tmp_path):
    """The demo's keys have public plain text: fine for `make demo` on 127.0.0.1, refused on a real interface."""
    cfg = Path(__file__).resolve().parents[1] / "configs" / "hub.yaml"
    open_cfg = tmp_path / "hub.yaml"
    text = cfg.read_text(encoding="utf-8").replace("host: 127.0.0.1", "host: 0.0.0.0")
    for name in ("org", "sla", "routing", "labels"):
        text = text.replace(f"{name}: {name}.yaml", f"{name}: {cfg.parent / (name + '.yaml')}")
    text = text.replace("calendars: calendars", f"calendars: {cfg.parent / 'calendars'}")
    open_cfg.write_text(text.replace("sqlite:///../var/hub.sqlite", f"sqlite:///{tmp_path / 'h.sqlite'}"),
                        encoding="utf-8")
    r = gw("hub", "serve", "-c", str(open_cfg), "--port", str(free_port()))
    assert r.returncode == 1 and "refusing to serve on 0.0.0.0" in r.stderr, r.stderr
    assert "admin, edge-a, ops-district, viewer-grid-01 are the demo's" in r.stderr
