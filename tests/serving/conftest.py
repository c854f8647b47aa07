"""Serving fixtures: a throwaway PostgreSQL server for the whole session (`pg_url`) and a
fresh empty database on it per test (`pg_database`); see tests/serving/pgserver.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.serving.pgserver import PgServer, find_bindir, new_database


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a PostgreSQL server started for this session. Skips when PostgreSQL is not
    installed, unless ``CINEREC_REQUIRE_POSTGRES=1`` (CI), where that is a failure."""
    bindir = find_bindir()
    if bindir is None:
        reason = (
            "PostgreSQL is not installed (no initdb/pg_ctl on PATH or in "
            "/usr/lib/postgresql/*/bin); install it (apt-get install postgresql) to run "
            "the PostgreSQL store tests"
        )
        if os.environ.get("CINEREC_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"CINEREC_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    with PgServer(bindir) as server:
        yield server.url


@pytest.fixture
def pg_database(pg_url: str) -> str:
    """URL of a new, empty database on the session's server."""
    return new_database(pg_url)
