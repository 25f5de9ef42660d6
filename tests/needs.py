"""A tool a test needs and cannot find: skipped on a developer's machine, a failure in CI (`.ci/run` sets
GRIDWATCH_CI and `make deps` installs every tool), so a missing package can never pass CI silently."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    if os.environ.get("GRIDWATCH_CI"):
        pytest.fail(f"{reason} (GRIDWATCH_CI: a missing tool fails here)")
    pytest.skip(reason)
