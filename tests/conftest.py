"""Shared test set-up: seeds, quiet TensorFlow, tiny real data, SQLite and PostgreSQL storages.

Every test starts from the same seeds (``random``, NumPy, and Keras when a test already imported
it). The one way to run the CLI is :func:`cli_helpers.run_sweep` (re-exported here): in-process
through Click's ``CliRunner`` by default, a real process with ``process=True``.

PostgreSQL tests use the server named by ``SWEEP_TEST_POSTGRES_URL`` (``.ci/run`` starts one and
sets it). Each test gets its own fresh database, dropped afterwards. Locally, without the
variable, those tests skip with a one-line reason; under CI (``CI=true``) they fail instead.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from cli_helpers import REPO  # noqa: E402  (after the TensorFlow environment above)
from cli_helpers import TINY_SPACE  # noqa: E402
from cli_helpers import run_sweep  # noqa: E402

__all__ = ["REPO", "TINY_SPACE", "fresh_postgres_database", "run_sweep"]

POSTGRES_ENV = "SWEEP_TEST_POSTGRES_URL"
TEST_SEED = 0


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Seed ``random`` and NumPy before every test; Keras too, if something imported it."""
    random.seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(TEST_SEED)


def _require_postgres() -> str:
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

    base = make_url(_require_postgres())
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


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL database (password auth over TCP)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL to a SQLite file in the test's temporary directory (not yet created)."""
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic file in the notes' 12001-column layout (240 rows)."""
    from sweep.train.synth import write_synthetic

    path = tmp_path_factory.mktemp("data") / "synthetic.npz"
    write_synthetic(path, 240, seed=0)
    return path
