"""Storage URLs, masking and SQLite file handling, on real databases."""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
from pathlib import Path

import pytest

from sweep.errors import StorageError
from sweep.store.rdb import open_storage
from sweep.store.rdb import read_engine
from sweep.store.urls import mask_url
from sweep.store.urls import parse_url
from sweep.store.urls import redact
from sweep.store.urls import resolve_url
from sweep.store.urls import scrub

SECRET_URL = "postgresql://alice:hunter2@db.example:5432/sweeps"


def test_resolve_url_prefers_flag_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)
    assert resolve_url(None) == "sqlite:///sweep.db"
    monkeypatch.setenv("SWEEP_STORAGE", "sqlite:///env.db")
    assert resolve_url(None) == "sqlite:///env.db"
    assert resolve_url("sqlite:///flag.db") == "sqlite:///flag.db"


def test_an_empty_storage_variable_is_refused_not_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Secret or env file that lost its value must not send the study to a local file.
    monkeypatch.setenv("SWEEP_STORAGE", " ")
    with pytest.raises(StorageError, match="SWEEP_STORAGE is set but empty"):
        resolve_url(None)
    assert resolve_url("sqlite:///flag.db") == "sqlite:///flag.db"


def test_postgres_urls_get_psycopg3_and_are_masked() -> None:
    parsed = parse_url(SECRET_URL)
    assert parsed.get_driver_name() == "psycopg"
    assert mask_url(parsed).endswith("://alice:***@db.example:5432/sweeps")
    assert "hunter2" not in mask_url(SECRET_URL)
    assert scrub(f"failed: {SECRET_URL} said hunter2", SECRET_URL).count("hunter2") == 0
    assert redact(f"connecting to {SECRET_URL}") == (
        "connecting to postgresql://alice:***@db.example:5432/sweeps"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "malformed storage URL"),
        ("mysql://u:secretpw@h/db", "unsupported storage backend 'mysql'"),
        ("sqlite://", "names no database file"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as info:
        parse_url(url)
    assert "secretpw" not in str(info.value)


def test_missing_sqlite_file_is_never_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    with pytest.raises(StorageError, match="no study database"):
        open_storage(url)
    with pytest.raises(StorageError, match="no study database"):
        read_engine(url)
    assert not (tmp_path / "typo.db").exists()
    with pytest.raises(StorageError, match="does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'nodir' / 'x.db'}", create=True)


def test_created_sqlite_file_is_private_and_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    storage = open_storage(f"sqlite:///{path}", create=True)
    assert path.stat().st_mode & 0o077 == 0
    with storage.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_unreachable_postgres_is_one_masked_line() -> None:
    url = "postgresql+psycopg://bob:topsecret@127.0.0.1:1/nothing"
    with pytest.raises(StorageError) as info:
        open_storage(url, reconnect_timeout_s=1)
    message = str(info.value)
    assert "topsecret" not in message and "\n" not in message
    assert "bob:***@127.0.0.1:1" in message


@pytest.mark.postgres
def test_wrong_password_is_masked(postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    wrong = make_url(postgres_url).set(password="definitely-wrong-pw")
    with pytest.raises(StorageError, match="password authentication failed") as info:
        open_storage(wrong.render_as_string(hide_password=False))
    assert "definitely-wrong-pw" not in str(info.value)


def _open_new(url: str, results: multiprocessing.queues.Queue) -> None:
    try:
        open_storage(url, create=True)
        results.put("ok")
    except Exception as e:  # reported to the parent, which asserts on it
        results.put(f"{type(e).__name__}: {e}")


@pytest.mark.slow  # several interpreters import Optuna at once: out of the unit tier
def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    """A launch and a worker (or a status poll) may create the same new database together."""
    context = multiprocessing.get_context("spawn")
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'race{round_}.db'}"
        results = context.Queue()
        openers = [context.Process(target=_open_new, args=(url, results)) for _ in range(3)]
        for process in openers:
            process.start()
        for process in openers:
            process.join(60)
        assert [results.get(timeout=10) for _ in openers] == ["ok"] * 3


def test_a_stale_failure_whose_retry_was_lost_is_queued_once(storage_url: str) -> None:
    """A process killed between Optuna's FAIL and its retry callback loses no trial."""
    import optuna

    from sweep.config import Heartbeat
    from sweep.store.study import requeue_lost_retries

    heartbeat = Heartbeat(interval_s=5, grace_period_s=60, max_retry=1)
    storage = open_storage(storage_url, heartbeat=heartbeat, create=True)
    study = optuna.create_study(study_name="lost", storage=storage)
    x = optuna.distributions.FloatDistribution(0, 1)

    def failed(value: float, **user_attrs: str) -> int:
        study.enqueue_trial({"x": value})
        trial = study.ask({"x": x})
        for key, text in user_attrs.items():
            trial.set_user_attr(key, text)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return trial.number

    lost = failed(0.1)  # failed as stale, then its process died before the callback ran
    explained = failed(0.2, fail_reason="loss is NaN")
    retried = failed(0.3)
    callback = storage.get_heartbeat_stale_trial_callback()
    callback(study, study.trials[retried])  # its retry was queued (trial 3)

    assert requeue_lost_retries(study, storage, heartbeat) == []  # too recent to judge
    now = Heartbeat(interval_s=5, grace_period_s=0, max_retry=1)
    assert requeue_lost_retries(study, storage, now) == [lost]
    assert requeue_lost_retries(study, storage, now) == []  # never twice
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL", "FAIL", "WAITING", "WAITING"]
    retry = trials[4]
    assert retry.params == {"x": 0.1}
    assert retry.system_attrs["failed_trial"] == lost
    assert retry.system_attrs["retry_history"] == [lost]
    assert explained not in {t.system_attrs.get("failed_trial") for t in trials}
    # Both retries fail stale and lose their retries too, but they used up max_retry (1).
    for _ in range(2):
        study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)
    assert [t.state.name for t in study.get_trials()[3:]] == ["FAIL", "FAIL"]
    assert requeue_lost_retries(study, storage, now) == []


def test_confirm_names_shared_with_the_reader_agree() -> None:
    """store/confirm.py still defines these beside config.py's copies the reader uses."""
    from sweep import config
    from sweep.store import confirm

    assert confirm.CONFIRM_ATTR is config.CONFIRM_ATTR
    assert confirm.JOB_ATTR == config.CONFIRM_JOB_ATTR
    assert confirm.CONFIRM_SUFFIX == config.CONFIRM_SUFFIX


def test_a_running_trial_no_heartbeat_watches_is_failed_once_a_grace_period_old(
    storage_url: str,
) -> None:
    """``study.ask()`` from plain Optuna leaves no heartbeat row: only its age frees its slot."""
    import time

    import optuna

    from sweep.config import Heartbeat
    from sweep.store.study import fail_unwatched_trials

    patient = Heartbeat(interval_s=5, grace_period_s=60, max_retry=1)
    storage = open_storage(storage_url, heartbeat=patient, create=True)
    study = optuna.create_study(study_name="stray", storage=storage)
    plain = optuna.load_study(study_name="stray", storage=optuna.storages.RDBStorage(storage_url))
    x = optuna.distributions.FloatDistribution(0, 1)
    stray = plain.ask({"x": x})
    watched = study.ask({"x": x})  # sweep's storage writes its first heartbeat

    assert fail_unwatched_trials(study, storage, patient) == []  # younger than the grace period
    assert [t.state.name for t in study.get_trials()] == ["RUNNING", "RUNNING"]

    brief = Heartbeat(interval_s=1, grace_period_s=1, max_retry=1)
    storage = open_storage(storage_url, heartbeat=brief)
    study = optuna.load_study(study_name="stray", storage=storage)
    time.sleep(2.5)
    assert fail_unwatched_trials(study, storage, brief) == [stray.number]
    trials = study.get_trials()
    assert trials[stray.number].state.name == "FAIL"
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == stray.number]
    assert retry.state.name == "WAITING" and retry.params == stray.params
    assert fail_unwatched_trials(study, storage, brief) == []  # never twice
    # The watched trial (its heartbeat now 2.5 s old) is Optuna's own stale check's business.
    assert watched.number not in fail_unwatched_trials(study, storage, brief)


def test_a_trials_attributes_are_written_in_one_transaction(storage_url: str) -> None:
    import optuna
    from sqlalchemy import event

    from sweep.store.rdb import set_user_attrs

    storage = open_storage(storage_url, create=True)
    study = optuna.create_study(study_name="attrs", storage=storage)
    trial = study.ask()
    trial.set_user_attr("kept", 1)
    upserts: list[str] = []
    commits: list[object] = []
    commit = commits.append

    def statement(conn: object, cursor: object, text: str, *args: object) -> None:
        if text.lstrip().upper().startswith("INSERT"):
            upserts.append(text)

    event.listen(storage.engine, "before_cursor_execute", statement)
    event.listen(storage.engine, "commit", commit)
    attrs = {"metrics": {"auroc": 0.8}, "seconds": 1.5, "expression.auroc": 0.8, "kept": 2}
    set_user_attrs(trial, attrs)
    event.remove(storage.engine, "before_cursor_execute", statement)
    event.remove(storage.engine, "commit", commit)
    assert len(upserts) == len(attrs) and len(commits) == 1  # one upsert each, one commit
    assert trial.user_attrs == attrs  # the trial's own view is updated too
    stored = optuna.load_study(study_name="attrs", storage=storage_url).trials[0].user_attrs
    assert stored == attrs
    study.tell(trial, 0.5)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # Optuna's rule holds
        set_user_attrs(trial, {"late": 1})
