"""Mosquitto started on loopback, on a generated config or the shipped one, with its dropped-message count."""

from __future__ import annotations

import getpass
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.services.process import binary, free_port, wait_port

MOSQUITTO_BASE = """
# run as whoever started the tests, so the broker can read the temp password and ACL files
user {user}
listener {port} 127.0.0.1
persistence false
max_queued_messages 1000000
max_inflight_messages 0
sys_interval 1
"""


@dataclass
class Broker:
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    users: dict[str, str] = field(default_factory=dict)

    def dropped(self) -> float:
        """Mosquitto's own count of messages it dropped ($SYS/broker/load/publish/dropped)."""
        from gridwatch.core.mqttlink import BrokerLink, make_client

        got: dict[str, float] = {}
        done = threading.Event()

        def on_message(c: Any, u: Any, m: Any) -> None:
            got["v"] = float(m.payload)
            done.set()

        user = next(iter(self.users), None)
        c = make_client(BrokerLink(host=self.host, port=self.port, protocol="v311", username=user,
                                   password=self.users.get(user) if user else None))
        c.on_message = on_message
        c.connect(self.host, self.port)
        c.subscribe("$SYS/broker/publish/messages/dropped")
        c.loop_start()
        done.wait(5)
        c.loop_stop()
        c.disconnect()
        return got.get("v", 0.0)


def start_mosquitto(workdir: Path, *, users: dict[str, str] | None = None, acl: str | None = None) -> Broker:
    exe = binary("mosquitto", "/usr/sbin/mosquitto")
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = MOSQUITTO_BASE.format(port=port, user=getpass.getuser())
    if users:
        pwfile = workdir / "passwd"
        pwfile.write_text("")
        for user, password in users.items():
            subprocess.run([binary("mosquitto_passwd"), "-b", str(pwfile), user, password], check=True,
                           capture_output=True)
        conf += f"allow_anonymous false\npassword_file {pwfile}\n"
        if acl:
            (workdir / "acl").write_text(acl)
            conf += f"acl_file {workdir / 'acl'}\n"
    else:
        conf += "allow_anonymous true\n"
    (workdir / "mosquitto.conf").write_text(conf)
    log = open(workdir / "mosquitto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([exe, "-c", str(workdir / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc=proc)
    return Broker("127.0.0.1", port, proc, dict(users or {}))


SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "mosquitto"


def start_shipped_mosquitto(workdir: Path, users: dict[str, str], port: int | None = None) -> Broker:
    """Mosquitto on `configs/mosquitto/mosquitto.conf` and `acl` as shipped: only the site lines (listener,
    store location, password and ACL files) are pointed at this machine. Restart with the same `workdir`
    and `port` to find the persisted store again."""
    exe = binary("mosquitto", "/usr/sbin/mosquitto")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "store").mkdir(exist_ok=True)
    pwfile = workdir / "passwd"
    if not pwfile.exists():
        pwfile.write_text("")
        for user, password in users.items():
            subprocess.run([binary("mosquitto_passwd"), "-b", str(pwfile), user, password], check=True,
                           capture_output=True)
    site = {"listener": f"listener {port} 127.0.0.1", "persistence_location": f"persistence_location {workdir}/store/",
            "password_file": f"password_file {pwfile}", "acl_file": f"acl_file {SHIPPED / 'acl'}"}
    lines = [f"user {getpass.getuser()}"]  # run as whoever runs the tests (the shipped file keeps mosquitto's)
    for line in (SHIPPED / "mosquitto.conf").read_text().splitlines():
        key = line.split(" ", 1)[0]
        lines.append(site.get(key, line))
    (workdir / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    log = open(workdir / "mosquitto.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([exe, "-c", str(workdir / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT)
    wait_port(port, proc=proc)
    return Broker("127.0.0.1", port, proc, dict(users))
