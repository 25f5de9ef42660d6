"""Exceptions of the edge agent.

GridwatchError
 ├── Rejected          a message that cannot be used; carries a counted reason code
 └── ConfigError       a config or rule file that fails validation; carries file:path: reason lines
"""

from __future__ import annotations


class GridwatchError(Exception):
    """Base of every error the edge raises on purpose."""


class Rejected(GridwatchError):
    """An incoming message was rejected; `reason` is a short code used as the metrics label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ConfigError(GridwatchError):
    """A config file failed to load; `problems` holds one `file:path: reason` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
