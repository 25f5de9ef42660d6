"""TLS end to end with a CA the test makes (Debian's openssl): a gateway and the agent on a Mosquitto TLS
listener, the agent forwarding to `gridwatch hub serve` on https with the CA configured; nothing trusts a
certificate it cannot check (issue 16.7)."""

from __future__ import annotations

import getpass
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import Agent
from hub.config import hash_key
from simulators.services import Broker, binary, free_port, stop_pid, wait_port
from tests.agentkit import GAS_RULES, agent_config, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
EDGE_KEY, OPS_KEY = "tls-test-edge-key", "tls-test-ops-key"  # test-only keys


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gridwatch test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=d)
    return d


def tls_mosquitto(tmp_path: Path, pki: Path) -> tuple[int, subprocess.Popen[bytes]]:
    """Mosquitto with one TLS listener on a free loopback port, its certificate from `pki`."""
    port = free_port()
    (tmp_path / "mosquitto.conf").write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\ncafile {pki / 'ca.pem'}\ncertfile {pki / 'server.pem'}\n"
        f"keyfile {pki / 'server.key'}\nallow_anonymous true\npersistence false\n")
    return port, subprocess.Popen([binary("mosquitto", "/usr/sbin/mosquitto"), "-c", str(tmp_path / "mosquitto.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hub_leads(url: str, pki: Path) -> bool:
    """The hub's MQTT publisher is connected as leader (it connects only then)."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {OPS_KEY}"}, verify=ctx).text
    return "gridwatch_hub_mqtt_leader 1.0" in text


def test_gateway_agent_and_hub_over_tls(tmp_path, pki):
    port, mq = tls_mosquitto(tmp_path, pki)
    hub_port = free_port()
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp_path / 'hub.sqlite'}",
        "listen": {"host": "127.0.0.1", "port": hub_port, "tls_cert": str(pki / "server.pem"),
                   "tls_key": str(pki / "server.key")},
        "org": str(ROOT / "configs/org.yaml"), "sla": str(ROOT / "configs/sla.yaml"),
        "calendars": str(ROOT / "configs/calendars"),
        "mqtt": {"host": "127.0.0.1", "port": port, "tls": {"ca_file": str(pki / "ca.pem")}},
        "keys": [{"name": "edge", "role": "edge", "hash": hash_key(EDGE_KEY)},
                 {"name": "ops", "role": "operator", "unit": "district-a", "hash": hash_key(OPS_KEY)}]}))
    hub = subprocess.Popen([sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(tmp_path / "hub.yaml")])
    agent = None
    try:
        wait_port(port, proc=mq)
        wait_port(hub_port, 30, hub)
        url = f"https://127.0.0.1:{hub_port}"
        with pytest.raises(httpx.ConnectError):  # not trusted without the CA
            httpx.get(f"{url}/healthz")
        ok = httpx.get(f"{url}/healthz", verify=ssl.create_default_context(cafile=str(pki / "ca.pem")))
        assert ok.is_success and ok.headers["strict-transport-security"] == "max-age=31536000"  # HSTS over TLS
        board = httpx.post(f"{url}/api/v1/login", json={"key": OPS_KEY, "cookie": True},
                           verify=ssl.create_default_context(cafile=str(pki / "ca.pem")))
        assert board.status_code == 200 and "; secure" in board.headers["set-cookie"].lower()  # https only
        cfg = agent_config(tmp_path / "agent", Broker("127.0.0.1", port, mq), url, GAS_RULES,
                           mqtt={"tls": {"ca_file": str(pki / "ca.pem")}},
                           hub={"key": EDGE_KEY, "ca_file": str(pki / "ca.pem")})
        agent = Agent(cfg)
        agent.start()
        assert agent.mqtt.wait_connected(15)
        events: list[dict] = []  # case events the hub publishes over TLS
        sub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        sub.tls_set(ca_certs=str(pki / "ca.pem"))
        sub.on_message = lambda _c, _u, m: events.append(json.loads(m.payload))
        sub.connect("127.0.0.1", port)
        sub.subscribe("gw/cases/district-a", qos=1)
        sub.loop_start()
        assert wait_until(lambda: hub_leads(f"https://127.0.0.1:{hub_port}", pki), timeout=15)
        gw = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        gw.tls_set(ca_certs=str(pki / "ca.pem"))
        gw.connect("127.0.0.1", port)
        gw.loop_start()
        body = {"ts": int(time.time() * 1000), "metrics": {"ch4_ppm": 9000.0}}
        gw.publish("gw/grid-01/sensor/gas-01/reading", json.dumps(body), qos=1).wait_for_publish(10)
        gw.loop_stop()
        gw.disconnect()
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))

        def cases() -> list[dict]:
            r = httpx.get(f"{url}/api/v1/cases", headers={"Authorization": f"Bearer {OPS_KEY}"}, verify=ctx)
            return list(r.json()["cases"])

        assert wait_until(lambda: len(cases()) == 1, timeout=30)
        assert cases()[0]["device"] == "gas-01" and cases()[0]["category"] == "gas_leak"
        assert wait_until(lambda: any(e["event"] == "case_opened" for e in events), timeout=15)
        sub.loop_stop()
        sub.disconnect()
    finally:
        if agent is not None:
            agent.stop()
        stop_pid(hub)
        stop_pid(mq)


def test_mqtt_tls_checks_the_broker_name_given_as_server_name(tmp_path, pki):
    """`mqtt.tls.server_name`: the broker's certificate is checked against that name instead of the host
    (here the broker is reached as 127.0.0.1; its certificate names localhost and 127.0.0.1)."""
    from gridwatch.core.config import MqttTls

    port, mq = tls_mosquitto(tmp_path, pki)
    try:
        wait_port(port, proc=mq)

        def connects(name: str | None) -> bool:
            c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
            c.tls_set_context(MqttTls(ca_file=pki / "ca.pem", server_name=name).context())
            try:
                c.connect("127.0.0.1", port)
                return True
            except ssl.SSLCertVerificationError:
                return False
            finally:
                c.disconnect()

        assert connects(None) and connects("localhost")
        assert not connects("broker.elsewhere.example")  # the name is really checked
    finally:
        stop_pid(mq)


def test_simulator_speaks_tls(tmp_path, pki, hub):
    """`gridwatch sim run --tls-ca` (issue 16: the simulators had no TLS): a scenario played over TLS reaches
    an agent reading over TLS; without the CA the simulator says it could not connect and exits 1 (it used
    to "play" into a connection the broker had closed and exit 0)."""
    port, mq = tls_mosquitto(tmp_path, pki)
    agent = None
    try:
        wait_port(port, proc=mq)
        cfg = agent_config(tmp_path / "agent", Broker("127.0.0.1", port, mq), hub.url, GAS_RULES,
                           mqtt={"tls": {"ca_file": str(pki / "ca.pem")}},
                           feeds=[{"preset": "zigbee2mqtt", "grid": "grid-01"}])
        agent = Agent(cfg)
        agent.start()
        assert agent.mqtt.wait_connected(15)
        scenario = tmp_path / "s.yaml"
        scenario.write_text("name: tls\nseed: 1\nduration: 3s\ninterval: 1s\nfps: 2\n"
                            "devices: [{id: gas-t1, grid: grid-01, kind: sensor, model: gas, gateway: zigbee2mqtt}]\n"
                            "incidents: [{id: leak, at: 0s, device: gas-t1, do: {level: 9000}}]\n")
        run = [sys.executable, "-m", "gridwatch", "sim", "run", str(scenario), "--broker", f"127.0.0.1:{port}"]
        bad = subprocess.run(run, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "did not accept the connection" in bad.stderr, bad.stderr[-1000:]
        ok = subprocess.run([*run, "--tls-ca", str(pki / "ca.pem")], capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr[-2000:]
        assert hub.wait_for(1, 15)
        assert next(iter(hub.unique.values()))["device_id"] == "gas-t1"
    finally:
        if agent is not None:
            agent.stop()
        stop_pid(mq)
