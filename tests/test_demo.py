"""`make demo` runs end to end: broker, agent and scripted gateways raise the scripted alerts."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_raises_the_scripted_alerts():
    out = subprocess.run([sys.executable, "-m", "gridwatch.demo", "--duration", "32"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    final = out.stdout.split("final:")[-1]
    for rule, device in [("gas-high", "gas-03"), ("water-rising", "water-01"), ("fence-breach", "fence-01"),
                         ("sensor-silent", "gas-02")]:
        assert any(rule in line and device in line and "firing" in line for line in final.splitlines()), final
