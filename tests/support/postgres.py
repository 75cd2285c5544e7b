"""PostgreSQL for tests: the server named by ``SWEEP_TEST_POSTGRES_URL``, one fresh database each.

``.ci/run`` starts the server and sets the variable. Locally, without it, a test that needs
PostgreSQL skips with a one-line reason; under CI (``CI=true``) it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "SWEEP_TEST_POSTGRES_URL"


def require_postgres() -> str:
    """The test server's URL; skip the test (fail it under CI) when there is none."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{POSTGRES_ENV} is not set under CI: .ci/run must start PostgreSQL")
    pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (see .ci/run)")


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "sweep_t") -> Iterator[str]:
    """Create an empty database on the test server; yield its URL; drop it afterwards."""
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    base = make_url(require_postgres())
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # No pool: a test may restart the server, and teardown must still reach it.
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
