"""A real web vulnerability scanner against a served hub (issue 30, `make security`): wapiti 3.2 (PyPI's newest
release for Python 3.11, in its own venv `.venv-scan`; Debian's 3.0.4 crashes on Python 3.11 as soon as a URL is
excluded) crawls the board, reads the API from the hub's own OpenAPI document and attacks every operation's
parameters and bodies (SQL and time-based SQL injection, LDAP injection, XSS stored and reflected, command
execution, path traversal, CRLF, open redirect, backup files, HTTP methods, CSRF, and the CSP, header and
cookie-flag checks), signed in as an operator with a person's session, over cases whose text an attacker could
have chosen. No finding above low is allowed; the report is kept in test-output/wapiti.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.hubkit import Hub, person_sign_in
from tests.needs import missing
from tests.test_board_browser import SLA, alert

pytestmark = [pytest.mark.slow, pytest.mark.security]
OUT = Path(__file__).resolve().parent.parent / "test-output"
ADMIN = "scan-admin-key"
MODULES = ("timesql", "exec,backup,cookieflags,crlf,csp,csrf,htaccess,http_headers,methods",
           "file,redirect,sql,xss,permanentxss", "ldap")
"""The attack modules, in scans run side by side (not ssrf, xxe, log4shell, nikto, wapp: they need wapiti's
servers on the internet). One scan ran them in turn in 244 s, 90 of them timesql waiting out its time-based
probes (its --max-attack-time), 55 exec and 60 file: side by side they take about as long as the slowest.
permanentxss looks for what xss stored, so the two share a scan. ldap starts once the second and third scans
have ended: it flags a parameter whose answers differ between its probes, and while the others still send wrong
old passwords to /me/password the account's lock and the client's 429 changed those answers under it (two
false "LDAP injections" on old/new when it ran beside them)."""
AFTER = {3: (1, 2)}
"""Scan -> the scans it starts after."""
WAPITI = os.environ.get("WAPITI") or str(Path(__file__).resolve().parent.parent / ".venv-scan" / "bin" / "wapiti")
# Reviewed findings, each a false positive with its proof in the test: wapiti's LDAP module flags a parameter when
# its "match everything" probes (`*`, `*)...`) are answered differently from its reference values. The rule file's
# `text` is a YAML document the rule checker describes: `*` is a YAML alias, so its answer names that YAML error.
# The hub has no directory (LDAP) behind any parameter.
REVIEWED = {("LDAP Injection", "/api/v1/rules", "text"), ("LDAP Injection", "/api/v1/rules/check", "text")}
LEVELS = {"0": "info", "1": "low", "2": "medium", "3": "high", "4": "critical"}  # wapitiCore.language.vulnerability


def start_urls(url: str, case_id: str) -> list[str]:
    """What a crawler cannot find in a page built by script: the API's reads, with every query parameter."""
    q = "status=open&grid=grid-02&category=gas_leak&unit=district-a&light=red&q=gas&since=2026-12-01T00:00:00Z"
    return [f"{url}/api/v1/cases?{q}&limit=5", f"{url}/api/v1/cases/export?{q}&format=csv&lang=zh-CN",
            f"{url}/api/v1/cases/{case_id}", f"{url}/api/v1/cases/{case_id}/evidence/0",
            f"{url}/api/v1/cases/summary?unit=district-a",
            f"{url}/api/v1/stats?since=2026-12-01T00:00:00Z&until=2026-12-31T00:00:00Z&repeat_days=7&min_repeats=2",
            f"{url}/api/v1/assessment/cases?unit=district-a&measure=on_time&since=2026-12-01T00:00:00Z",
            f"{url}/api/v1/devices?q=gas&grid=grid-02&kind=sensor&limit=5&offset=0",
            f"{url}/api/v1/devices/export?format=csv&q=gas&grid=grid-02", f"{url}/api/v1/duty?unit=grid-02",
            f"{url}/api/v1/notices?case_id={case_id}&state=sent&limit=5", f"{url}/api/v1/maintenance?all=true",
            f"{url}/api/v1/rules/versions/1/diff?against=1", f"{url}/api/v1/map", f"{url}/api/v1/me",
            f"{url}/api/v1/labels", f"{url}/api/v1/users/zhang.wei/contacts", f"{url}/?case={case_id}"]


def merged(reports: list[dict]) -> dict:
    """One report of the scans: every finding of each, the most pages any of them crawled."""
    out = {"infos": dict(reports[0]["infos"]), "vulnerabilities": {}, "anomalies": {}}
    out["infos"]["crawled_pages_nbr"] = max(r["infos"]["crawled_pages_nbr"] for r in reports)
    for r in reports:
        for section in ("vulnerabilities", "anomalies"):
            for kind, items in r[section].items():
                out[section].setdefault(kind, []).extend(items)
    return out


@pytest.mark.timeout(700)
def test_wapiti_finds_nothing_above_low_on_the_board_and_the_api(tmp_path):
    if shutil.which(WAPITI) is None:
        missing("wapiti is installed by make security (.venv-scan)")
    hub = Hub(tmp_path, SLA, keys=[{"name": "admin", "role": "admin", "key": ADMIN}]).start()
    try:
        hub.person(ADMIN, "zhang.wei", "张伟", "district-a")
        hostile = alert(1, "grid-02", device="gas-21")
        hostile["message"] = "<script>alert(1)</script>' OR 1=1 -- ../../etc/passwd"
        case_id = hub.post([hostile, alert(2, "grid-02")])[0]["case_id"]
        signed = person_sign_in(lambda p, **kw: httpx.post(hub.url + p, timeout=30, **kw), "zhang.wei",
                                "Right-pw-2026", where=hub.url)  # (with the second factor operators have)
        assert signed.status_code == 200 and signed.json()["limited"] is None, signed.text
        token = signed.json()["token"]
        OUT.mkdir(exist_ok=True)
        spec = tmp_path / "openapi.json"  # (behind a key since issue 42: read with the session, given as a file)
        spec.write_text(httpx.get(f"{hub.url}/openapi.json", headers={"Authorization": f"Bearer {token}"},
                                  timeout=30).text)
        report = OUT / "wapiti.json"
        report.unlink(missing_ok=True)
        runs: list[subprocess.Popen] = []
        out: dict[int, str] = {}
        for n, modules in enumerate(MODULES):
            cmd = [WAPITI, "-u", f"{hub.url}/", "--scope", "domain", "-m", modules, "-H",
                   f"Authorization: Bearer {token}", "--swagger", str(spec),
                   "-x", f"{hub.url}/api/v1/stream", "-x", f"{hub.url}/api/v1/logout",
                   "-x", f"{hub.url}/api/v1/fleet/*",
                   "--flush-session", "--store-session", str(tmp_path / f"session-{n}"), "--store-config",
                   str(tmp_path / f"config-{n}"), "--max-scan-time", "420", "--max-attack-time", "90", "-t", "10",
                   "-d", "1", "--no-bugreport", "-v", "1", "-f", "json", "-o", str(tmp_path / f"wapiti-{n}.json")]
            for u in start_urls(hub.url, case_id):
                cmd += ["-s", u]
            for m in AFTER.get(n, ()):
                out[m] = runs[m].communicate(timeout=600)[0]
            runs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        logs = [out[n] if n in out else r.communicate(timeout=600)[0] for n, r in enumerate(runs)]
        (OUT / "wapiti.log").write_text("\n".join(logs), encoding="utf-8")
        for n, r in enumerate(runs):
            assert r.returncode == 0 and (tmp_path / f"wapiti-{n}.json").exists(), logs[n][-2000:]
        found = merged([json.loads((tmp_path / f"wapiti-{n}.json").read_text(encoding="utf-8"))
                        for n in range(len(runs))])
        report.write_text(json.dumps(found, ensure_ascii=False, indent=1), encoding="utf-8")
        crawled = found["infos"]["crawled_pages_nbr"]
        assert found["infos"]["target"].startswith(hub.url)
        assert crawled >= 60, crawled  # the board's files and the API's operations from /openapi.json were attacked
        summary = {kind: [(LEVELS.get(str(v["level"]), str(v["level"])), v["method"], v["path"], v.get("parameter"),
                           v["info"][:160]) for v in items] for section in ("vulnerabilities", "anomalies")
                   for kind, items in found[section].items() if items}
        print(json.dumps({"crawled": crawled, "findings": summary}, ensure_ascii=False, indent=1))
        above_low = [(kind, f) for kind, fs in summary.items() for f in fs if f[0] not in ("info", "low")]
        assert [x for x in above_low if (x[0], x[1][2], x[1][3]) not in REVIEWED] == [], above_low
        if above_low:  # the reviewed ones: the YAML checker answering what it found, as it should
            star = httpx.post(f"{hub.url}/api/v1/rules/check", json={"text": "*"}, timeout=30,
                              headers={"Authorization": f"Bearer {token}"}).json()
            plain = httpx.post(f"{hub.url}/api/v1/rules/check", json={"text": "nosuchvalue"}, timeout=30,
                               headers={"Authorization": f"Bearer {token}"}).json()
            assert "YAML" in star["problems"][0] and star["problems"] != plain["problems"], (star, plain)
        # the hub survived the attack and answered everything without a server error
        assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200
        assert not found["anomalies"].get("Internal Server Error"), found["anomalies"]["Internal Server Error"]
    finally:
        hub.stop()
