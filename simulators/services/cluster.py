"""The reference deployment's parts started for real: three NATS nodes, Patroni over etcd with two PostgreSQL,
and HAProxy in front of hubs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from simulators.services.process import binary, free_port, stop_pid, wait_port

NATS_SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "nats"


@dataclass
class NatsNode:
    name: str
    mqtt_port: int
    http_port: int
    cluster_port: int
    client_port: int
    store: Path
    proc: subprocess.Popen[bytes] | None = None

    def healthy(self) -> bool:
        """The node's own word that JetStream's cluster has a leader and this node is current with it."""
        try:
            return httpx.get(f"http://127.0.0.1:{self.http_port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class NatsCluster:
    """Three nats-server processes on `configs/nats/` as shipped: the site values and the users' passwords come
    from each node's environment, as a systemd unit would give them (plain-text passwords: tests only)."""

    workdir: Path
    nodes: list[NatsNode]
    users: dict[str, str]

    @property
    def brokers(self) -> list[str]:
        return [f"127.0.0.1:{n.mqtt_port}" for n in self.nodes]

    def env(self, node: NatsNode) -> dict[str, str]:
        routes = {f"GW_NATS_ROUTE_{i + 1}": f"nats-route://127.0.0.1:{n.cluster_port}"
                  for i, n in enumerate(self.nodes)}
        passwords = {f'PW_{u.upper().replace("-", "_").replace(".", "_")}': f'"{p}"' for u, p in self.users.items()}
        return {**os.environ, **routes, **passwords, "GW_NATS_NAME": node.name, "GW_NATS_HOST": "127.0.0.1",
                "GW_NATS_STORE": str(node.store), "GW_NATS_CLIENT_PORT": str(node.client_port),
                "GW_NATS_MQTT_PORT": str(node.mqtt_port), "GW_NATS_CLUSTER_PORT": str(node.cluster_port),
                "GW_NATS_HTTP_PORT": str(node.http_port)}

    def start(self, node: NatsNode) -> None:
        log = open(self.workdir / f"{node.name}.log", "ab")  # noqa: SIM115
        node.proc = subprocess.Popen([binary("nats-server", "/usr/bin/nats-server"), "-c",
                                      str(self.workdir / "node.conf")], env=self.env(node), stdout=log,
                                     stderr=subprocess.STDOUT)

    def kill(self, node: NatsNode) -> None:
        """SIGKILL: no clean shutdown."""
        if node.proc is not None:
            node.proc.kill()
            node.proc.wait(10)
            node.proc = None

    def ready(self, timeout: float = 60.0) -> float:
        """Wait until every running node says JetStream's cluster is ready (`/healthz`); the seconds it took."""
        t0 = time.monotonic()
        while not all(n.healthy() for n in self.nodes if n.proc is not None):
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    log = (self.workdir / f"{n.name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"nats-server {n.name} exited: {log}")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError("the NATS cluster did not become ready (JetStream has no meta leader)")
            time.sleep(0.2)
        return time.monotonic() - t0

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None:
                stop_pid(n.proc)
                n.proc = None


def start_nats_cluster(workdir: Path, users: dict[str, str], size: int = 3) -> NatsCluster:
    """The shipped three-node cluster on loopback, ready (JetStream's cluster formed) when this returns."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("node.conf", "users.conf"):
        shutil.copy(NATS_SHIPPED / name, workdir / name)
    nodes = [NatsNode(f"nats-{i + 1}", free_port(), free_port(), free_port(), free_port(), workdir / f"store-{i + 1}")
             for i in range(size)]
    cluster = NatsCluster(workdir, nodes, dict(users))
    for n in nodes:
        cluster.start(n)
    try:
        cluster.ready()
    except Exception:
        cluster.stop()
        raise
    return cluster


PATRONI_SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "patroni" / "patroni.yml"


@dataclass
class PatroniNode:
    name: str
    pg_port: int
    rest_port: int
    data: Path
    proc: subprocess.Popen[bytes] | None = None

    def role(self) -> str | None:
        """"primary", "sync" (the synchronous standby), "replica", or None (not answering)."""
        for role, path in (("primary", "primary"), ("sync", "sync"), ("replica", "replica")):
            try:
                if httpx.get(f"http://127.0.0.1:{self.rest_port}/{path}", timeout=2).status_code == 200:
                    return role
            except httpx.HTTPError:
                return None
        return None


@dataclass
class PatroniCluster:
    """etcd and two Patroni-run PostgreSQL nodes on `configs/patroni/patroni.yml` as shipped, the per-node values
    from the environment; as user postgres when run as root."""

    workdir: Path
    etcd: subprocess.Popen[bytes]
    etcd_port: int
    nodes: list[PatroniNode]
    password: str
    bindir: Path

    @property
    def url(self) -> str:
        """The hubs' multi-host URL: libpq finds the primary (target_session_attrs=read-write)."""
        hosts = "&".join(f"host=127.0.0.1:{n.pg_port}" for n in self.nodes)
        return (f"postgresql+psycopg://postgres:{self.password}@/postgres?{hosts}"
                "&target_session_attrs=read-write&connect_timeout=3")

    def start(self, node: PatroniNode) -> None:
        env = {**os.environ, "PATRONI_NAME": node.name, "PATRONI_RESTAPI_LISTEN": f"127.0.0.1:{node.rest_port}",
               "PATRONI_RESTAPI_CONNECT_ADDRESS": f"127.0.0.1:{node.rest_port}",
               "PATRONI_POSTGRESQL_LISTEN": f"127.0.0.1:{node.pg_port}",
               "PATRONI_POSTGRESQL_CONNECT_ADDRESS": f"127.0.0.1:{node.pg_port}",
               "PATRONI_POSTGRESQL_DATA_DIR": str(node.data), "PATRONI_POSTGRESQL_BIN_DIR": str(self.bindir),
               "PATRONI_ETCD3_HOSTS": f"'127.0.0.1:{self.etcd_port}'", "PATRONI_SUPERUSER_PASSWORD": self.password,
               "PATRONI_REPLICATION_PASSWORD": self.password, "PATRONI_LOG_LEVEL": "INFO"}
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        log = open(self.workdir / f"{node.name}.log", "ab")  # noqa: SIM115
        exe = binary("patroni", "/usr/bin/patroni")
        # cwd: its own directory, which user postgres can enter (a checkout under a 0700 directory it cannot: its
        # PostgreSQL then never finished bootstrapping)
        node.proc = subprocess.Popen([*prefix, exe, str(self.workdir / "patroni.yml")], env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir)

    def primary(self) -> PatroniNode | None:
        return next((n for n in self.nodes if n.proc is not None and n.role() == "primary"), None)

    def wait(self, primary: bool = True, sync: bool = True, timeout: float = 120.0) -> float:
        """Until a primary answers (and a synchronous standby, with `sync`); the seconds it took."""
        t0 = time.monotonic()
        while True:
            roles = [n.role() for n in self.nodes if n.proc is not None]
            if (not primary or "primary" in roles) and (not sync or "sync" in roles):
                return time.monotonic() - t0
            for n in self.nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    tail = (self.workdir / f"{n.name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"patroni {n.name} exited: {tail}")
            if time.monotonic() - t0 > timeout:
                logs = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}"
                                  for f in sorted(self.workdir.glob("*.log")))
                raise TimeoutError(f"no primary and synchronous standby after {timeout} s: {roles}\n{logs}")
            time.sleep(0.3)

    def kill(self, node: PatroniNode) -> None:
        """The machine dies: Patroni and its PostgreSQL SIGKILLed together."""
        if node.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.proc.pid, signal.SIGKILL)
            node.proc.wait(10)
            node.proc = None
        pid = node.data / "postmaster.pid"  # the postmaster, in its own session under Patroni
        if pid.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid.read_text().split()[0]), signal.SIGKILL)

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(n.proc.pid, signal.SIGTERM)
                try:
                    n.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.kill(n)
                n.proc = None
            self.kill(n)
        stop_pid(self.etcd)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _etcd_healthy(proc: subprocess.Popen[bytes], port: int, timeout: float = 30.0) -> bool:
    """Our etcd answers its own health check on `port` (not some other process that took the port)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("health") == "true":
                return True
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    return False


def start_patroni_cluster(password: str = "test-only-pg-password") -> PatroniCluster:
    """etcd, then two Patroni nodes; returns once there is a primary and a synchronous standby. Their files are in
    a directory of their own under the system's temp directory (user postgres cannot reach into pytest's), removed
    by `stop`."""
    import glob
    import tempfile

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise RuntimeError("PostgreSQL server is not installed; run `make deps`")
    workdir = Path(tempfile.mkdtemp(prefix="gridwatch-patroni-"))
    shutil.copy(PATRONI_SHIPPED, workdir / "patroni.yml")
    for attempt in range(3):  # a port taken between free_port() and etcd's bind: etcd exits; try others
        etcd_port, peer = free_port(), free_port()
        log = open(workdir / "etcd.log", "ab")  # noqa: SIM115
        etcd = subprocess.Popen([binary("etcd", "/usr/bin/etcd"), "--name", "etcd-1",
                                 "--data-dir", str(workdir / f"etcd-{attempt}"),
                                 "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                                 "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                                 "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                                 "--initial-cluster", f"etcd-1=http://127.0.0.1:{peer}", "--log-level", "warn"],
                                stdout=log, stderr=subprocess.STDOUT)
        if _etcd_healthy(etcd, etcd_port):
            break
        stop_pid(etcd)
    else:
        raise RuntimeError(f"etcd did not start: {(workdir / 'etcd.log').read_text(errors='replace')[-1500:]}")
    nodes = [PatroniNode(f"db-{i + 1}", free_port(), free_port(), workdir / f"db-{i + 1}") for i in range(2)]
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        os.chmod(workdir, 0o755)
    cluster = PatroniCluster(workdir, etcd, etcd_port, nodes, password, Path(bins[-1]).parent)
    try:
        for n in nodes:
            cluster.start(n)
        cluster.wait()
    except Exception:
        cluster.stop()
        raise
    return cluster


HAPROXY_SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "haproxy"


@dataclass
class Proxy:
    """Debian's haproxy on `configs/haproxy/gridwatch.cfg` as shipped, in front of the hub replicas."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_pid(self.proc)


def start_haproxy(hubs: list[str], workdir: Path) -> Proxy:
    """HAProxy listening on a free loopback port with `hubs` (host:port, two or three) as its replicas."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "GW_PROXY_LISTEN": f"127.0.0.1:{port}", "GW_PROXY_DIR": str(HAPROXY_SHIPPED),
           **{f"GW_HUB_{i + 1}": h for i, h in enumerate(hubs)}}
    cfg = HAPROXY_SHIPPED / "gridwatch.cfg"
    if len(hubs) > 2:  # the shipped third line, taken in
        text = cfg.read_text().replace('    # server hub3 "${GW_HUB_3}" check', '    server hub3 "${GW_HUB_3}" check')
        cfg = workdir / "gridwatch.cfg"
        cfg.write_text(text)
    log = open(workdir / "haproxy.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([binary("haproxy", "/usr/sbin/haproxy"), "-db", "-f", str(cfg)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    wait_port(port, 10, proc)
    return Proxy(port, proc)
