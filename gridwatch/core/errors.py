"""Errors every part raises on purpose, and the hierarchy of them all (the parts define their own here
beneath `GridwatchError`; a bug is any other exception).

GridwatchError
 ├── ConfigError       (here) a config or rule file that fails validation; carries file:path: reason lines
 ├── edge.errors.Rejected
 │                     an incoming message that cannot be used; `reason` is its metrics label
 ├── hub.errors.Conflict
 │                     an action the case's state or the org does not allow (HTTP 409), with a reason code
 └── hub.errors.NotFound (also a LookupError)
                       no such case, request, part or person (HTTP 404)
"""

from __future__ import annotations


class GridwatchError(Exception):
    """Base of every error gridwatch raises on purpose."""


class ConfigError(GridwatchError):
    """A config file failed to load; `problems` holds one `file:path: reason` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
