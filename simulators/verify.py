"""Checks a played scenario against the hub: every expected case opened exactly once with the right rule,
category, severity and grid, stamped after its incident began, and no other case opened. Each row carries
the measured publish→case latency (the hub's opening stamp minus the incident's first publish)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from simulators.player import Played
from simulators.scenario import Scenario


@dataclass
class Row:
    incident: str
    expected: str
    case_id: str | None
    ok: bool
    detail: str
    latency_s: float | None = None
    began_at: float | None = None  # wall clock of the incident's first publish (epoch seconds)


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class HubClient:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=10)

    def cases_since(self, since: float) -> list[dict[str, Any]]:
        cases = self.http.get("/api/v1/cases", params={"limit": 5000}).raise_for_status().json()["cases"]
        return [c for c in cases if _ts(c["opened_at"]) >= since - 1.0]

    def case(self, case_id: str) -> dict[str, Any]:
        case: dict[str, Any] = self.http.get(f"/api/v1/cases/{case_id}").raise_for_status().json()
        return case


def verify(sc: Scenario, played: Played, hub: HubClient, settle: float = 30.0) -> list[Row]:
    """Wait up to `settle` seconds for the expected cases, then judge; one row per incident and per
    unexpected case."""
    expected = [i for i in sc.incidents if i.expect is not None]

    def key(grid: str, device: str | None, category: str) -> tuple[str, str | None, str]:
        return (grid, device, category)

    want = {key(i.expect.grid or sc.device(i.device).grid, i.device, i.expect.category): i
            for i in expected if i.expect is not None}
    deadline = time.monotonic() + settle
    while True:
        cases = hub.cases_since(played.started_wall)
        found = {key(c["grid"], c["device"], c["category"]) for c in cases}
        if set(want) <= found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rows: list[Row] = []
    matched: set[str] = set()
    for k, inc in want.items():
        exp = inc.expect
        assert exp is not None
        label = f"{exp.rule} {exp.category}/{exp.severity} @{k[0]}"
        hits = [c for c in cases if key(c["grid"], c["device"], c["category"]) == k]
        matched.update(c["id"] for c in hits)
        if len(hits) != 1:
            rows.append(Row(inc.id, label, None, False, f"{len(hits)} cases opened, expected 1"))
            continue
        c = hits[0]
        began = played.incident_wall.get(inc.id)
        latency = _ts(c["opened_at"]) - began if began is not None else None
        problems = []
        if c["severity"] != exp.severity:
            problems.append(f"severity {c['severity']}")
        rules = {a.get("rule_id") for a in hub.case(c["id"]).get("alerts", [])}
        if exp.rule not in rules:
            problems.append(f"raised by {sorted(r for r in rules if r)}")
        if latency is None or latency < 0:
            problems.append("opened before the incident began")
        rows.append(Row(inc.id, label, c["id"], not problems, ", ".join(problems) or "opened once",
                        None if latency is None else round(latency, 2), began))
    for c in cases:
        if c["id"] not in matched:
            rows.append(Row("-", "(no case expected)", c["id"], False,
                            f"unexpected {c['category']}/{c['severity']} case at {c['grid']} {c['device']}"))
    return rows


def table(rows: list[Row]) -> str:
    lines = [f"{'result':<7}{'incident':<18}{'expected':<48}{'case':<24}{'latency':>9}  detail"]
    for r in rows:
        lat = f"{r.latency_s:.2f}s" if r.latency_s is not None else "-"
        lines.append(f"{'PASS' if r.ok else 'FAIL':<7}{r.incident:<18}{r.expected:<48}{r.case_id or '-':<24}"
                     f"{lat:>9}  {r.detail}")
    return "\n".join(lines)


def report(rows: list[Row]) -> dict[str, Any]:
    return {"passed": all(r.ok for r in rows), "rows": [asdict(r) for r in rows]}
