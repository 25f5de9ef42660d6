"""The forwarder against a real HTTP hub: acknowledged alerts leave the outbox, nothing else does."""

from __future__ import annotations

from edge.forwarder import Forwarder
from edge.outbox import Outbox
from gridwatch.core.alert import Alert
from tests.rulekit import T0


def alert(i: int, state: str = "firing") -> Alert:
    return Alert.model_validate({"alert_id": f"id-{i}", "state": state, "rule_id": "r", "device_id": "d",
                                 "grid_id": "g", "category": "gas_leak", "severity": "major", "observed_at": T0})


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


def test_a_batch_answered_422_is_sent_singly_and_only_the_bad_alert_set_aside(tmp_path, hub):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([alert(i) for i in range(6)], {})
    hub.unprocessable.add("id-3")
    fwd = Forwarder(box, hub.url, hub.key, batch_size=4)
    for _ in range(20):
        if not fwd.send_once():
            break
    assert box.depth() == 0 and box.dead_count() == 1
    assert sorted(k[0] for k in hub.unique) == ["id-0", "id-1", "id-2", "id-4", "id-5"]
    assert fwd.batch_size > 1  # back to batches once the bad one is out


def test_a_stored_body_that_is_no_longer_an_alert_goes_to_dead_letter(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.commit([alert(1), alert(2)], {})
    with box._tx() as c:
        c.execute("UPDATE outbox SET body = '{\"alert_id\": \"id-1\"}' WHERE alert_id = 'id-1'")
    assert [a.alert_id for _, _, a in box.pending(10)] == ["id-2"]
    assert box.depth() == 1 and box.dead_count() == 1
    box.close()
