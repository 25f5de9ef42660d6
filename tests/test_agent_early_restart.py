"""What early-warning rules learned survives an agent SIGKILL: after the restart the next reading is judged
against the device's learned normal (not a fresh warm-up), and the forecast goes on from its saved window."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.agentkit import KEY, Gateway, wait_until

pytestmark = pytest.mark.slow

RULES = """
rules:
  - id: gas-unusual
    match: {metric: ch4_ppm}
    when: {deviation: 4, span: 60, warmup: 1h, min_samples: 60, min_spread: 5}
    category: gas_leak
  - id: water-forecast
    match: {metric: water_level_m}
    when: {forecast_above: 2.5, horizon: 45m, window: 30m, min_samples: 10, min_r2: 0.9}
    category: flood
"""


def configure(tmp_path: Path, broker, hub, client_id: str) -> tuple[Path, Path, Path]:  # noqa: ANN001
    """The agent's rules and config (state saved every 0.5 s); its config file, log and outbox."""
    (tmp_path / "rules.yaml").write_text(RULES)
    cfg = {"edge_id": client_id, "mqtt": {"host": broker.host, "port": broker.port, "client_id": client_id},
           "rules": "rules.yaml", "outbox": {"path": "outbox.sqlite"}, "state_checkpoint": "0.5s",
           "hub": {"url": hub.url, "key": KEY, "key_env": None, "backoff_min": "0.2s", "backoff_max": "1s"},
           "metrics": None}
    cfg_path = tmp_path / "edge.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    return cfg_path, tmp_path / "agent.log", tmp_path / "outbox.sqlite"


def start_agent(cfg_path: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gridwatch", "edge", "run", "-c", str(cfg_path)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def saved(db: Path, key: str) -> dict | None:
    """The evaluator's state of a (rule, device) as the agent last saved it."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            row = c.execute("SELECT data FROM rule_state WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return json.loads(row[0])["d"] if row else None


def subscribed(gw: Gateway, db: Path) -> bool:
    """Readings published before the agent subscribed would be dropped by the broker: probe until one is saved."""
    return wait_until(lambda: gw.reading("grid-09", "probe", ch4_ppm=1) or saved(db, "gas-unusual|probe|") is not None,
                      30, 0.2)


def test_the_learned_normal_and_the_forecast_window_survive_a_sigkill(tmp_path, broker, hub):
    cfg_path, log, db = configure(tmp_path, broker, hub, "edge-early-restart")
    proc = start_agent(cfg_path, log)
    gw = Gateway(broker)
    try:
        assert subscribed(gw, db)
        t0 = time.time() - 3 * 3600
        # two hours of a gas sensor at 100 ppm ± 2 (one reading a minute), and nine readings of a rising river
        for i in range(120):
            gw.reading("grid-01", "gas-01", ts=t0 + i * 60, ch4_ppm=100 + (2 if i % 2 else -2))
        for i in range(9):
            gw.reading("grid-02", "water-01", ts=t0 + 7000 + i * 60, water_level_m=2.0 + 0.01 * i)
        assert wait_until(lambda: (saved(db, "gas-unusual|gas-01|") or {}).get("n", {}).get("0", [0])[0] >= 120
                          and len((saved(db, "water-forecast|water-01|") or {}).get("w", ())) == 18, 60, 0.1), \
            log.read_text()[-2000:]
        assert hub.unique == {}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc = start_agent(cfg_path, log)
        # the next reading of each: far outside the learned 100 ± 2, and the river's tenth rising reading
        gw.reading("grid-01", "gas-01", ts=t0 + 120 * 60, ch4_ppm=160)
        gw.reading("grid-02", "water-01", ts=t0 + 7000 + 9 * 60, water_level_m=2.09)
        assert hub.wait_for(2, 30), (list(hub.unique.values()), saved(db, "water-forecast|water-01|"))
        got = {a["rule_id"]: a for a in hub.unique.values()}
        gas, water = got["gas-unusual"], got["water-forecast"]
        assert abs(float(gas["labels"]["normal"]) - 100) < 1 and float(gas["labels"]["z"]) > 4
        assert water["state"] == "firing" and 60 * 40 <= water["value"] <= 60 * 42  # 0.41 m at 0.01 m/min
    finally:
        gw.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)


def test_without_the_saved_state_the_same_readings_raise_nothing(tmp_path, broker, hub):
    """The control: a fresh agent given only the readings after the restart is still warming up (gas) and has
    one reading in its window (water), so the test above depends on the saved state."""
    cfg_path, log, db = configure(tmp_path, broker, hub, "edge-early-ctl")
    proc = start_agent(cfg_path, log)
    gw = Gateway(broker)
    try:
        assert subscribed(gw, db)
        t0 = time.time() - 3 * 3600
        gw.reading("grid-01", "gas-01", ts=t0 + 120 * 60, ch4_ppm=160)
        gw.reading("grid-02", "water-01", ts=t0 + 7000 + 9 * 60, water_level_m=2.09)
        # both judged (their state saved: one reading learned, one in the window), and nothing raised
        assert wait_until(lambda: (saved(db, "gas-unusual|gas-01|") or {}).get("n", {}).get("0", [0])[0] == 1
                          and len((saved(db, "water-forecast|water-01|") or {}).get("w", ())) == 2, 60, 0.1), \
            log.read_text()[-2000:]
        time.sleep(1.0)  # an alert would have been committed with the state, and forwarded within this
        assert hub.unique == {}
    finally:
        gw.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
