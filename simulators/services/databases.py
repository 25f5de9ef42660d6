"""VictoriaMetrics and a throwaway PostgreSQL 15 cluster started on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simulators.services.process import binary, free_port, wait_port


@dataclass
class Victoria:
    url: str
    proc: subprocess.Popen[bytes]

    def flush(self) -> None:
        httpx.get(f"{self.url}/internal/force_flush", timeout=10)

    def export(self, match: str) -> list[dict[str, Any]]:
        import json

        self.flush()
        r = httpx.get(f"{self.url}/api/v1/export", params={"match[]": match}, timeout=10)
        r.raise_for_status()
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def start_victoria(workdir: Path) -> Victoria:
    exe = binary("victoria-metrics", "/usr/bin/victoria-metrics")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "vm.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([exe, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={workdir / 'data'}",
                             "-search.latencyOffset=0s", "-retentionPeriod=100y"],
                            stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, 30, proc)
    return Victoria(f"http://127.0.0.1:{port}", proc)


@dataclass
class Postgres:
    url: str
    datadir: Path
    pg_ctl: list[str]
    start_args: list[str] = field(default_factory=list)  # what `start` was given (for restart)

    def stop(self) -> None:
        subprocess.run([*self.pg_ctl, "-D", str(self.datadir), "-m", "immediate", "stop"], capture_output=True)

    def restart(self, down: float = 0.0) -> None:
        """A crash (immediate stop: no checkpoint, every connection cut) and, `down` seconds later, a start
        on the same data and port."""
        self.stop()
        time.sleep(down)
        subprocess.run([*self.pg_ctl, *self.start_args], check=True, capture_output=True)


def start_postgres() -> Postgres:
    """A throwaway PostgreSQL cluster on a loopback port (as user postgres when run as root)."""
    import glob
    import tempfile

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise RuntimeError("PostgreSQL server is not installed; run `make deps` (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    work = Path(tempfile.mkdtemp(prefix="gridwatch-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = work / "data", free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"],
                   check=True, capture_output=True)
    pg_ctl = [*prefix, str(bindir / "pg_ctl")]
    start = ["-D", str(data), "-l", str(work / "pg.log"), "-w", "-o",
             f"-c listen_addresses=127.0.0.1 -p {port} -k {work} -c fsync=off", "start"]
    subprocess.run([*pg_ctl, *start], check=True, capture_output=True)
    return Postgres(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", data, pg_ctl, start)
