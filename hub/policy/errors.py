"""What the hub's case layer refuses: an action the case does not allow (HTTP 409), a case, request, part or
person that does not exist (HTTP 404). The whole hierarchy is drawn in `gridwatch.core.errors`."""

from __future__ import annotations

from typing import Any

from gridwatch.core.errors import GridwatchError


class Conflict(GridwatchError):
    """An action the case's state does not allow (HTTP 409); the message is the reason in English, `code`
    and `params` the same reason for a page to say in its own language."""

    def __init__(self, message: str, code: str = "conflict", /, **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class NotFound(GridwatchError, LookupError):
    """No such case, request, part or person (HTTP 404); a LookupError too."""
