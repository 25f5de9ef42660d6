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
            csp = dict(d.strip().split(" ", 1) for d in h["content-security-policy"].split(";"))
            assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'", (name, csp)  # nothing inline
            assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'" and csp["base-uri"] == "'none'"
            assert csp["connect-src"] == "'self'" and csp["report-uri"] == "/api/v1/csp-report"
            assert "unsafe" not in h["content-security-policy"], name
    finally:
        hub.stop()


def test_a_configured_portal_may_frame_the_board_and_reports_are_counted(db_url):
    from datetime import UTC, datetime

    from tests.hubkit import api_client

    portal = "https://portal.example.gov.cn"
    with api_client(db_url, {"ops": ("operator", "district-a")}, datetime(2026, 12, 3, tzinfo=UTC),
                    listen={"frame_ancestors": [portal]}) as c:
        h = c.get("/").headers
        assert f"frame-ancestors {portal};" in h["content-security-policy"] and "x-frame-options" not in h
        report = {"csp-report": {"document-uri": "http://hub/", "effective-directive": "script-src-elem",
                                 "blocked-uri": "inline"}}
        assert c.post("/api/v1/csp-report", json=report,
                      headers={"Content-Type": "application/csp-report"}).status_code == 204
        assert c.post("/api/v1/csp-report", content=b"not json").status_code == 204
        metrics = c.get("/metrics", headers={"Authorization": "Bearer key-ops"}).text
        assert 'gridwatch_hub_csp_violations_total{directive="script-src-elem"} 1.0' in metrics
