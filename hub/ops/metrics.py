"""The hub's Prometheus metrics: alerts in by result, cases by status and light (read at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hub.policy.calendar_watch import days_left
from hub.store.cases import Store

if TYPE_CHECKING:
    from hub.audit.forward import Forwarder
    from hub.boot.notifier_process import NotifierProcess
    from hub.cases.scheduler import Scheduler
    from hub.notify.files import NoticeFiles
    from hub.notify.notifier import Notifier
    from hub.stream.fanout import EventFeed
    from hub.stream.mqtt_events import CaseEventPublisher


class _CaseCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        g = GaugeMetricFamily("gridwatch_hub_cases", "Cases by status", labels=["status"])
        by_status, by_light = self.store.case_counts()
        for status, n in by_status.items():
            g.add_metric([status], n)
        lights = GaugeMetricFamily("gridwatch_hub_open_cases_light", "Open cases by last announced light",
                                   labels=["light"])
        for light, n in by_light.items():
            lights.add_metric([light], n)
        yield g
        yield lights


class _CalendarCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        g = GaugeMetricFamily("gridwatch_hub_calendar_days_left", "Days of holiday data left from today in each "
                              "working-time calendar an SLA policy names (0: none for this year, or the calendar "
                              "is missing)", labels=["calendar"])
        for name, n in sorted(days_left(self.store.calendars, self.store.sla, self.store.today()).items()):
            g.add_metric([name], n)
        yield g


class _NotifierCollector(Collector):
    def __init__(self, files: NoticeFiles, notifier: Notifier | None, sender: NotifierProcess | None) -> None:
        self.files, self.notifier, self.sender = files, notifier, sender

    def collect(self) -> Iterator[Any]:
        from hub.notify.queue import by_channel, retries

        g = GaugeMetricFamily("gridwatch_hub_notices", "Notices in the database by channel and state (pending, "
                              "sending, delivered, failed, stopped): every replica's, from the queue itself",
                              labels=["channel", "state"])
        for (channel, state), n in sorted(by_channel(self.files.store).items()):
            g.add_metric([channel, state], n)
        yield g
        off = GaugeMetricFamily("gridwatch_hub_notify_channel_off", "1 for a channel of notify.yaml that is off "
                                "because a secret's environment variable is not set", labels=["channel"])
        for cid in sorted(self.files.cfg.notify.off):
            off.add_metric([cid], 1)
        yield off
        c = GaugeMetricFamily("gridwatch_hub_notice_retries", "Sends tried again (timeouts, 429, 5xx, vendors' "
                              "rate-limit codes): attempts beyond each notice's first, by channel, every replica's",
                              labels=["channel"])
        for channel, n in sorted(retries(self.files.store).items()):
            c.add_metric([channel], n)
        yield c
        leading = (self.sender.leading.value if self.sender is not None
                   else int(self.notifier.leading) if self.notifier is not None else 0)
        yield GaugeMetricFamily("gridwatch_hub_notifier_leader", "1 while this hub is the one notice sender",
                                value=1 if leading else 0)


class _SchedulerCollector(Collector):
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator[Any]:
        c = CounterMetricFamily("gridwatch_hub_scheduler_actions", "Escalation steps this process's scheduler "
                                "carried out, by action (escalate, notify_backup, remind)", labels=["action"])
        for action in ("escalate", "notify_backup", "remind"):
            c.add_metric([action], self.scheduler.done[action])
        yield c


class HubMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter("gridwatch_hub_alerts", "Alerts received, by result", ["status"],
                              registry=self.registry)
        self.auth_failures = Counter("gridwatch_hub_auth_failures", "Requests refused for a wrong API key",
                                     registry=self.registry)
        self.csp_violations = Counter("gridwatch_hub_csp_violations", "What browsers reported the board's "
                                      "Content-Security-Policy blocked, by directive", ["directive"],
                                      registry=self.registry)
        self.audit_failures = Counter("gridwatch_hub_audit_failures", "Audited acts that could not be recorded",
                                      registry=self.registry)
        self.registry.register(_CaseCollector(store))
        self.registry.register(_CalendarCollector(store))

    def watch_notifier(self, files: NoticeFiles, notifier: Notifier | None = None,
                       sender: NotifierProcess | None = None) -> None:
        """The notice queue, the channels off, and the sender (in this process for tests, else its child)."""
        self.registry.register(_NotifierCollector(files, notifier, sender))

    def watch_scheduler(self, scheduler: Scheduler) -> None:
        """What this process's scheduler did: with several replicas, each one's share of the work."""
        self.registry.register(_SchedulerCollector(scheduler))

    def watch_forwarder(self, forwarder: Forwarder) -> None:
        Gauge("gridwatch_hub_audit_syslog_backlog", "Audit records not yet sent to the log server",
              registry=self.registry).set_function(forwarder.backlog)
        Gauge("gridwatch_hub_audit_syslog_sent", "Audit records sent to the log server (since start)",
              registry=self.registry).set_function(lambda: forwarder.sent)
        Gauge("gridwatch_hub_audit_syslog_failures", "Sends to the log server that failed (since start; each is "
              "retried from where it stopped)", registry=self.registry).set_function(lambda: forwarder.failures)

    def watch_feed(self, feed: EventFeed, publisher: CaseEventPublisher | None) -> None:
        """Stream and publisher state, read at scrape time."""
        Gauge("gridwatch_hub_stream_clients", "Stream (SSE) connections now",
              registry=self.registry).set_function(lambda: feed.count)
        Gauge("gridwatch_hub_stream_dropped", "Stream connections ended for falling too far behind (since start)",
              registry=self.registry).set_function(lambda: feed.dropped)
        Gauge("gridwatch_hub_mqtt_leader", "1 while this process is the one MQTT case-event publisher",
              registry=self.registry).set_function(lambda: 1 if publisher is not None and publisher.leading else 0)
