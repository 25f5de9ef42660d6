"""The API fuzz of tests/test_api_fuzz.py on PostgreSQL (which refuses NUL bytes in text), in a file of its own
so that pytest-xdist (one file per worker) runs it beside the SQLite run instead of after it."""

from __future__ import annotations

import pytest

from tests.test_api_fuzz import app, no_5xx  # noqa: F401 - `app` is the fixture both files use


@pytest.mark.e2e  # make e2e-test (about two minutes on PostgreSQL): keeps make test inside its ten minutes;
# the SQLite half stays in make test
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_no_5xx_for_any_role_on_postgresql(app):  # noqa: F811
    no_5xx(app)
