"""Org and SLA files reload live; a bad edit is refused and an open case keeps its snapshotted policy."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hub.files.reload import ConfigWatcher
from tests.storekit import ingest
from tests.test_hub_scheduler import make_store
from tests.test_hub_store import Clock, alert


def touch(p: Path, text: str) -> None:
    p.write_text(text)
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_live_reload_keeps_snapshots_and_last_good(tmp_path):
    org, sla = tmp_path / "org.yaml", tmp_path / "sla.yaml"
    shutil.copy("configs/org.yaml", org)
    shutil.copy("configs/sla.yaml", sla)
    store = make_store(f"sqlite:///{tmp_path / 'hub.sqlite'}", Clock())
    watcher = ConfigWatcher(store, org, sla)
    old = ingest(store, [alert()], actor="edge-a")[0]["case_id"]
    touch(sla, "policies:\n  - id: strict\n    limits: {accept: 1m, resolve: 10m, feedback: 1h}\n")
    assert watcher.check() == {"sla.yaml": True}
    new = ingest(store, [alert("b1", device="gas-77")], actor="edge-a")[0]["case_id"]
    assert store.get(new)[0].policy["id"] == "strict"
    assert store.get(old)[0].policy["id"] == "life-safety"  # opened under the old file: unchanged
    touch(org, "units: [{id: g, level: grid}]\n")  # a grid without a parent: refused
    assert watcher.check() == {"org.yaml": False}
    assert "district-a" in store.org.units
    store.engine.dispose()
