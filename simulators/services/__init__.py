"""Real services started on free loopback ports and torn down by PID (tests, benchmarks, the demo).

Mosquitto (plain, and with password + ACL) and VictoriaMetrics (InfluxDB v2 write API).

One module per kind: `process` (ports, stopping), `mosquitto`, `databases` (VictoriaMetrics, PostgreSQL),
`cluster` (NATS, Patroni, HAProxy)."""

from simulators.services.cluster import (
    HAPROXY_SHIPPED,
    NATS_SHIPPED,
    PATRONI_SHIPPED,
    NatsCluster,
    NatsNode,
    PatroniCluster,
    PatroniNode,
    Proxy,
    start_haproxy,
    start_nats_cluster,
    start_patroni_cluster,
)
from simulators.services.databases import Postgres, Victoria, start_postgres, start_victoria
from simulators.services.mosquitto import MOSQUITTO_BASE, SHIPPED, Broker, start_mosquitto, start_shipped_mosquitto
from simulators.services.process import binary, free_port, stop_pid, wait_port

__all__ = ["Broker", "HAPROXY_SHIPPED", "MOSQUITTO_BASE", "NATS_SHIPPED", "NatsCluster", "NatsNode", "PATRONI_SHIPPED",
           "PatroniCluster", "PatroniNode", "Postgres", "Proxy", "SHIPPED", "Victoria", "binary",
           "free_port", "start_haproxy", "start_mosquitto", "start_nats_cluster", "start_patroni_cluster",
           "start_postgres", "start_shipped_mosquitto", "start_victoria", "stop_pid", "wait_port"]
