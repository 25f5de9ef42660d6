"""A full disk under the outbox (issue 16.6): the reason is told and counted, nothing is acknowledged or
lost, and the agent carries on when space returns. The disk is filled with SQLite's own page limit
(`max_page_count`), which fails exactly as a full file system does (SQLITE_FULL)."""

from __future__ import annotations

import sqlite3

import pytest

from edge.agent import Agent
from edge.outbox import Outbox
from tests.agentkit import GAS_RULES, Gateway, agent_config, wait_until


def fill(box: Outbox, extra_pages: int = 1) -> None:
    """Let every connection of the outbox grow by at most `extra_pages` pages from now on."""
    for conn in box._all:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + extra_pages}")


def free(box: Outbox) -> None:
    for conn in box._all:
        conn.execute("PRAGMA max_page_count = 1073741823")


def test_a_full_disk_says_so_and_keeps_what_was_committed(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([], {"kept": "1"})
    fill(box)
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):  # was: cannot rollback
        box.commit([], {f"k{i}": "x" * 4000 for i in range(50)})
    assert box.load_states() == {"kept": 1}  # the failed transaction left nothing half-written
    free(box)
    box.commit([], {"after": "2"})
    assert box.load_states() == {"kept": 1, "after": 2}
    box.close()




@pytest.mark.slow
def test_the_agent_counts_a_full_disk_holds_the_messages_and_recovers(tmp_path, broker, hub):
    agent = Agent(agent_config(tmp_path, broker, hub.url, GAS_RULES))
    agent.start()
    gw = Gateway(broker)
    try:
        assert agent.mqtt.wait_connected(10)
        gw.reading("grid-01", "gas-00", ch4_ppm=100.0)
        assert wait_until(lambda: agent.metrics.value("gridwatch_edge_messages_total", kind="sensor") >= 1)
        fill(agent.outbox, 0)
        for i in range(20):
            gw.reading("grid-01", f"gas-{i:02d}", ch4_ppm=9000.0 + i)
        assert wait_until(lambda: agent.metrics.value("gridwatch_edge_outbox_errors_total", reason="disk_full") >= 2)
        assert len(hub.unique) < 20  # what did not fit waits, unacknowledged at the broker
        free(agent.outbox)
        assert hub.wait_for(20, timeout=30)
        assert sorted(a["device_id"] for a in hub.unique.values()) == [f"gas-{i:02d}" for i in range(20)]
        assert hub.duplicates() == {}
    finally:
        gw.close()
        agent.stop()
