"""Driving the hub's case layer directly in tests: alert bodies as the edge would send them (dicts, parsed
by the shared model like the route does), results as the API answers them."""

from __future__ import annotations

from typing import Any

from gridwatch.core.alert import Alert
from hub.cases import actions
from hub.cases import ingest as hub_ingest
from hub.store.cases import Store
from hub.store.models import Case


def ingest(store: Store, bodies: list[dict[str, Any]], *, actor: str) -> list[dict[str, Any]]:
    alerts = [Alert.model_validate(b) for b in bodies]
    return [r.model_dump(exclude_none=True) for r in hub_ingest.ingest(store, alerts, actor=actor)]


def act(store: Store, case_id: str, action: Any, **kwargs: Any) -> Case:
    return actions.act(store, case_id, action, **kwargs)
