"""Fleet benchmark (issue 15).

1. Deploy: a 1,000-rule set saved in a real hub (`gridwatch hub serve`, SQLite) and deployed to 20 real
   agents (`gridwatch edge run`, fleet mode, one Mosquitto), timed from the deploy request until every
   agent's heartbeat reports the new version (target <= 5 s). Baseline in the same run: the same round
   trip with a 10-rule set, and the 1,000-rule set checked and compiled once in this process.
2. Scale: one agent's engine with 10,000 rules and 100,000 registered devices (100 grids x 1,000 devices,
   two metrics each; rule i watches one metric of one grid): RSS per device, and readings/s through
   decode + rules + outbox commit (`Agent.step`, no broker). Baseline in the same run: the same readings
   through 100 rules and 1,000 devices. Anchor: eKuiper publishes 8,000 rules at 800 msg/s on 2 cores.

Prints a table, then one JSON line: {"bench": "fleet", ...}.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402

from edge.agent import Agent  # noqa: E402
from edge.config import EdgeConfig  # noqa: E402
from edge.message import Message  # noqa: E402
from edge.rules.loader import parse_rules  # noqa: E402
from edge.rules.ruleset import RuleSet  # noqa: E402
from hub.config import hash_key  # noqa: E402
from simulators.services import free_port, start_mosquitto, stop_pid, wait_port  # noqa: E402

OPS, EDGE = "bench-ops-key", "bench-edge-key"
METRICS = [f"m{i:02d}" for i in range(50)]


def rule_set(n: int, grids: int = 20) -> str:
    """`n` threshold rules with hold and hysteresis; rule i watches metric i % 50 in grid i // 50 % grids."""
    out = ["rules:"]
    for i in range(n):
        m, g = METRICS[i % len(METRICS)], f"grid-{(i // len(METRICS)) % grids:03d}"
        out.append(f"  - id: r{i:05d}\n    match: {{metric: {m}, grids: [{g}]}}\n"
                   f"    when: {{above: {500 + i % 7}, for: 10s, clear_below: 450}}\n    severity: major\n"
                   f"    category: c{i % 10}")
    return "\n".join(out) + "\n"


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ---- 1. deploy ------------------------------------------------------------------------------------------
def deploy_bench(tmp: Path, agents: int, rules: int) -> dict[str, float]:
    broker = start_mosquitto(tmp / "broker")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (tmp / "sla.yaml").write_text("policies:\n  - id: d\n    calendar: 24x7\n    limits: {accept: 1h, resolve: 1h, "
                                  "feedback: 1h}\n")
    (tmp / "hub.yaml").write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp / 'hub.sqlite'}", "listen": {"port": port},
        "org": str(ROOT / "configs/org.yaml"), "sla": str(tmp / "sla.yaml"),
        "calendars": str(ROOT / "configs/calendars"),
        "keys": [{"name": "ops", "role": "operator", "unit": "district-a", "hash": hash_key(OPS)},
                 {"name": "edge", "role": "edge", "hash": hash_key(EDGE)}]}))
    procs = [subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(tmp / "hub.yaml")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    head = {"Authorization": f"Bearer {OPS}"}
    try:
        wait_port(port, 30, procs[0])
        for i in range(agents):
            folder = tmp / f"agent-{i:02d}"
            folder.mkdir()
            (folder / "rules.yaml").write_text("rules: []\n")
            (folder / "edge.yaml").write_text(yaml.safe_dump({
                "edge_id": f"edge-{i:02d}", "mqtt": {"host": broker.host, "port": broker.port},
                "rules": "rules.yaml", "outbox": {"path": "outbox.sqlite", "synchronous": "normal"},
                "hub": {"url": url, "key": EDGE, "key_env": None, "heartbeat": "10s", "fleet": True},
                "metrics": None}))
            procs.append(subprocess.Popen([sys.executable, "-m", "gridwatch", "edge", "run", "-c",
                                           str(folder / "edge.yaml")], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))

        def versions() -> list[int | None]:
            return [a["rule_version"] for a in httpx.get(f"{url}/api/v1/agents", headers=head).json()]

        deadline = time.monotonic() + 120
        while len(versions()) < agents and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # every agent started and idle

        def round_trip(text: str) -> float:
            v = httpx.post(f"{url}/api/v1/rules", json={"text": text}, headers=head, timeout=60).json()["version"]
            t0 = time.monotonic()
            httpx.post(f"{url}/api/v1/rules/deploy", json={"version": v}, headers=head)
            while any(x != v for x in versions()):
                if time.monotonic() - t0 > 60:
                    raise RuntimeError(f"not every agent took v{v}: {versions()}")
                time.sleep(0.02)
            return time.monotonic() - t0

        small = round_trip(rule_set(10))
        big = round_trip(rule_set(rules))
        rss = [rss_mb(p.pid) for p in procs[1:]]
        return {"deploy_small_s": small, "deploy_s": big, "agent_rss_mb": sum(rss) / len(rss)}
    finally:
        for p in procs:
            stop_pid(p)
        stop_pid(broker.proc)


def compile_once(rules: int) -> float:
    text = rule_set(rules)
    t0 = time.perf_counter()
    RuleSet(parse_rules(text))
    return time.perf_counter() - t0


# ---- 2. scale -------------------------------------------------------------------------------------------
def readings(devices: int, per_grid: int, rounds: int) -> list[list[Message]]:
    """Batches of native readings: every device once per round with two metrics under its thresholds."""
    out = []
    start = int(time.time() * 1000) - 10_000
    for r in range(rounds):
        batch = []
        for d in range(devices):
            grid, dev = f"grid-{d // per_grid:03d}", f"d{d:06d}"
            m1, m2 = METRICS[d % 50], METRICS[(d + 1) % 50]
            body = json.dumps({"ts": start + r * 1000, "metrics": {m1: 100.0 + r, m2: 200.0}})
            batch.append(Message(f"gw/{grid}/sensor/{dev}/reading", body.encode(), received_at=time.time()))
        out += [batch[i:i + 500] for i in range(0, len(batch), 500)]
    return out


def scale_run(tmp: Path, rules: int, devices: int, grids: int) -> dict[str, float]:
    per_grid = devices // grids
    batches = readings(devices, per_grid, 2)  # made first: the messages are not the agent's memory
    gc.collect()
    before = rss_mb()
    (tmp / "rules.yaml").write_text(rule_set(rules, grids))
    cfg = EdgeConfig.model_validate({
        "edge_id": "scale", "rules": str(tmp / "rules.yaml"), "metrics": None,
        "outbox": {"path": str(tmp / "outbox.sqlite"), "synchronous": "normal"},
        "hub": {"heartbeat": None, "key": "x", "key_env": None},
        "limits": {"max_devices": devices + 10},
        "devices": {"list": [{"id": f"d{d:06d}", "grid": f"grid-{d // per_grid:03d}"} for d in range(devices)]}})
    agent = Agent(cfg)
    built = rss_mb()
    warm, timed = batches[:len(batches) // 2], batches[len(batches) // 2:]
    for b in warm:  # the first reading of each device builds its candidate list and state
        agent.step(b)
    gc.collect()
    steady = rss_mb()
    t0 = time.perf_counter()
    n = 0
    for b in timed:
        agent.step(b)
        n += len(b)
    rate = n / (time.perf_counter() - t0)
    states = len(agent.engine.states)
    agent.outbox.close()
    return {"rules": rules, "devices": devices, "rss_built_mb": built - before, "rss_steady_mb": steady - before,
            "kb_per_device": (steady - before) * 1024 / devices, "readings_per_s": rate, "states": states}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--scale-rules", type=int, default=10_000)
    ap.add_argument("--devices", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        once = compile_once(args.rules)
        dep = deploy_bench(tmp / "deploy", args.agents, args.rules)
        (tmp / "base").mkdir()
        (tmp / "big").mkdir()
        base = scale_run(tmp / "base", 100, 1000, 10)
        big = scale_run(tmp / "big", args.scale_rules, args.devices, 100)
    print(f"deploy {args.rules} rules to {args.agents} agents: {dep['deploy_s']:.2f} s until all reported it "
          f"(target <= 5 s); 10 rules: {dep['deploy_small_s']:.2f} s; one check+compile of {args.rules} rules "
          f"here: {once:.3f} s; agent RSS {dep['agent_rss_mb']:.0f} MB")
    for r in (base, big):
        print(f"{r['rules']:>6} rules {r['devices']:>7} devices: RSS +{r['rss_steady_mb']:.0f} MB "
              f"({r['kb_per_device']:.2f} KiB/device, {r['states']} rule states), "
              f"{r['readings_per_s']:,.0f} readings/s")
    ratio = big["readings_per_s"] / base["readings_per_s"]
    print(f"readings/s at scale / small: {ratio:.2f} (anchor: eKuiper 8,000 rules at 800 msg/s on 2 cores)")
    print(json.dumps({"bench": "fleet", "agents": args.agents, "rules": args.rules,
                      "deploy_s": round(dep["deploy_s"], 3), "deploy_small_s": round(dep["deploy_small_s"], 3),
                      "compile_once_s": round(once, 3), "deploy_target_met": dep["deploy_s"] <= 5.0,
                      "scale_rules": big["rules"], "scale_devices": big["devices"],
                      "kb_per_device": round(big["kb_per_device"], 2), "rss_mb": round(big["rss_steady_mb"], 1),
                      "readings_per_s": round(big["readings_per_s"]),
                      "base_readings_per_s": round(base["readings_per_s"]),
                      "ratio": round(ratio, 2)}))


if __name__ == "__main__":
    main()
