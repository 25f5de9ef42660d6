"""Exceptions of the edge agent: `Rejected` for a message that cannot be used (the shared ones live in
`gridwatch.core.errors`)."""

from __future__ import annotations

from gridwatch.core.errors import ConfigError, GridwatchError

__all__ = ["ConfigError", "GridwatchError", "Rejected"]


class Rejected(GridwatchError):
    """An incoming message was rejected; `reason` is a short code used as the metrics label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
