"""What the hub's case layer refuses: an action the case does not allow (HTTP 409), a case that does not
exist (HTTP 404)."""

from __future__ import annotations

from gridwatch.core.errors import GridwatchError


class Conflict(GridwatchError):
    """An action the case's state does not allow (HTTP 409); the message is the reason."""


class NotFound(GridwatchError):
    """No such case (HTTP 404)."""
