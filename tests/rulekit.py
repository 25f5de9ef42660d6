"""Helpers for rule tests: build an engine from YAML text and drive it with events on a fake clock."""

from __future__ import annotations

import textwrap
from pathlib import Path

from edge.message import Event
from edge.rules.engine import Engine
from edge.rules.loader import load_rules
from edge.rules.ruleset import RuleSet
from gridwatch.core.alert import Alert

T0 = 1_795_000_000.0  # a fixed epoch second in 2026


def ruleset(tmp_path: Path, text: str) -> RuleSet:
    p = tmp_path / "rules.yaml"
    p.write_text(textwrap.dedent(text))
    return RuleSet(load_rules(p))


def engine(tmp_path: Path, text: str) -> Engine:
    return Engine(ruleset(tmp_path, text), edge_id="edge-t")


def reading(t: float, device: str = "gas-01", grid: str = "grid-01", **metrics: float) -> Event:
    return Event(kind="sensor", grid=grid, device=device, ts=T0 + t, received_at=T0 + t, metrics=metrics)


def fence(t: float, event: str, device: str = "fence-01", grid: str = "grid-01", zone: str = "z1") -> Event:
    return Event(kind="fence", grid=grid, device=device, ts=T0 + t, received_at=T0 + t, zone=zone, event=event)


def status(t: float, state: str, device: str = "gas-01", grid: str = "grid-01", kind: str = "sensor") -> Event:
    return Event(kind="status", grid=grid, device=device, ts=T0 + t, received_at=T0 + t, event=state,
                 device_kind=kind)


class Driver:
    """Feeds events and clock ticks in time order, collecting every alert."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.alerts: list[Alert] = []

    def send(self, ev: Event) -> list[Alert]:
        got = self.eng.tick(ev.ts) + self.eng.observe(ev)
        self.alerts += got
        return got

    def at(self, t: float) -> list[Alert]:
        got = self.eng.tick(T0 + t)
        self.alerts += got
        return got

    def states(self, rule: str | None = None) -> list[str]:
        return [a.state for a in self.alerts if rule is None or a.rule_id == rule]
