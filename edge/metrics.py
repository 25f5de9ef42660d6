"""The agent's Prometheus metrics, in a registry of its own (several agents can share a process in tests)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


class _EngineCollector(Collector):
    """Reads the engine's plain counters at scrape time, so the hot path never touches prometheus."""

    def __init__(self, engine: Callable[[], Any], depth: Callable[[], int],
                 broker: Callable[[], int] | None = None) -> None:
        self.engine, self.depth, self.broker = engine, depth, broker

    def collect(self) -> Iterator[Any]:
        eng = self.engine()
        evals = CounterMetricFamily("gridwatch_edge_rule_evaluations", "Events evaluated, per rule", labels=["rule"])
        for rule, n in dict(eng.evaluations).items():
            evals.add_metric([rule], n)
        alerts = CounterMetricFamily("gridwatch_edge_alerts", "Alerts raised, per rule and state",
                                     labels=["rule", "state"])
        for (rule, state), n in dict(eng.alerts).items():
            alerts.add_metric([rule, state], n)
        ignored = CounterMetricFamily("gridwatch_edge_ignored", "Events a rule did not use, by reason",
                                      labels=["reason"])
        for reason, n in dict(eng.ignored).items():
            ignored.add_metric([reason], n)
        yield evals
        yield alerts
        yield ignored
        yield GaugeMetricFamily("gridwatch_edge_outbox_depth", "Alerts waiting for the hub", value=self.depth())
        if self.broker is not None:
            yield CounterMetricFamily("gridwatch_edge_broker_moves", "Moves to the next node of a clustered broker",
                                      value=self.broker())


def serve(registry: CollectorRegistry, host: str, port: int,
          health: Callable[[], tuple[bool, str]] | None = None) -> Any:
    """Serve `/metrics` of a registry and `/healthz` in a daemon thread; the server (for `shutdown()`)."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok, why = health() if health is not None else (True, "ok")
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"status": "ok" if ok else "unhealthy", "reason": why}).encode()]
        return metrics_app(environ, start_response)

    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="gridwatch-metrics", daemon=True).start()
    return server


class AgentMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter("gridwatch_edge_messages", "Messages received, by feed kind", ["kind"], registry=r)
        self.rejected = Counter("gridwatch_edge_rejected", "Messages rejected, by reason", ["reason"], registry=r)
        self.clock_steps = Counter("gridwatch_edge_clock_steps", "Steps of the wall clock the timers were moved "
                                   "past", registry=r)
        self.unmapped = Counter("gridwatch_edge_unmapped", "Messages no feed maps, by the subscription they came "
                                "through", ["filter"], registry=r)
        self.forward_latency = Histogram("gridwatch_edge_forward_latency_seconds",
                                         "Outbox commit to hub acknowledgement", registry=r,
                                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.forward_errors = Counter("gridwatch_edge_forward_errors", "Failed sends to the hub", ["reason"],
                                      registry=r)
        self.frames_dropped = Counter("gridwatch_edge_frames_dropped", "Camera/thermal frames replaced by a newer "
                                      "frame of the same camera before the worker got to them", registry=r)
        self.frame_seconds = Histogram("gridwatch_edge_frame_seconds",
                                       "Scene model, rules and evidence per frame (after decoding), by kind",
                                       ["kind"], registry=r,
                                       buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5))
        self.reloads = Counter("gridwatch_edge_rule_reloads", "Rule file reloads", ["result"], registry=r)
        self.timeseries_errors = Counter("gridwatch_edge_timeseries_errors", "Failed time-series writes",
                                         registry=r)
        self.batch_latency = Histogram("gridwatch_edge_receive_to_commit_seconds",
                                       "Receipt to outbox commit of the oldest message of each batch", registry=r,
                                       buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))
        self.worker_errors = Counter("gridwatch_edge_worker_errors", "Worker rounds that failed outside any one "
                                     "message (their messages are kept as dead messages)", registry=r)
        self.worker_restarts = Counter("gridwatch_edge_worker_restarts", "Times the rule worker was found dead "
                                       "and restarted", registry=r)
        self.outbox_errors = Counter("gridwatch_edge_outbox_errors", "Failed outbox commits, by reason "
                                     "(disk_full, locked, read_only, io_error, other)", ["reason"], registry=r)
        self.clock_ahead = Counter("gridwatch_edge_clock_ahead", "Messages whose device time was ahead of the "
                                   "receive clock by more than limits.clock_tolerance (receive time used)",
                                   registry=r)
        self._server: Any = None

    def watch(self, engine: Callable[[], Any], depth: Callable[[], int],
              broker: Callable[[], int] | None = None) -> None:
        self.registry.register(_EngineCollector(engine, depth, broker))

    def serve(self, host: str, port: int, health: Callable[[], tuple[bool, str]] | None = None) -> int:
        """`/metrics` (Prometheus) and `/healthz` (200 or 503 with the reason) on one port."""
        self._server = serve(self.registry, host, port, health)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def value(self, name: str, **labels: str) -> float:
        v = self.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v
