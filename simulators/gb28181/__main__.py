"""`python -m simulators.gb28181`: a lower platform or a swarm in a process of its own."""

from __future__ import annotations

import time
from pathlib import Path

from simulators.gb28181.catalog import make_channels
from simulators.gb28181.device import GbDevice
from simulators.gb28181.swarm import Swarm


def main(argv: list[str] | None = None) -> None:
    """`python -m simulators.gb28181`: a lower platform streaming its channels when INVITEd (`platform`), or a
    swarm of devices registering and sending keepalives (`swarm`); prints one JSON line when done."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("mode", choices=["platform", "swarm"])
    ap.add_argument("--server", required=True, help="host:port of the gateway's SIP server")
    ap.add_argument("--server-id", required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--id", default="44030500002160000001", help="the platform's id (platform)")
    ap.add_argument("--ids", type=int, default=10_000, help="how many devices (swarm)")
    ap.add_argument("--password-env", default="GB_EMULATOR_PASSWORD")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--footage", type=Path)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--keepalive", type=float, default=60.0)
    ap.add_argument("--alarms", type=int, default=0, help="platform: once registered and its catalog asked for, "
                    "an intrusion alarm (5/6) on each of the first ALARMS channels at once (a burst)")
    a = ap.parse_args(argv)
    import os

    host, _, port = a.server.rpartition(":")
    password = os.environ.get(a.password_env, "")
    if a.mode == "platform":
        dev = GbDevice((host, int(port)), a.server_id, a.domain, a.id, password, channels=make_channels(a.channels),
                       footage=a.footage, keepalive=a.keepalive, loop_footage=False).start()
        status = dev.register()
        if a.alarms:
            import threading

            while not any(b"<Query>" in m.body for m in dev.got):
                time.sleep(0.05)
            time.sleep(1.0)  # the catalog's pages answered
            said = time.time()
            burst = [threading.Thread(target=dev.alarm, args=(c.id, 5, 6, "区域入侵")) for c in dev.channels[:a.alarms]]
            for t in burst:
                t.start()
            for t in burst:
                t.join()
            print(json.dumps({"phase": "alarms", "sent": len(burst), "at": said}), flush=True)
        deadline = time.monotonic() + a.seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
        print(json.dumps({"registered": status, "streams": len(dev.calls),
                          "packets": sum(c.packets for c in dev.calls.values())}), flush=True)
        dev.close()
        return
    ids = [f"{a.domain[:8]}001320{i:06d}" for i in range(a.ids)]
    swarm = Swarm((host, int(port)), a.server_id, a.domain, ids, password, keepalive=a.keepalive)
    took = swarm.register_all()
    print(json.dumps({"phase": "registered", "devices": len(swarm.registered), "seconds": round(took, 2)}),
          flush=True)
    sent = swarm.beat(a.seconds)
    time.sleep(1)
    print(json.dumps({"phase": "done", "keepalives": sent, "answers": swarm.answers}), flush=True)
    swarm.close()


if __name__ == "__main__":
    main()
