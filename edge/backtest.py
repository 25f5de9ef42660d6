"""Backtest: replay a JSONL capture through a rule file in event time, with no broker and no hub; with `trace`,
what one rule concluded at every reading it judged (a forecast's time to the line, a normal and its spread) so
an operator can tune it."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from edge.errors import Rejected
from edge.feeds import FeedSet
from edge.feeds.spec import FeedSpec
from edge.message import Event, Message
from edge.rules.base import Verdict
from edge.rules.engine import Engine
from edge.rules.episode import Episode
from edge.rules.ruleset import CompiledRule, RuleSet
from edge.sensors.common import Limits
from edge.video.pipeline import Video
from gridwatch.core.alert import Alert


@dataclass
class BacktestResult:
    alerts: list[Alert] = field(default_factory=list)
    messages: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    trace: list[dict[str, object]] = field(default_factory=list)

    def per_rule(self) -> Counter[tuple[str, str]]:
        return Counter((a.rule_id, a.state) for a in self.alerts)


def read_capture(path: str | Path) -> Iterator[Message | Rejected]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                received = datetime.fromisoformat(str(rec["received_at"]).replace("Z", "+00:00")).timestamp()
                if "payload_b64" in rec:
                    payload = base64.b64decode(rec["payload_b64"])
                elif isinstance(rec.get("payload"), str):
                    payload = rec["payload"].encode("utf-8")
                else:
                    payload = json.dumps(rec.get("payload")).encode("utf-8")
                yield Message(topic=str(rec["topic"]), payload=payload, received_at=received,
                              properties={str(k): str(v) for k, v in (rec.get("properties") or {}).items()})
            except (ValueError, KeyError, TypeError) as exc:
                yield Rejected("bad_capture_line", f"{path}:{n}: {exc}")


def backtest(ruleset: RuleSet, capture: str | Path, *, root: str = "gw", limits: Limits | None = None,
             edge_id: str = "backtest", feeds: FeedSet | None = None, trace: str | None = None) -> BacktestResult:
    """Feed the capture through the feeds (the native contract by default) and the rules; timers fire on
    event time, as they would have live. `trace`: a rule id whose every judged reading is recorded."""
    limits = limits or Limits()
    if feeds is None:
        native = FeedSpec(name="gridwatch", topic=f"{root}/+/+/+/+", format="gridwatch")
        feeds = FeedSet([native], limits, root)
    video = Video()
    engine = Engine(ruleset, edge_id, evidence=video.evidence)
    res = BacktestResult()
    if trace is not None:
        engine.trace = lambda cr, ev, v, st: _traced(res, trace, cr, ev, v, st)
    last = None
    for item in read_capture(capture):
        if isinstance(item, Rejected):
            res.rejected[item.reason] += 1
            continue
        res.messages += 1
        try:
            events = feeds.decode(item)
        except Rejected as rej:
            res.rejected[rej.reason] += 1
            continue
        for ev in events:
            res.alerts += engine.tick(ev.ts)
            res.alerts += video.observe(engine, ev)
            last = ev.ts if last is None else max(last, ev.ts)
    if last is not None:
        res.alerts += engine.tick(last)
    return res


def _traced(res: BacktestResult, rule: str, cr: CompiledRule, ev: Event, v: Verdict | None, st: Episode) -> None:
    if cr.id != rule:
        return
    metric = cr.spec.match.metric
    row: dict[str, object] = {"ts": ev.ts, "device": ev.device, "phase": st["ep"]}
    if metric is not None and metric in ev.metrics:
        row[metric] = ev.metrics[metric]
    if v is not None:
        row["cond"] = v.cond
        if v.value is not None:
            row["value"] = v.value
        if v.level is not None:
            row["level"] = v.level
        row.update(v.note or {})
    if "lvl" in st:
        row["episode_level"] = st["lvl"]
    res.trace.append(row)
