"""Session fixtures: real Mosquitto (open, and with password + ACL), real VictoriaMetrics, a recording hub."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.services import Broker, Victoria, start_mosquitto, start_victoria, stop_pid
from tests.recording_hub import RecordingHub

# contact points are sealed with the data key from the environment, as a deployment with replicas sets it: every
# hub this worker starts (its own process or a child) and every store it opens share one key
if not os.environ.get("GRIDWATCH_DATA_KEY"):
    from cryptography.fernet import Fernet

    os.environ["GRIDWATCH_DATA_KEY"] = Fernet.generate_key().decode()
if not os.environ.get("GRIDWATCH_AUDIT_KEY"):  # and the audit chain's key likewise (issue 42)
    import secrets

    os.environ["GRIDWATCH_AUDIT_KEY"] = secrets.token_hex(32)

ACL = """
user edge
topic read gw/#
topic read $SYS/#

user gateway
topic write gw/#
"""
USERS = {"edge": "demo-edge-password", "gateway": "demo-gateway-password"}


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    yield b
    stop_pid(b.proc)


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_mosquitto(tmp_path_factory.mktemp("mosquitto-acl"), users=USERS, acl=ACL)
    yield b
    stop_pid(b.proc)


@pytest.fixture(scope="session")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Victoria]:
    v = start_victoria(tmp_path_factory.mktemp("victoria"))
    yield v
    stop_pid(v.proc)


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def hub() -> Iterator[RecordingHub]:
    h = RecordingHub().start()
    yield h
    h.stop()


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """A test must stop every agent thread it started."""
    before = {t.ident for t in threading.enumerate()}
    yield
    left = [t.name for t in threading.enumerate()
            if t.ident not in before and t.is_alive() and t.name.startswith("gridwatch-")]
    assert not left, f"threads left running: {left}"


PROCESSES = {"broker", "secure_broker", "victoria", "browser", "postgres_url"}
"""Fixtures that start a real process (Mosquitto, VictoriaMetrics, Chromium, PostgreSQL)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`slow` means what it says: every test that starts a process through a fixture carries it (tests that start
    their own processes are marked by hand), so `make quick` (-m "not slow") runs only the in-process ones."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if PROCESSES & set(getattr(item, "fixturenames", ())) or params.get("db_url") == "postgresql":
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    Path("test-output").mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from simulators.services import start_postgres

    pg = start_postgres()
    yield pg.url
    pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every store/API test runs on SQLite and on PostgreSQL (a fresh database each)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite'}"
        return
    from tests.hubkit import fresh_pg_database

    with fresh_pg_database(request.getfixturevalue("postgres_url")) as url:
        yield url
