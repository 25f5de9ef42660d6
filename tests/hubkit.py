"""A real hub for tests: `gridwatch hub serve` as its own process on a free port, with test-only keys."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from hub.config import hash_key
from simulators.services import free_port, stop_pid, wait_port

ROOT = Path(__file__).resolve().parent.parent
EDGE, OPS, VIEW01 = "hubkit-edge-key", "hubkit-ops-key", "hubkit-view01-key"  # test-only keys


class Hub:
    def __init__(self, tmp: Path, sla: str, database: str | None = None, *, keys: list[dict] | None = None,
                 **extra: Any) -> None:
        """`keys`: more keys (`hash_key` applied to each one's `key`); `extra`: more of hub.yaml."""
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (tmp / "sla.yaml").write_text(sla)
        more = [{**{k: v for k, v in key.items() if k != "key"}, "hash": hash_key(key["key"])} for key in keys or []]
        listen = extra.pop("listen", {})  # more of `listen:` (trusted_proxies), beside the host and port
        (tmp / "hub.yaml").write_text(yaml.safe_dump({**extra,
            "database": database or f"sqlite:///{tmp / 'hub.sqlite'}",
            "listen": {"host": "127.0.0.1", "port": self.port, **listen},
            "org": str(ROOT / "configs/org.yaml"), "sla": str(tmp / "sla.yaml"),
            "calendars": str(ROOT / "configs/calendars"), "tz": "Asia/Shanghai",
            "keys": [{"name": "edge", "role": "edge", "hash": hash_key(EDGE)},
                     {"name": "ops-district", "role": "operator", "unit": "district-a", "hash": hash_key(OPS)},
                     {"name": "viewer-grid-01", "role": "viewer", "unit": "grid-01", "hash": hash_key(VIEW01)},
                     *more]}))
        self.cfg = tmp / "hub.yaml"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, prefix: tuple[str, ...] = ()) -> Hub:
        """`prefix`: a command the hub runs under (e.g. faketime, which forks the hub as its child: the hub then
        runs in a process group of its own, which `stop` ends whole)."""
        self.proc = subprocess.Popen([*prefix, sys.executable, "-m", "gridwatch", "hub", "serve", "-c", str(self.cfg)],
                                     start_new_session=bool(prefix))
        self.group = bool(prefix)
        wait_port(self.port, 30, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            if self.group:
                stop_group(self.proc)
            else:
                stop_pid(self.proc)
            self.proc = None

    def post(self, alerts: list[dict]) -> list[dict]:
        r = httpx.post(f"{self.url}/api/v1/alerts", json={"alerts": alerts},
                       headers={"Authorization": f"Bearer {EDGE}"}, timeout=60)
        r.raise_for_status()
        return r.json()["results"]

    def get(self, path: str, key: str = OPS) -> Any:
        return httpx.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=30).json()

    def call(self, method: str, path: str, key: str = OPS, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kw)

    def person(self, admin_key: str, username: str, name: str, unit: str | None, role: str = "operator",
               password: str = "Right-pw-2026") -> None:
        """An account made by an administrator (key `admin_key`) through the API."""
        r = self.call("POST", "/api/v1/users", key=admin_key, json={"username": username, "name": name,
                                                                    "unit": unit, "role": role, "password": password})
        assert r.status_code == 201, r.text


def serve_in_thread(app: Any) -> tuple[int, Callable[[], None]]:
    """Serve an app made by `create_app` with uvicorn in this process, on a free port; returns the port and
    the function that stops it."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=1))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    wait_port(port)

    def stop() -> None:
        server.should_exit = True
        th.join(10)

    return port, stop


def stop_group(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """End a process started with `start_new_session` and everything it forked (SIGTERM, then SIGKILL)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextmanager
def fresh_pg_database(base_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of `base_url`, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = "t" + uuid.uuid4().hex[:12]
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield base_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


@contextmanager
def api_client(db_url: str, keys: dict[str, tuple[str, str | None]], start: Any, rule_tools: Any = None,
               **cfg: Any) -> Iterator[Any]:
    """The hub app in this process behind a TestClient, on `db_url`, with an injected clock (`client.clock
    ["now"]`, starting at `start`) and no scheduler thread (tests run it by hand). `keys`: name -> (role,
    unit); each key's text is `key-<name>`. `cfg`: more of hub.yaml (paths resolve against configs/)."""
    from fastapi.testclient import TestClient

    from hub.boot.app import create_app
    from hub.config import HubConfig

    spec = [{"name": n, "role": r, "unit": u, "hash": hash_key(f"key-{n}")} for n, (r, u) in keys.items()]
    config = HubConfig.model_validate({**cfg, "database": db_url, "keys": spec}).resolved(ROOT / "configs")
    clock = {"now": start}
    app = create_app(config, clock=lambda: clock["now"], run_scheduler=False, rule_tools=rule_tools)
    with TestClient(app) as c:
        c.clock = clock  # type: ignore[attr-defined]
        yield c


_SECOND: dict[str, tuple[str, list[str], list[int]]] = {}  # where/username -> (TOTP secret, recovery codes, steps)


def person_sign_in(post: Callable[..., httpx.Response], username: str, password: str, *, where: str = "",
                   now: datetime | None = None, **more: Any) -> httpx.Response:
    """Sign a person in as they would, with the second factor operators and administrators need (issue 42):
    enrolled in TOTP at the first sign-in through the API (the secret and recovery codes kept here), then the
    authenticator's code (a recovery code when this clock's steps are used up). `post(path, json=, headers=)`:
    a TestClient's post, or `lambda p, **kw: httpx.post(url + p, **kw)`; `where` tells hubs apart; `now` is the
    hub's clock (an injected one), else the real time. `more`: more of the sign-in body (`cookie`)."""
    import pyotp

    now = now or datetime.now(UTC)
    app = getattr(getattr(post, "__self__", None), "app", None)  # a TestClient's: its hub tells it apart
    where = where or (f"{id(app)}:{app.state.hub.store.engine.url}" if app is not None else "")
    key = f"{where}/{username}"
    body = {"username": username, "password": password, **more}
    r = post("/api/v1/login", json={**body, **({"code": _code(key, now)} if key in _SECOND else {})})
    if r.status_code == 200 and r.json().get("limited") == "two_factor":
        plain = post("/api/v1/login", json={"username": username, "password": password})
        h = {"Authorization": f"Bearer {plain.json()['token']}"}
        secret = post("/api/v1/me/two-factor", headers=h).json()["secret"]
        totp = pyotp.TOTP(secret)
        done = post("/api/v1/me/two-factor/confirm", headers=h, json={"code": totp.at(now)})
        assert done.status_code == 200, done.text
        _SECOND[key] = (secret, list(done.json()["recovery_codes"]), [totp.timecode(now)])
        r = post("/api/v1/login", json={**body, "code": _code(key, now)})
    return r


def second_code(where: str, username: str, now: datetime | None = None) -> str:
    """The next second-factor code of a person `person_sign_in` enrolled on the hub `where`."""
    return _code(f"{where}/{username}", now or datetime.now(UTC))


def _code(key: str, now: datetime) -> str:
    import pyotp

    secret, recovery, used = _SECOND[key]
    totp = pyotp.TOTP(secret)
    for step in (totp.timecode(now), totp.timecode(now) + 1):
        if step > max(used):
            used.append(step)
            return totp.generate_otp(step)
    return recovery.pop()  # this clock's steps are used up (an injected clock that stands still)
