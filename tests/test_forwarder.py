"""The forwarder against a real HTTP hub: acknowledged alerts leave the outbox, nothing else does."""

from __future__ import annotations

from edge.forwarder import Forwarder
from edge.outbox import Outbox


def alert(i: int, state: str = "firing") -> dict:
    return {"alert_id": f"id-{i}", "state": state, "rule_id": "r", "device_id": "d", "grid_id": "g"}


def test_acknowledged_alerts_leave_the_outbox_once(tmp_path, hub):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([alert(i) for i in range(5)] + [alert(0)], {})
    assert box.depth() == 5
    fwd = Forwarder(box, hub.url, hub.key, batch_size=2)
    while fwd.send_once():
        pass
    assert box.depth() == 0 and len(hub.unique) == 5 and hub.duplicates() == {}
    box.commit([alert(0), alert(0, "resolved")], {})  # a replay of a sent alert is not queued again
    assert box.depth() == 1


def test_wrong_key_keeps_alerts_and_backs_off(tmp_path, hub):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([alert(1)], {})
    errors: list[str] = []
    fwd = Forwarder(box, hub.url, "not-the-key", on_error=errors.append)
    assert fwd.send_once() is False
    assert box.depth() == 1 and errors == ["auth"] and hub.unique == {}
    assert 0 < fwd._backoff() <= fwd.backoff_max


def test_rejected_alert_goes_to_dead_letter_not_lost(tmp_path, hub):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([alert(1), alert(2)], {})
    hub.reject.add("id-2")
    fwd = Forwarder(box, hub.url, hub.key)
    assert fwd.send_once() is True
    assert box.depth() == 0 and box.dead_count() == 1 and list(hub.unique) == [("id-1", "firing")]


def test_unreachable_hub_keeps_alerts(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([alert(1)], {})
    errors: list[str] = []
    fwd = Forwarder(box, "http://127.0.0.1:9", None, on_error=errors.append, timeout=1.0)
    assert fwd.send_once() is False
    assert box.depth() == 1 and errors == ["unreachable"]
