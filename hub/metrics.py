"""The hub's Prometheus metrics: alerts in by result, cases by status and light (read at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import Case


class _CaseCollector(Collector):
    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        g = GaugeMetricFamily("gridwatch_hub_cases", "Cases by status", labels=["status"])
        with Session(self.store.engine) as s:
            for status, n in s.execute(select(Case.status, func.count()).group_by(Case.status)):
                g.add_metric([status], n)
            lights = GaugeMetricFamily("gridwatch_hub_open_cases_light", "Open cases by last announced light",
                                       labels=["light"])
            for light, n in s.execute(select(Case.light_announced, func.count())
                                      .where(Case.status != "closed").group_by(Case.light_announced)):
                lights.add_metric([light or "green"], n)
        yield g
        yield lights


class HubMetrics:
    def __init__(self, store: Any) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter("gridwatch_hub_alerts", "Alerts received, by result", ["status"],
                              registry=self.registry)
        self.registry.register(_CaseCollector(store))
