"""Every benchmark, one after the other, each run to its end even when an earlier one missed its target or
failed; then one table: each bench's figures and ratios (from its last JSON line) and whether its targets were
met (its own `targets_met`, else its exit status). Exits non-zero when any bench missed or failed.
`python bench/all.py [name ...]` runs only those.

Each bench runs in a process group of its own, read by a thread: when it ends (or runs past `LIMIT`), whatever
it started and left behind (a hub, an emulator holding the pipe open) is ended with the group, and so is any
process that left the group but carries the run's mark in its environment (`GRIDWATCH_BENCH_RUN`: PostgreSQL's
pg_ctl starts the server in a session of its own), so the table always comes and no process outlives the run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

BENCHES = ("ingest", "hub", "video", "gateway", "sim_load", "fanout", "fleet", "export", "notify")
HERE = Path(__file__).resolve().parent
LIMIT = 1800.0
"""Seconds a bench may run before its whole process group is ended (it then counts as failed)."""


def _end(send: Callable[[int], None], alive: Callable[[], bool]) -> None:
    """SIGTERM, then SIGKILL to what is still alive after five seconds (SIGKILL is not waited on)."""
    for sig, pause in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(sig)
        end = time.monotonic() + pause
        while alive() and time.monotonic() < end:
            time.sleep(0.1)
        if not alive():
            return


def end_group(pgid: int) -> None:
    """Every process of the group."""
    def alive() -> bool:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    _end(lambda sig: os.killpg(pgid, sig), alive)


def marked(mark: str) -> list[int]:
    """Processes whose environment carries `GRIDWATCH_BENCH_RUN=mark` (readable ones: ours, or all as root)."""
    want = f"GRIDWATCH_BENCH_RUN={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if want in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def end_marked(mark: str) -> list[int]:
    """Every process still carrying the mark; the pids found."""
    first = marked(mark)

    def send(sig: int) -> None:
        for pid in marked(mark):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
    _end(send, lambda: bool(marked(mark)))
    return first


def run(name: str, limit: float = LIMIT) -> tuple[int, dict, float]:
    """Run one bench with its output passed through; its exit status, last JSON line and wall time."""
    t0 = time.monotonic()
    mark = f"{name}-{os.getpid()}-{time.time_ns()}"
    proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py")], stdout=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "GRIDWATCH_BENCH_RUN": mark})
    last: dict = {}

    def read() -> None:
        nonlocal last
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith("{"):
                try:
                    last = json.loads(line)
                except ValueError:
                    pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = proc.wait(limit)
    except subprocess.TimeoutExpired:
        print(f"bench/{name}.py ran past {limit:.0f} s: ended", flush=True)
        code = -9
    end_group(proc.pid)  # what it left behind (the pipe's last holders with it)
    if left := end_marked(mark):  # what left the group (a database server in a session of its own)
        print(f"bench/{name}.py left {len(left)} process(es) behind: ended ({', '.join(map(str, left))})", flush=True)
    reader.join(10)
    return code, last, time.monotonic() - t0


def figures(out: dict) -> str:
    """The numbers of a bench's JSON line, ratios first."""
    nums = {k: v for k, v in out.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    order = sorted(nums, key=lambda k: ("ratio" not in k, k))
    return ", ".join(f"{k}={nums[k]:g}" for k in order)


def main() -> int:
    names = sys.argv[1:] or list(BENCHES)
    if not os.environ.get("GRIDWATCH_DATA_KEY"):  # every hub of every bench opens what another one sealed
        from cryptography.fernet import Fernet
        os.environ["GRIDWATCH_DATA_KEY"] = Fernet.generate_key().decode()
    rows = []
    for name in names:
        print(f"\n=== bench/{name}.py", flush=True)
        code, out, took = run(name)
        met = out.get("targets_met")
        verdict = "failed" if code != 0 and not out else ("met" if (met if met is not None else code == 0)
                                                             else "NOT met")
        rows.append((name, verdict, took, figures(out)))
    print("\n=== make bench: every benchmark")
    print(f"{'bench':<10}{'targets':<10}{'took':>8}  figures (ratios first)")
    for name, verdict, took, figs in rows:
        print(f"{name:<10}{verdict:<10}{took:>7.0f}s  {figs}")
    print(json.dumps({"bench": "all", "results": {n: v for n, v, _, _ in rows}}))
    return 0 if all(v == "met" for _, v, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
