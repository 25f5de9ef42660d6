"""Faults suite: the outbox on a real, small tmpfs that fills up (issue 16.6), with a real agent, Mosquitto
and a recording hub. While the disk is full the reason is counted (`disk_full`) and the gas leaks wait
unacknowledged at the broker; once space returns every leak becomes exactly one alert, and a second burst
goes through without the write-ahead log filling the small disk again."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.agent import Agent
from tests.agentkit import GAS_RULES, Gateway, agent_config, wait_until

pytestmark = pytest.mark.slow
SIZE_MB = 16


@pytest.fixture
def small_disk(tmp_path: Path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(disk)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill_up(disk: Path) -> Path:
    """Write a filler file until the file system says ENOSPC."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(chunk)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_outbox_on_a_full_tmpfs_loses_nothing_and_recovers(tmp_path, small_disk, broker, hub):
    cfg = agent_config(tmp_path, broker, hub.url, GAS_RULES, outbox={"path": str(small_disk / "outbox.sqlite")})
    agent = Agent(cfg)
    agent.start()
    gw = Gateway(broker)
    try:
        assert agent.mqtt.wait_connected(10)
        gw.reading("grid-01", "gas-00", ch4_ppm=100.0)
        assert wait_until(lambda: agent.metrics.value("gridwatch_edge_messages_total", kind="sensor") >= 1)
        filler = fill_up(small_disk)
        for i in range(1, 11):
            gw.reading("grid-01", f"leak-{i:02d}", ch4_ppm=9000.0 + i)
        assert wait_until(lambda: agent.metrics.value("gridwatch_edge_outbox_errors_total", reason="disk_full") >= 2,
                          20), "a full disk was not reported as disk_full"
        assert len(hub.unique) == 0  # nothing was committed, so nothing was acknowledged or sent
        filler.unlink()  # space returns
        assert hub.wait_for(10, timeout=30)
        for i in range(11, 21):  # and stays: the log does not fill the small disk again
            gw.reading("grid-01", f"leak-{i:02d}", ch4_ppm=9000.0 + i)
        assert hub.wait_for(20, timeout=30)
        firing = sorted(a["device_id"] for a in hub.unique.values() if a["state"] == "firing")
        assert firing == [f"leak-{i:02d}" for i in range(1, 21)]  # every leak exactly once
        assert hub.duplicates() == {}
        used = sum(p.stat().st_size for p in small_disk.iterdir())
        assert used < SIZE_MB * 1024 * 1024 // 2, f"outbox files use {used} bytes of the {SIZE_MB} MiB disk"
        assert agent.health()[0]
    finally:
        gw.close()
        agent.stop()
