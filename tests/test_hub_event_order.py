"""The event log never skips: two writers on PostgreSQL that commit out of id order still reach a stream
client that is following the log live (issue 17). On the old main the reader had moved past the first
writer's id before that writer committed, and never sent its event."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from hub.boot.app import create_app
from hub.config import ApiKey, HubConfig, hash_key
from hub.store.models import Case
from tests.hubkit import serve_in_thread
from tests.storekit import ingest
from tests.test_hub_api import alert

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_served(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time; commit order is id order there")
    keys = [ApiKey(name="edge", role="edge", hash=hash_key("k-edge")),
            ApiKey(name="ops", role="operator", unit="district-a", hash=hash_key("k-ops"))]
    cfg = HubConfig(database=db_url, keys=keys).resolved(Path("configs"))
    app = create_app(cfg, run_scheduler=False)
    port, stop = serve_in_thread(app)
    yield f"http://127.0.0.1:{port}", app.state.hub.store
    stop()


def test_writers_committing_out_of_id_order_skip_no_event(pg_served):
    url, store = pg_served
    a_id = ingest(store, [alert("oa", grid="grid-01")], actor="edge")[0]["case_id"]
    b_id = ingest(store, [alert("ob", grid="grid-03")], actor="edge")[0]["case_id"]

    got: list[dict] = []

    def reader() -> None:
        with httpx.stream("GET", f"{url}/api/v1/stream", headers={"Authorization": "Bearer k-ops"},
                          timeout=20) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:]))
                    if {e["detail"].get("who") for e in got} >= {"first", "second"}:
                        return

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(1.0)  # connected and following the log

    first_written, first_may_commit = threading.Event(), threading.Event()

    def first_writer() -> None:
        with store.transaction() as s:
            case = s.get(Case, a_id)
            store.log(s, case, datetime.now(UTC), "test", "note", {"who": "first"})
            s.flush()  # whatever the writer does next (more cases, more queries) flushes it early
            first_written.set()
            first_may_commit.wait(20)

    w1 = threading.Thread(target=first_writer)
    w1.start()
    assert first_written.wait(10)
    with store.transaction() as s:  # the second writer commits while the first is still open
        store.log(s, s.get(Case, b_id), datetime.now(UTC), "test", "note", {"who": "second"})
    deadline = time.monotonic() + 10
    while not any(e["detail"].get("who") == "second" for e in got) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(e["detail"].get("who") == "second" for e in got), "the reader never saw the second writer"
    first_may_commit.set()
    w1.join(10)
    th.join(10)
    whos = [e["detail"].get("who") for e in got if e["action"] == "note"]
    assert sorted(whos) == ["first", "second"], f"events seen: {whos}"
    ids = [e["id"] for e in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
