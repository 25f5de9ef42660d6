"""Browser hardening headers (issue 30, first part) on a served hub: the page, an API answer, a static asset,
a refused request and the event stream carry nosniff, no-referrer and no framing; no server banner; over
plain http no HSTS (tests/test_tls.py checks it over https)."""

from __future__ import annotations

import httpx
import pytest

from tests.hubkit import OPS, Hub

pytestmark = pytest.mark.slow
SLA = "policies:\n  - {id: d, calendar: 24x7, limits: {accept: 1h, resolve: 1d, feedback: 1d}}\n"


def test_every_answer_is_hardened_and_names_no_server(tmp_path):
    hub = Hub(tmp_path, SLA).start()
    try:
        auth = {"Authorization": f"Bearer {OPS}"}
        answers = {"page": httpx.get(f"{hub.url}/"), "api": httpx.get(f"{hub.url}/api/v1/me", headers=auth),
                   "asset": httpx.get(f"{hub.url}/board/board.js"),
                   "refused": httpx.get(f"{hub.url}/api/v1/me", headers={"Authorization": "Bearer wrong"})}
        with httpx.stream("GET", f"{hub.url}/api/v1/stream", headers=auth, timeout=10) as stream:
            answers["stream"] = stream
        assert [a.status_code for a in answers.values()] == [200, 200, 200, 401, 200]
        for name, a in answers.items():
            h = a.headers
            assert h["x-content-type-options"] == "nosniff", name
            assert h["referrer-policy"] == "no-referrer", name
            assert h["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in h["content-security-policy"], name
            assert "server" not in h, (name, h.get("server"))
            assert "strict-transport-security" not in h, name
    finally:
        hub.stop()
