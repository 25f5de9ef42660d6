"""Helpers for video tests: captures of synthetic scenes (camera JPEG / thermal PNG) for backtest runs."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from typing import Any

from edge.backtest import backtest
from edge.rules.loader import load_rules
from edge.rules.ruleset import RuleSet
from edge.sensors.common import Limits
from gridwatch.core.alert import Alert
from tests.rulekit import T0


def iso(ts: float) -> str:
    from gridwatch.core.alert import from_epoch, iso_ms

    return iso_ms(from_epoch(ts))


def frame_line(kind: str, device: str, t: float, data: bytes, grid: str = "grid-01") -> dict[str, Any]:
    ts = T0 + t
    return {"topic": f"gw/{grid}/{kind}/{device}/frame", "received_at": iso(ts),
            "payload_b64": base64.b64encode(data).decode(), "properties": {"ts": str(round(ts * 1000))}}


def run_capture(tmp_path: Path, rules: str, lines: list[dict[str, Any]], limits: Limits | None = None) -> Any:
    rf = tmp_path / "rules.yaml"
    rf.write_text(textwrap.dedent(rules))
    cap = tmp_path / "capture.jsonl"
    cap.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return backtest(RuleSet(load_rules(rf)), cap, limits=limits)


def firing(res: Any, rule: str | None = None) -> list[Alert]:
    return [a for a in res.alerts if a.state == "firing" and (rule is None or a.rule_id == rule)]
