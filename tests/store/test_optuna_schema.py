"""The Optuna adapter (store._optuna_schema): schema-version check and stored times."""

from __future__ import annotations

import datetime
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from sweep.errors import SchemaVersionError
from sweep.errors import StorageError
from sweep.present import status as present_status
from sweep.store import _optuna_schema as schema
from sweep.store import read
from sweep.store.rdb import open_storage

REPO = Path(__file__).resolve().parents[2]
UTC = datetime.timezone.utc
BERLIN = "Europe/Berlin"  # UTC+1 in winter, UTC+2 in summer

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def local_zone() -> Iterator[None]:
    """This process in Berlin time for the test (``datetime.now()`` and naive ``astimezone``)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = BERLIN
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def _study_db(path: Path) -> str:
    """A real database written by the installed Optuna: study ``s``, trials 0 (COMPLETE), 1."""
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name="s", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    study.ask()  # a RUNNING trial
    return url


def _set_versions(path: Path, **columns: object) -> None:
    with sqlite3.connect(path) as conn:
        if "version_num" in columns:
            conn.execute("UPDATE alembic_version SET version_num = ?", (columns["version_num"],))
        for column in ("schema_version", "library_version"):
            if column in columns:
                conn.execute(f"UPDATE version_info SET {column} = ?", (columns[column],))
    conn.close()


def _snapshot(path: Path) -> tuple[str, list[str], list[str]]:
    """The file's bytes (hash), its SQL dump and the files beside it."""
    with sqlite3.connect(path) as conn:
        dump = list(conn.iterdump())
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest, dump, sorted(p.name for p in path.parent.iterdir())


def test_a_database_of_the_installed_optuna_passes(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    url = _study_db(tmp_path / "ok.db")
    engine = create_engine(url)
    with engine.connect() as conn:
        found = schema.check_schema(conn, url)
    engine.dispose()
    assert found is not None
    assert found.revision in schema.SUPPORTED_REVISIONS
    assert found.schema_version in schema.SUPPORTED_SCHEMA_VERSIONS
    assert found.library_version == optuna.__version__ and found.utc_times
    # The installed Optuna's own head is what the adapter declares supported.
    storage = optuna.storages.RDBStorage(url)
    assert storage.get_current_version() == storage.get_head_version()
    assert storage.get_head_version() in schema.SUPPORTED_REVISIONS
    storage.engine.dispose()
    assert [t["number"] for t in read.list_trials(url, "s")] == [0, 1]
    open_storage(url)  # the worker side too


def test_an_empty_database_passes(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert read.list_studies(f"sqlite:///{empty}") == []


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"version_num": "v9.9.9.z"}, "alembic revision v9.9.9.z, schema_version 12"),
        ({"schema_version": 13}, "alembic revision v3.2.0.a, schema_version 13"),
    ],
)
def test_an_unknown_schema_is_refused_in_one_line_and_left_unchanged(
    tmp_path: Path, change: dict[str, object], found: str
) -> None:
    path = tmp_path / "future.db"
    url = _study_db(path)
    _set_versions(path, **change)
    before = _snapshot(path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    commands = [
        ["best", "s"],
        ["status", "s"],
        ["trials", "s"],
        ["studies"],
        ["worker", "s", "--wait-for-db", "0"],
    ]
    for args in commands:
        result = subprocess.run(
            [sys.executable, "-m", "sweep", *args, "--storage", url],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=env,
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, (args, result.stderr)
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("Error: ") and found in lines[0], (args, lines[0])
        assert "supported: alembic revision v3.2.0.a, schema_version 12" in lines[0]
        assert result.stdout == ""
    with pytest.raises(SchemaVersionError) as caught:
        open_storage(url)
    assert isinstance(caught.value, StorageError)
    assert "\n" not in str(caught.value) and found in str(caught.value)
    assert _snapshot(path) == before


def test_schema_check_on_postgres_refuses_and_changes_nothing(postgres_url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    study = optuna.create_study(storage=postgres_url, study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)
    assert read.list_studies(postgres_url)[0]["name"] == "s"
    engine = create_engine(postgres_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'v9.9.9.z'"))
    for call in (
        lambda: read.best_trials(postgres_url, "s"),
        lambda: present_status.study_status(postgres_url, "s"),
        lambda: open_storage(postgres_url),
    ):
        with pytest.raises(SchemaVersionError, match="alembic revision v9.9.9.z"):
            call()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "v9.9.9.z"
    engine.dispose()


def test_times_of_optuna_4_are_local_and_of_optuna_5_utc(local_zone: None) -> None:
    winter = datetime.datetime(2024, 1, 15, 12, 0)  # Berlin UTC+1
    summer = datetime.datetime(2024, 7, 15, 12, 0)  # Berlin UTC+2
    v4 = schema.StoredSchema("v3.2.0.a", 12, "4.5.0")
    v5 = schema.StoredSchema("v3.2.0.a", 12, "5.0.0")
    assert not v4.utc_times and v5.utc_times
    assert v4.to_utc(winter) == datetime.datetime(2024, 1, 15, 11, 0, tzinfo=UTC)
    assert v4.to_utc(summer) == datetime.datetime(2024, 7, 15, 10, 0, tzinfo=UTC)
    assert v5.to_utc(winter) == datetime.datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert v5.to_utc(None) is None and v4.to_utc(None) is None
    aware = datetime.datetime(
        2024, 1, 15, 13, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert v4.to_utc(aware) == v5.to_utc(aware) == datetime.datetime(2024, 1, 15, 12, tzinfo=UTC)
    # Unknown or missing library versions are read the way the installed Optuna writes.
    assert schema.StoredSchema().utc_times and schema.StoredSchema(library_version="x").utc_times
    assert not schema.StoredSchema(library_version="3.6.1").utc_times


def test_reports_give_utc_for_each_writer(tmp_path: Path, local_zone: None) -> None:
    """The installed Optuna (5.x) writes UTC; a 4.x database holds local time."""
    path = tmp_path / "times.db"
    before = datetime.datetime.now(UTC).replace(microsecond=0)
    url = _study_db(path)
    after = datetime.datetime.now(UTC) + datetime.timedelta(seconds=1)
    trials = read.list_trials(url, "s")
    started = datetime.datetime.fromisoformat(trials[0]["started"])
    completed = datetime.datetime.fromisoformat(trials[0]["completed"])
    assert before <= started <= completed <= after, (before, started, completed, after)
    status = present_status.study_status(url, "s")
    assert status["created"] == trials[0]["started"]
    assert status["last_completed"] == trials[0]["completed"]
    # The same rows as Optuna 4.x would have written them: naive local (Berlin) time.
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE trials SET datetime_start = '2024-07-15 12:00:00.000000'")
    conn.close()
    _set_versions(path, library_version="4.5.0")
    running = present_status.study_status(url, "s")["running"]
    assert running[0]["started"] == "2024-07-15T10:00:00+00:00"
    assert read.list_trials(url, "s")[0]["started"] == "2024-07-15T10:00:00+00:00"
    _set_versions(path, library_version="5.0.0")
    assert read.list_trials(url, "s")[0]["started"] == "2024-07-15T12:00:00+00:00"


def test_heartbeat_age_uses_the_database_clock(tmp_path: Path, local_zone: None) -> None:
    url = _study_db(tmp_path / "beat.db")
    storage = open_storage(url)
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    storage.record_heartbeat(running[0]._trial_id)
    storage.engine.dispose()
    age = present_status.study_status(url, "s")["running"][0]["heartbeat_age_s"]
    assert age is not None and 0 <= age < 60
