"""Errors every part raises on purpose.

GridwatchError
 └── ConfigError       a config or rule file that fails validation; carries file:path: reason lines
"""

from __future__ import annotations


class GridwatchError(Exception):
    """Base of every error gridwatch raises on purpose."""


class ConfigError(GridwatchError):
    """A config file failed to load; `problems` holds one `file:path: reason` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
