"""`POST /api/v1/alerts`: batches from edge agents, idempotent on (alert_id, state).

The body is the shared `AlertBatch` model, so OpenAPI documents the alert and a malformed alert gets a
422 that names the field (the forwarder then sends one by one and sets the bad one aside)."""

from __future__ import annotations

import json
import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gridwatch.core.alert import AlertBatch, AlertResult, AlertResults, nul_field
from hub.api.audited import not_audited
from hub.api.deps import EdgeCaller, HubDep
from hub.api.errors import BODY, GUARD, responses
from hub.cases.ingest import ingest

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], responses=responses(*GUARD, *BODY, 403))


async def _has_nul(request: Request) -> bool:
    """Whether the raw body escapes a NUL character anywhere (it almost never does: then no alert is
    searched for one)."""
    return b"\\u0000" in await request.body()


@router.post("", response_model=AlertResults,
             openapi_extra=not_audited("alerts: the timeline of each case records the alert that opened or joined it"))
def post_alerts(batch: AlertBatch, hub: HubDep, who: EdgeCaller,
                has_nul: Annotated[bool, Depends(_has_nul)]) -> Response:
    """One result per alert, in order: created / merged / updated / duplicate, or rejected for good with
    the reason (an alert no database can store), never a failed batch."""
    store, metrics = hub.store, hub.metrics
    wait = hub.intake.take(who.name, len(batch.alerts)) if hub.intake is not None else 0.0
    if wait > 0:  # the forwarder backs off and sends again; nothing of this batch was taken
        metrics.alerts.labels("throttled").inc(len(batch.alerts))
        return Response(json.dumps({"detail": f"edge key {who.name!r} is over its alert rate; retry later"}),
                        status_code=429, media_type="application/json",
                        headers={"Retry-After": str(max(1, math.ceil(wait)))})
    refused: dict[int, AlertResult] = {}
    for i, a in enumerate(batch.alerts):
        why = None
        if who.grids is not None and a.grid_id not in who.grids:
            why = f"grid_id: {a.grid_id!r} is not one of the grids of edge key {who.name!r}"
        elif hub.unknown_grids == "reject" and a.grid_id not in store.org.units:
            why = f"grid_id: {a.grid_id!r} is not in the org tree"
        elif has_nul and (field := nul_field(a)) is not None:
            why = f"{field}: contains a NUL character"
        if why is not None:
            refused[i] = AlertResult(alert_id=a.alert_id, state=a.state, status="rejected", error=why)
    taken = ingest(store, [a for i, a in enumerate(batch.alerts) if i not in refused], actor=who.name)
    it = iter(taken)
    results = [refused[i] if i in refused else next(it) for i in range(len(batch.alerts))]
    for r in results:
        metrics.alerts.labels(r.status).inc()
    # serialised once by pydantic, not again by FastAPI's generic encoder on the hot path
    return Response(AlertResults(results=results).model_dump_json(), media_type="application/json")
