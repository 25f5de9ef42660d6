"""What a route declares about the audit trail (`hub.api.audit`), in its own decorator: an action the trail
records (`audited("user_added")`), or why it records none (`ON_TIMELINE`: a case action, which the case's
timeline records with its actor; `not_audited(reason)`). The declaration is in the OpenAPI document
(`x-audit`), and a test holds every state-changing route to having one."""

from __future__ import annotations

from typing import Any

KEY = "x-audit"
TIMELINE = "timeline"
NONE = "none"


def audited(action: str) -> dict[str, Any]:
    """The route's requests are recorded in the audit trail as `action`."""
    return {KEY: action}


ON_TIMELINE: dict[str, Any] = {KEY: TIMELINE, "x-audit-why": "a case action: the case's timeline records it with "
                                                             "its actor"}


def not_audited(reason: str) -> dict[str, Any]:
    return {KEY: NONE, "x-audit-why": reason}
