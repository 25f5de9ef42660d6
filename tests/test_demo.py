"""`make demo` runs end to end: broker, hub, agent and scripted gateways; cases open and escalate."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.demo]  # make demo-test (not make test): a minute each, mostly waiting


def run_demo(seconds: int, env: dict[str, str]) -> tuple[str, list[list[str]]]:
    out = subprocess.run([sys.executable, "-m", "gridwatch.demo", "--duration", str(seconds), "--port", "0"],
                         capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout, [line.split() for line in out.stdout.split("final:")[-1].splitlines()[2:] if line.strip()]


def test_demo_opens_the_scripted_cases_and_escalates():
    stdout, rows = run_demo(52, dict(os.environ))
    assert "embedded amqtt broker" not in stdout  # Debian's mosquitto is on PATH here
    found = {(r[1], r[2]) for r in rows}
    assert found == {("gas_leak", "grid-02"), ("flood", "grid-02"), ("intrusion", "grid-03"),
                     ("device_offline", "grid-01"), ("intrusion", "grid-07"), ("tamper", "grid-07"),
                     ("fire", "grid-03")}, stdout
    # the demo registers its devices (configs/demo/devices.yaml): every case carries its device's place
    places = {(r[1], r[2]): r[11] for r in rows}
    assert places[("gas_leak", "grid-02")] == "幸福小区燃气阀井" and places[("fire", "grid-03")] == "光明大厦楼顶热成像"
    assert "-" not in places.values(), stdout
    intrusion = next(r for r in rows if r[1] == "intrusion" and r[2] == "grid-03")
    # not accepted in 20 s: escalated from grid-03 (community-21, then street-2 if it waited long enough)
    assert intrusion[3] in ("community-21", "street-2") and int(intrusion[10]) >= 1, stdout


def test_without_mosquitto_the_demo_runs_on_its_embedded_broker():
    """The fallback broker on the cheaper path: the first 24 s of the scenario (the whole run is checked on
    Mosquitto above): the gas leak (8 s) and the fence breach (18 s) still become cases through amqtt."""
    env = dict(os.environ)  # Debian's mosquitto out of PATH: the demo must fall back to amqtt
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/bin"])
    assert shutil.which("mosquitto", path=env["PATH"]) is None
    stdout, rows = run_demo(24, env)
    assert "embedded amqtt broker" in stdout
    assert {("gas_leak", "grid-02"), ("intrusion", "grid-03")} <= {(r[1], r[2]) for r in rows}, stdout
