"""`gridwatch rules check`, the edge config file, decoders and topics without a broker."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from edge.config import load_edge_config
from edge.errors import ConfigError, Rejected
from edge.topics import Topic, subscriptions
from gridwatch.core.durations import parse_duration


def check(*files):
    return subprocess.run([sys.executable, "-m", "gridwatch", "rules", "check", *map(str, files)],
                          capture_output=True, text=True)


def test_rules_check_accepts_the_shipped_rule_files():
    r = check("configs/rules.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("rules:\n  - id: a\n    match: {metric: x}\n    when: {above: 5, for: 10 parsecs}\n    category: c\n",
     "rules[0].when.for: expected a duration like 10s, 5m or 1h, got '10 parsecs'"),
    ("rules:\n  - id: a\n    match: {metric: x}\n    when: {abov: 5}\n    category: c\n",
     "rules[0].when: expected one condition key of:"),
    ("rules:\n  - id: a\n    match: {metric: x}\n    when: {above: 5, clear_below: 7}\n    category: c\n",
     "rules[0].when: clear_below (7.0) must not exceed above (5.0)"),
    ("rules:\n  - id: a\n    match: {metric: x}\n    when: {above: 5}\n    category: c\n    colour: red\n",
     "rules[0].colour: unknown key (check the spelling)"),
    ("rules:\n  - id: a\n    match: {metric: x}\n    when: {above: 5}\n    category: c\n"
     "  - id: a\n    match: {metric: x}\n    when: {below: 5}\n    category: c\n",
     "rules[1].id: duplicate rule id 'a' (first at rules[0])"),
    ("rules:\n  - id: a\n    when: {all_of: [b, nope]}\n    category: c\n"
     "  - id: b\n    match: {metric: x}\n    when: {below: 5}\n    category: c\n",
     "rules[0].when.all_of[1]: no rule with id 'nope'"),
    ("rules:\n  - id: a\n    match: {kind: fence}\n    when: {event: breach}\n"
     "    suppressed_by: [zz]\n    category: c\n",
     "rules[0].suppressed_by[0]: no rule with id 'zz'"),
    ("rules:\n  - id: a\n    match: {kind: fence}\n    when: {event: breach}\n    category: c\n"
     "    schedule: {active: ['25:00-06:00'], tz: Mars/Olympus}\n",
     "rules[0].schedule.active: Value error"),
    ("rules:\n  - id: a\n    match: {metric: x}\n    when: {above: 5}\n    category: c\n    message: '{nope}'\n",
     "rules[0]: message template: KeyError('nope')"),
    ("rules: [oops", "invalid YAML"),
])
def test_rules_check_prints_file_path_reason_and_exits_1(tmp_path, text, expected):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    r = check(f)
    assert r.returncode == 1
    assert f"{f}:" in r.stdout
    assert expected.replace("Value error", "") in r.stdout, r.stdout


def test_edge_config_errors_name_file_and_path(tmp_path):
    f = tmp_path / "edge.yaml"
    f.write_text(textwrap.dedent("""
        mqtt: {port: 99999, protocl: v5}
        hub: {timeout: soon}
    """))
    with pytest.raises(ConfigError) as exc:
        load_edge_config(f)
    text = str(exc.value)
    assert f"{f}:mqtt.port: Input should be less than or equal to 65535" in text
    assert f"{f}:mqtt.protocl: unknown key" in text
    assert f"{f}:hub.timeout: expected a duration" in text


def test_shipped_edge_config_loads_with_paths_beside_it():
    cfg = load_edge_config("configs/edge.yaml")
    assert cfg.rules.name == "rules.yaml" and cfg.rules.is_absolute() and cfg.rules.exists()


def test_durations():
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25 and parse_duration(3) == 3.0
    for bad in ("", "10", "1x", "-5s", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_topics():
    t = Topic.parse("gw/grid-01/sensor/gas-03/reading")
    assert (t.grid, t.kind, t.device, t.leaf) == ("grid-01", "sensor", "gas-03", "reading")
    for bad in ("gw/grid-01/sensor/gas-03", "xx/grid-01/sensor/gas-03/reading", "gw/g/sensor/" + "d" * 65 + "/reading"):
        with pytest.raises(Rejected):
            Topic.parse(bad)
    assert subscriptions("gw", ["g1", "g2"]) == ["gw/g1/+/+/+", "gw/g2/+/+/+"]
    assert subscriptions("gw", [], "edges") == ["$share/edges/gw/+/+/+/+"]


def test_a_key_given_twice_is_refused_with_its_path_and_line(tmp_path):
    """PyYAML keeps the last of two equal keys without a word: a rule with two `message:` lines (or a hub.yaml
    with two `database:` lines) loaded the second silently. Every config loader now refuses it."""
    f = tmp_path / "rules.yaml"
    f.write_text("rules:\n  - id: a\n    match: {metric: x}\n    when: {above: 1}\n"
                 "    message: one\n    message: two\n")
    r = check(f)
    assert r.returncode == 1
    assert r.stdout.strip() == (f"{f}:rules[0]: 'message' is given twice in one mapping (line 6); the second would "
                                f"silently replace the first")
    hub = tmp_path / "hub.yaml"
    hub.write_text("database: sqlite:///a.db\nkeys: []\ndatabase: sqlite:///b.db\n")
    from gridwatch.core.errors import ConfigError
    from hub.config import load_hub_config

    with pytest.raises(ConfigError) as exc:
        load_hub_config(hub)
    assert exc.value.problems == [f"{hub}:(top): 'database' is given twice in one mapping (line 3); the second "
                                  f"would silently replace the first"]
