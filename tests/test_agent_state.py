"""Agent rounds driven by hand with an injected clock: timers, restarts, rule reloads, last good rules."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
from pathlib import Path

import pytest

from edge.agent import Agent
from edge.errors import ConfigError
from edge.message import Message
from simulators.services import Broker
from tests.agentkit import agent_config
from tests.rulekit import T0

RULES = """
rules:
  - id: gas-high
    match: {metric: ch4_ppm}
    when: {above: 5000, for: 10s, clear_below: 4000}
    category: gas_leak
  - id: smoke-high
    match: {metric: smoke}
    when: {above: 10}
    category: fire
"""

NOBROKER = Broker("127.0.0.1", 1, None)  # type: ignore[arg-type]  # these agents are never started


ACKED: list[str] = []


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def msg(t: float, device: str = "gas-01", **metrics: float) -> Message:
    body = {"ts": int((T0 + t) * 1000), "metrics": metrics}
    key = f"{device}@{t}"
    return Message(f"gw/grid-01/sensor/{device}/reading", json.dumps(body).encode(), T0 + t,
                   ack=lambda: ACKED.append(key))


def make(tmp_path: Path, clock: Clock, rules: str = RULES) -> Agent:
    return Agent(agent_config(tmp_path, NOBROKER, "http://127.0.0.1:1", rules), clock=clock)


def outbox_rows(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "outbox.sqlite") as c:
        return list(c.execute("SELECT json_extract(body, '$.rule_id'), state FROM outbox ORDER BY seq"))


def test_hold_timer_fires_on_the_clock_and_messages_are_acked_after_commit(tmp_path):
    clock = Clock()
    agent = make(tmp_path, clock)
    ACKED.clear()
    agent.step([msg(0, ch4_ppm=6000)])
    assert ACKED == ["gas-01@0"] and outbox_rows(tmp_path) == []
    clock.t = T0 + 9
    assert agent.step([]) == []
    clock.t = T0 + 10
    assert [a.state for a in agent.step([])] == ["firing"]
    assert outbox_rows(tmp_path) == [("gas-high", "firing")]


def test_restart_neither_refires_nor_forgets_a_firing_alarm(tmp_path):
    clock = Clock()
    agent = make(tmp_path, clock)
    agent.step([msg(0, ch4_ppm=6000), msg(0, device="smoke-01", smoke=50)])
    clock.t = T0 + 10
    agent.step([])
    agent.outbox.close()
    assert sorted(outbox_rows(tmp_path)) == [("gas-high", "firing"), ("smoke-high", "firing")]

    clock.t = T0 + 20
    again = make(tmp_path, clock)  # a restart: same outbox file
    assert again.step([msg(20, ch4_ppm=7000), msg(20, device="smoke-01", smoke=60)]) == []
    resolved = again.step([msg(21, ch4_ppm=100)])
    assert [(a.rule_id, a.state) for a in resolved] == [("gas-high", "resolved")]
    rows = outbox_rows(tmp_path)
    assert rows.count(("gas-high", "firing")) == 1 and ("gas-high", "resolved") in rows


def test_restart_keeps_a_pending_hold(tmp_path):
    clock = Clock()
    make(tmp_path, clock).step([msg(0, ch4_ppm=6000)])
    clock.t = T0 + 10
    fired = make(tmp_path, clock).step([])
    assert [a.state for a in fired] == ["firing"]


def _rewrite(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_reload_keeps_state_of_unchanged_rules_and_resolves_removed_ones(tmp_path):
    clock = Clock()
    agent = make(tmp_path, clock)
    agent.step([msg(0, ch4_ppm=6000), msg(0, device="smoke-01", smoke=50)])
    clock.t = T0 + 10
    agent.step([])
    old_hash = agent.engine.rules.rules["gas-high"].version
    _rewrite(tmp_path / "rules.yaml", RULES.split("  - id: smoke-high")[0])
    assert agent.check_rules() is True
    out = agent.step([msg(11, ch4_ppm=7000)])
    assert [(a.rule_id, a.state, a.labels.get("resolved_by")) for a in out] == [
        ("smoke-high", "resolved", "rule_removed")]
    assert agent.engine.rules.rules["gas-high"].version == old_hash
    assert [(a.rule_id, a.state) for a in agent.step([msg(12, ch4_ppm=100)])] == [("gas-high", "resolved")]


def test_invalid_reload_keeps_last_good_rules_and_counts_it(tmp_path, caplog):
    clock = Clock()
    agent = make(tmp_path, clock)
    _rewrite(tmp_path / "rules.yaml", "rules:\n  - id: broken\n    when: {abuve: 3}\n    category: x\n")
    assert agent.check_rules() is False
    assert agent.metrics.value("gridwatch_edge_rule_reloads_total", result="invalid") == 1
    assert "rules[0].when" in caplog.text
    agent.step([msg(0, device="smoke-01", smoke=50)])
    assert outbox_rows(tmp_path) == [("smoke-high", "firing")]


def test_start_with_invalid_file_runs_last_good_version(tmp_path):
    clock = Clock()
    make(tmp_path, clock).outbox.close()
    (tmp_path / "rules.yaml").write_text("rules: [oops")
    agent = Agent(agent_config(tmp_path, NOBROKER, "http://127.0.0.1:1", RULES, rewrite_rules=False), clock=clock)
    assert set(agent.engine.rules.rules) == {"gas-high", "smoke-high"}


def test_start_with_invalid_file_and_no_last_good_fails_with_reasons(tmp_path):
    (tmp_path / "rules.yaml").write_text("rules:\n  - id: x\n    when: {above: 1}\n    category: c\n")
    with pytest.raises(ConfigError) as exc:
        Agent(agent_config(tmp_path, NOBROKER, "http://127.0.0.1:1", "", rewrite_rules=False))
    assert "rules[0]: a threshold condition needs match.metric" in str(exc.value)


def test_message_is_not_acked_while_the_outbox_cannot_commit(tmp_path, monkeypatch):
    """Failure injection: the disk refuses the first commit; the ack waits until the alert is stored."""
    clock = Clock()
    agent = make(tmp_path, clock)
    real = agent.outbox.commit
    calls: list[list[str]] = []

    def flaky(alerts, states, deleted=None, now=None):
        calls.append(list(ACKED))
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(alerts, states, deleted, now)

    monkeypatch.setattr(agent.outbox, "commit", flaky)
    ACKED.clear()
    agent.step([msg(0, device="smoke-01", smoke=50)])
    assert calls == [[], []] and ACKED == ["smoke-01@0"]
    assert outbox_rows(tmp_path) == [("smoke-high", "firing")]


CAMERA_RULES = """
rules:
  - id: lens
    match: {kind: camera}
    when: {tamper: {for: 0s}}
    category: tamper
"""


def test_camera_baselines_survive_a_restart_so_a_blurred_start_is_still_defocus(tmp_path):
    import base64

    from simulators.scenes import CameraSim, View

    cam = CameraSim(4)

    def frame(t: float, view: View) -> Message:
        ts = 1_795_000_000.0 + t
        return Message("gw/grid-01/camera/cam-01/frame", cam.jpeg(t, view), ts, {"ts": str(int(ts * 1000))})

    clock = Clock()
    agent = Agent(agent_config(tmp_path, NOBROKER, "http://127.0.0.1:1", CAMERA_RULES), clock=clock)
    for i in range(20):
        assert agent.step([frame(i * 0.2, View())]) == []
    agent.save_scenes()
    agent.outbox.close()
    # restarted while the lens is blurred: judged against the saved baseline, not learned as normal
    again = Agent(agent_config(tmp_path, NOBROKER, "http://127.0.0.1:1", CAMERA_RULES, rewrite_rules=False),
                  clock=clock)
    fired = again.step([frame(10.0, View(blur=True))])
    assert [(a.state, a.labels["tamper"]) for a in fired] == [("firing", "defocus")]
    assert base64.b64decode(fired[0].evidence.snapshot_jpeg_b64)[:2] == b"\xff\xd8"
    again.outbox.close()


def test_one_reading_from_the_future_does_not_blind_the_device(tmp_path):
    """Issue 16.5: a reading stamped 280 s ahead (inside the 300 s skew limit) made the device's next real
    readings out of order for minutes. Now time further ahead than `clock_tolerance` is replaced by the
    receive time, and counted."""
    clock = Clock()
    agent = make(tmp_path, clock, rules="""
rules:
  - id: smoke-high
    match: {metric: smoke}
    when: {above: 10}
    category: fire
""")
    ahead = json.dumps({"ts": int((T0 + 280) * 1000), "metrics": {"smoke": 1.0}}).encode()
    agent.step([Message("gw/grid-01/sensor/sm-01/reading", ahead, T0)])
    clock.t = T0 + 1
    fired = agent.step([msg(1, device="sm-01", smoke=50.0)])
    assert [(a.rule_id, a.state) for a in fired] == [("smoke-high", "firing")]
    assert agent.engine.ignored["out_of_order"] == 0
    assert agent.metrics.value("gridwatch_edge_clock_ahead_total") == 1
    agent.outbox.close()
