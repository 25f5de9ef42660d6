"""The built wheel, installed the way a district installs it (issue 29): `pip install gridwatch-*.whl` into a clean
venv in a temporary directory, no Makefile, no checkout on the path, then every command group from there.

Run by `make dist-test` (and CI), not by `make test`: building and installing take a minute or two.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gridwatch.core import sparkplug as spb
from simulators.services import free_port, stop_pid, wait_port

pytestmark = pytest.mark.dist
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin directory, with the wheel built from this checkout installed in it."""
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = (base / "dist").glob("gridwatch-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=120)
    pip = base / "venv" / "bin" / "pip"
    r = subprocess.run([str(pip), "install", "-q", str(wheel)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(pip), "check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"installed dependencies conflict:\n{r.stdout}"
    return base / "venv" / "bin"


def run(bindir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bindir}:{env.get('PATH', '')}"
    return subprocess.run([str(bindir / "gridwatch"), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=180)


def test_every_command_group_works_from_the_installed_wheel(installed, tmp_path):
    work = tmp_path / "district"
    work.mkdir()
    site = subprocess.run([str(installed / "python"), "-c", "import gridwatch, edge, hub; "
                           "print(gridwatch.__file__); print(hub.__file__)"],
                          capture_output=True, text=True, cwd=work, check=True).stdout.split()
    assert all(str(ROOT) not in p for p in site), f"the checkout is imported, not the wheel: {site}"
    examples = Path(site[0]).parent / "examples"
    for shipped in ("mosquitto/acl", "nats/node.conf", "nats/users.conf", "patroni/patroni.yml",
                    "haproxy/gridwatch.cfg", "haproxy/503.http"):  # the reference deployment's configs
        assert (examples / shipped).read_text() == (ROOT / "configs" / shipped).read_text(), shipped

    r = run(installed, "--help", cwd=work)
    assert r.returncode == 0 and all(g in r.stdout for g in ("edge", "hub", "rules", "feeds", "sim", "gateway"))
    r = run(installed, "rules", "check", str(examples / "rules.yaml"), cwd=work)
    assert r.returncode == 0 and "ok" in r.stderr, r.stdout + r.stderr

    rules = work / "rules.yaml"
    rules.write_text("rules: [{id: gas, match: {metric: Sensors_CH4}, when: {above: 5000}, category: gas_leak}]\n")
    edge = work / "edge.yaml"
    edge.write_text("rules: rules.yaml\nfeeds: [{preset: sparkplug-b, grid: '{group}'}]\n"
                    "outbox: {path: outbox.sqlite}\nhub: {url: 'http://127.0.0.1:9', key_env: GW_KEY}\n")
    r = run(installed, "feeds", "check", str(edge), cwd=work)
    assert r.returncode == 0 and "spBv1.0/+/#" in r.stderr, r.stdout + r.stderr
    now = int(time.time() * 1000)
    ddata = work / "ddata.bin"
    ddata.write_bytes(spb.encode([spb.M("Sensors/CH4", spb.DOUBLE, 6171.0, now)], now, seq=1))
    r = run(installed, "feeds", "try", str(edge), "--topic", "spBv1.0/grid-01/DDATA/plc-1/gas-03",
            "--payload-file", str(ddata), cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r'sensor\s+grid=grid-01 device=gas-03 ts=\S+ \{"Sensors_CH4": 6171.0\}', r.stdout), r.stdout

    capture = work / "capture.jsonl"
    t0 = time.time() - 3600
    stamp = datetime.fromtimestamp(t0, UTC).isoformat().replace("+00:00", "Z")
    capture.write_text(json.dumps({"topic": "gw/grid-01/sensor/gas-03/reading", "received_at": stamp,
                                   "payload": {"ts": int(t0 * 1000), "metrics": {"Sensors_CH4": 6200}}}) + "\n")
    r = run(installed, "rules", "backtest", str(rules), "--input", str(capture), cwd=work)
    assert r.returncode == 0 and re.search(r"firing\s+gas\s+gas-03", r.stdout), r.stdout + r.stderr
    r = run(installed, "edge", "check", "-c", str(edge), cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr

    r = run(installed, "hub", "init", "hub", cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    password = re.search(r"board sign-in:\s+admin / (\S+)", r.stdout)
    assert password, r.stdout
    cfg = work / "hub" / "hub.yaml"
    r = run(installed, "hub", "check", "-c", str(cfg), cwd=work)
    assert r.returncode == 0 and "0 errors" in r.stderr, r.stdout + r.stderr
    r = run(installed, "hub", "migrate", "-c", str(cfg), cwd=work)
    assert r.returncode == 0 and re.search(r"database at \d{4} \(was \d{4}\)", r.stderr), r.stderr
    r = run(installed, "hub", "migrate", "current", "-c", str(cfg), cwd=work)
    assert r.returncode == 0 and r.stdout.strip().endswith("(head)"), r.stdout

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([str(installed / "gridwatch"), "hub", "serve", "-c", str(cfg), "--port", str(port)],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, timeout=60, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        board = httpx.get(f"http://127.0.0.1:{port}/")
        assert board.status_code == 200 and "<html" in board.text.lower()  # the board's files are in the wheel
        login = httpx.post(f"http://127.0.0.1:{port}/api/v1/login",
                           json={"username": "admin", "password": password.group(1)})
        assert login.status_code == 200, login.text
    finally:
        stop_pid(proc)
    for group in (("gateway", "camera", "--help"), ("sim", "run", "--help"), ("broker", "acl", "--help")):
        assert run(installed, *group, cwd=work).returncode == 0, group
