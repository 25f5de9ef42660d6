"""Schemathesis against the hub's own `/openapi.json`, with every role's key: whatever it generates from the
documented schema (bodies, paths, query strings, including NUL bytes and out-of-range numbers), the hub
never answers 5xx, and every answer is one the schema documents; on SQLite and on PostgreSQL (which
refuses NUL bytes in text): each generated request is sent to a hub on each, so the two share one
generation. Before this test the schema documented only 200/422: 401, 403, 404, 409,
411, 413, 429 and 503 were sent undocumented, and `stats` sent a 422 whose body broke its own schema."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from gridwatch.ruletools import EdgeRuleTools
from hub.boot.app import create_app
from hub.config import ApiKey, HubConfig, hash_key

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

EXAMPLES = 20  # per operation; each is sent with the five keys (see `fuzz` for the keys an operation refuses)
REFUSED_EVERY = 4
"""A key an operation has refused at the key check (401/403, before its handler) on its first examples is sent
with every fourth example only: the handler never sees it, so the other sends repeated the key check (they
were half of the run's requests)."""
ROLES = {"edge": ("edge", None), "operator": ("operator", "district-a"), "viewer": ("viewer", "grid-01"),
         "admin": ("admin", None), "none": (None, None)}


def grey_jpeg() -> bytes:
    return cv2.imencode(".jpg", np.full((8, 8), 128, np.uint8))[1].tobytes()


@pytest.fixture
def apps(tmp_path, postgres_url):
    """A hub on SQLite and one on PostgreSQL, each with the same things made in it."""
    from tests.hubkit import fresh_pg_database

    with fresh_pg_database(postgres_url) as pg:
        yield {"sqlite": made_app(f"sqlite:///{tmp_path / 'hub.sqlite'}"), "postgresql": made_app(pg)}


def made_app(db_url: str):  # noqa: ANN201
    keys = [ApiKey(name=n, role=r, unit=u, hash=hash_key(f"fuzz-{n}")) for n, (r, u) in ROLES.items() if r]
    # the wrong-key limiter would soon answer 429 to everything this client sends; the fuzz is for the handlers
    cfg = HubConfig(database=db_url, keys=keys,
                    limits={"auth_failures": 10**9}).resolved(Path("configs"))
    app = create_app(cfg, clock=lambda: T, run_scheduler=False, rule_tools=EdgeRuleTools())
    with TestClient(app) as c:  # a case to act on, so ids in paths sometimes exist
        alert = {"alert_id": "a1", "state": "firing", "rule_id": "gas-high", "device_id": "gas-03",
                 "grid_id": "grid-01", "kind": "sensor", "category": "gas_leak", "severity": "critical",
                 "observed_at": T.isoformat()}
        r = c.post("/api/v1/alerts", json={"alerts": [alert]}, headers={"Authorization": "Bearer fuzz-edge"})
        assert r.status_code == 200, r.text
        case_id = r.json()["results"][0]["case_id"]
        admin, ops = {"Authorization": "Bearer fuzz-admin"}, {"Authorization": "Bearer fuzz-operator"}
        made = [  # one of each thing a path names, so the handlers behind the ids are reached too
            c.put("/api/v1/devices/gas-03", json={"id": "gas-03", "grid": "grid-01"}, headers=admin),
            c.post("/api/v1/rules", json={"text": Path("configs/rules.yaml").read_text()}, headers=admin),
            c.post("/api/v1/maintenance", headers=admin, json={
                "scope": "device", "target": "gas-03", "reason": "fuzz", "starts_at": T.isoformat(),
                "ends_at": (T + timedelta(hours=1)).isoformat()}),
            c.post(f"/api/v1/cases/{case_id}/photos", content=grey_jpeg(),
                   headers={**ops, "Content-Type": "image/jpeg"}),
            c.post(f"/api/v1/cases/{case_id}/extension", headers=ops, json={
                "reason": "fuzz", "until": (T + timedelta(hours=2)).isoformat()}),
            c.post("/api/v1/users", headers=admin, json={"username": "fuzz-person", "name": "模糊", "unit": "grid-01",
                                                         "role": "operator", "password": "fuzz-password-1"}),
        ]
        for r in made:
            assert r.status_code in (200, 201), r.text
    app.state.fuzz_known = {"case_id": case_id, "device_id": "gas-03", "version": 1, "window_id": 1, "n": 1,
                            "request_id": 1, "decision": "approve", "step": "sign", "unit": "grid-01",
                            "username": "fuzz-person"}
    return app


BEFORE_THE_HANDLER = ("Not Found", "Method Not Allowed", "missing API key", "unknown API key", "signed out", "role ")
"""How answers begin that come from the router or the key check (hub.api.auth) rather than an operation's own
handler; FastAPI's 422 for a malformed request has a list as its detail."""


def reached(response) -> bool:
    """The operation's own handler answered: a success, or a refusal it made itself (a reason code of the
    hub's, or a message of its own), not the router's 404, the key check's 401/403 or FastAPI's 422."""
    if response.status_code < 300:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI's 422 lists {loc, msg, type}; a handler's (the rule checker's) lines
        return bool(detail) and all(isinstance(line, str) for line in detail)
    return isinstance(body.get("code"), str) or (isinstance(detail, str) and not detail.startswith(BEFORE_THE_HANDLER))


@dataclass
class Findings:
    failures: list[tuple] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)
    """Answers each operation's own handler gave (see `reached`), by "METHOD /path"."""
    undocumented: dict[tuple[str, str, int], str] = field(default_factory=dict)


KEYED_BY_PASSWORD = {"/api/v1/login"}
"""Sign-in checks a password, not a key: each attempt costs an Argon2id hash (also for an unknown name), so it
is sent with no key and with one key rather than with all five (16 s of the run otherwise)."""


def fuzz(op, apps: dict, found: Findings) -> None:  # noqa: C901 - one hypothesis run, its bookkeeping inline
    """EXAMPLES requests of one operation, each sent to every hub of `apps` with every role's key and with none
    (sign-in: see KEYED_BY_PASSWORD; keys refused at the key check: REFUSED_EVERY); every other example names
    things that exist in that hub (the seeded case, device, rule version...) in the path."""
    name = f"{op.method.upper()} {op.path}"
    names = [p for p in next(iter(apps.values())).state.fuzz_known if "{" + p + "}" in op.path]
    turn = iter(range(10**6))
    refused: dict[str, list[bool]] = {role: [] for role in ROLES}

    @given(case=op.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        k = next(turn)
        for role in ("none", "operator") if op.path in KEYED_BY_PASSWORD else ROLES:
            if len(refused[role]) >= 2 * len(apps) and all(refused[role]) and k % REFUSED_EVERY:
                continue
            headers = {"Authorization": f"Bearer fuzz-{role}"} if role != "none" else {}
            for db, app in apps.items():
                if names and k % 2:
                    case.path_parameters.update({p: app.state.fuzz_known[p] for p in names})
                response = case.call(headers=headers, app=app)
                found.statuses[response.status_code] += 1
                found.reached[name] += reached(response)
                refused[role].append(response.status_code in (401, 403) and not reached(response))
                if response.status_code >= 500:
                    found.failures.append((db, role, case.method, case.formatted_path, case.query, case.body,
                                           response.status_code, response.text[:200]))
                    continue
                try:
                    case.validate_response(response, checks=[status_code_conformance,
                                                             content_type_conformance, response_schema_conformance])
                except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports the nonconformance
                    found.undocumented[(case.method, case.operation.path, response.status_code)] = " | ".join(
                        line.strip() for line in str(exc).splitlines() if "Documented" in line or "ST1" in line)[:200]

    run()


@pytest.mark.e2e  # make e2e-test: the heaviest test of make test (138 s of one worker), out of its ten minutes
def test_no_5xx_for_any_role_on_sqlite_or_postgresql(apps):
    no_5xx(apps)


def no_5xx(apps: dict) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", apps["sqlite"],
                                            headers={"Authorization": "Bearer fuzz-admin"})
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if not op.path.endswith("/stream")]  # endless by design
    assert len(operations) >= 8
    found = Findings()
    for op in operations:
        fuzz(op, apps, found)
    assert found.failures == [], found.failures[:5]
    assert found.undocumented == {}, "\n".join(f"{k}: {v}" for k, v in sorted(found.undocumented.items()))
    statuses = found.statuses
    assert statuses[200] > 50 and statuses[401] > 50 and statuses[422] > 10, statuses
    # each operation's own handler answered at least once: one that only ever met the key check, the router
    # or request validation would not show in the totals above
    never = sorted(f"{op.method.upper()} {op.path}" for op in operations
                   if found.reached[f"{op.method.upper()} {op.path}"] == 0)
    assert never == [], never
