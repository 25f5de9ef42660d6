"""SIGKILL the agent process during a burst of QoS 1 readings: nothing lost, nothing raised twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.agentkit import GAS_RULES, KEY, Gateway, wait_until

pytestmark = pytest.mark.slow



def start_agent(cfg_path: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gridwatch", "edge", "run", "-c", str(cfg_path)],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env)  # noqa: SIM115


def test_sigkill_during_burst_loses_no_alert_and_duplicates_none(tmp_path, broker, hub):
    (tmp_path / "rules.yaml").write_text(GAS_RULES)
    cfg = {"edge_id": "edge-k", "mqtt": {"host": broker.host, "port": broker.port, "client_id": "edge-crash-test"},
           "rules": "rules.yaml", "outbox": {"path": "outbox.sqlite"},
           "hub": {"url": hub.url, "key": KEY, "key_env": None, "backoff_min": "0.2s", "backoff_max": "1s"},
           "metrics": None, "batch_max": 50}
    cfg_path = tmp_path / "edge.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "agent.log"
    proc = start_agent(cfg_path, log)
    try:
        # the persistent session must exist before the burst, so wait for the first alert to pass through
        gw = Gateway(broker)
        t0 = time.time() - 3600
        assert wait_until(lambda: (gw.reading("grid-01", "warmup", ts=t0, ch4_ppm=9000) or hub.wait_for(1, 1)), 30)
        devices = [f"gas-{i:04d}" for i in range(1500)]
        killed = threading.Event()

        def killer() -> None:
            wait_until(lambda: len(hub.unique) > 150, 60, 0.005)
            os.kill(proc.pid, signal.SIGKILL)
            killed.set()

        threading.Thread(target=killer, daemon=True).start()
        for step in range(3):  # three readings per device above the limit: one episode each
            for d in devices:
                gw.reading("grid-01", d, ts=t0 + 10 + step, ch4_ppm=9000)
        assert killed.wait(60), "agent was not killed mid-burst"
        proc.wait()
        published_while_down = [f"gas-late-{i}" for i in range(50)]
        for d in published_while_down:
            gw.reading("grid-01", d, ts=t0 + 20, ch4_ppm=9000)
        proc = start_agent(cfg_path, log)
        expected = 1 + len(devices) + len(published_while_down)
        assert hub.wait_for(expected, 120), f"{len(hub.unique)} of {expected} alerts arrived"
        time.sleep(1.0)
        per_device = Counter(a["device_id"] for a in hub.unique.values())
        print(f"resent after the crash (hub dedups by id): {sum(hub.duplicates().values())}")
        assert len(hub.unique) == expected
        assert set(per_device.values()) == {1}
        gw.close()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
