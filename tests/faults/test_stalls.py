"""Stalls and silent errors (issue 11): each test creates the state for real and checks the cure.

* A RUNNING trial with no heartbeat row (a worker killed between creating its trial and the first
  heartbeat) is failed after the grace period and retried with the same parameters.
* A trial-creating commit whose acknowledgement is lost (the backend is terminated right after the
  commit) leaves exactly one trial, not an orphan or a second one.
* A worker refuses a ``--reconnect-timeout`` that its study's grace period cannot cover.
* A running worker follows a budget raised by another process (``resume --n-trials``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import sweep_env
from tests.support.faults import GRACE_S
from tests.support.faults import HEARTBEAT_S
from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import check_sweep
from tests.support.faults import create_study
from tests.support.faults import retries_of
from tests.support.faults import run_sweep
from tests.support.faults import wait_until


def _orphan_trial(url: str, name: str) -> tuple[int, dict[str, Any]]:
    """A RUNNING trial with parameters, as a worker killed before its first heartbeat leaves it.

    Created through the worker's own storage (the study's heartbeat settings) but with no
    heartbeat thread, which is what a SIGKILL between creating the trial and starting the thread
    leaves behind. Optuna's stale check skips a RUNNING trial without a heartbeat row, so before
    the cure (the row written in the creating transaction) it held its budget slot forever.
    """
    import optuna

    from sweep.store.rdb import open_storage
    from sweep.store.study import load_config

    config = load_config(open_storage(url), name)
    storage = open_storage(url, heartbeat=config.heartbeat)
    study = optuna.load_study(study_name=name, storage=storage)
    trial = study.ask()
    config.search_space.suggest(trial)
    frozen = storage.get_trial(trial._trial_id)
    storage.engine.dispose()
    return frozen.number, frozen.params


@pytest.mark.faults
@pytest.mark.parametrize("fault_storage", ["sqlite", "postgres"], indirect=True)
def test_a_running_trial_without_heartbeat_is_failed_and_retried(
    fault_storage: str, procs: Processes, synthetic_npz: Path
) -> None:
    url = fault_storage
    backend = url.split(":", 1)[0].split("+")[0]
    create_study(url, "orphan", synthetic_npz, 2, "--sampler", "random", "--pruner", "none")
    number, params = _orphan_trial(url, "orphan")
    started = time.monotonic()
    # Without the cure the orphan holds a budget slot forever: the worker waits to --timeout.
    worker = procs.start(url, "worker", "orphan", "--timeout", "90")
    code, output = procs.finish(worker, timeout=400)
    took = time.monotonic() - started
    assert code == 0, output[-3000:]
    assert "budget met" in output, output[-3000:]
    reader = StudyReader(url, "orphan")
    trials = reader.trials()
    reader.close()
    figures = check_sweep(trials, 2, stale_fail_only=True)
    orphan = trials[number]
    assert orphan.state.name == "FAIL", f"the orphan trial is {orphan.state.name}"
    retries = retries_of(trials, number)
    assert retries, "the orphan trial was not retried"
    assert all(r.params == params for r in retries), "a retry must re-run the same parameters"
    print(
        f"[faults] RUNNING trial without heartbeat ({backend}): FAIL and re-queued with the same "
        f"params, budget met {took:.0f} s after the worker started (grace {GRACE_S} s, "
        f"heartbeat {HEARTBEAT_S} s); {figures.line()}",
        flush=True,
    )


class _DropAfterCommit:
    """Terminate the PostgreSQL backend right after the commit of a trial insert, once per arming.

    The commit reaches the server; then the backend is terminated from another connection and the
    session's next statement meets the real disconnect, which is raised as the commit's error: the
    client never learns that its transaction was committed.
    """

    def __init__(self, engine: Any, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy import event
        from sqlalchemy.pool import NullPool

        self._engine = engine
        self._dialect = engine.dialect
        self._original: Callable[[Any], None] = engine.dialect.do_commit
        self._admin = create_engine(url, poolclass=NullPool)
        self._armed = False
        self._inserted = False
        self.dropped = 0
        self._dialect.do_commit = self._do_commit
        event.listen(engine, "before_cursor_execute", self._saw)

    def _saw(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TRIALS "):
            self._inserted = True

    def _do_commit(self, dbapi_connection: Any) -> None:
        inserted, self._inserted = self._inserted, False
        if not (self._armed and inserted):
            self._original(dbapi_connection)
            return
        self._armed = False
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        self._original(dbapi_connection)
        from sqlalchemy import text

        with self._admin.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        self.dropped += 1
        dbapi_connection.cursor().execute("SELECT 1")  # raises the driver's disconnect error
        raise AssertionError("the terminated backend still answered")

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self._engine, "before_cursor_execute", self._saw)
        self._dialect.do_commit = self._original
        self._admin.dispose()


def _create_plain(storage: Any, study: Any) -> None:
    storage.create_new_trial(study._study_id)


def _create_by_ask(storage: Any, study: Any) -> None:
    study.ask()


def _create_by_enqueue(storage: Any, study: Any) -> None:
    study.enqueue_trial({"x": 0.5})  # a template trial: the retry callback's path


@pytest.mark.faults
@pytest.mark.parametrize(
    "create",
    [_create_plain, _create_by_ask, _create_by_enqueue],
    ids=["storage", "ask", "enqueue"],
)
def test_a_lost_commit_acknowledgement_creates_one_trial(
    postgres_url: str, create: Callable[[Any, Any], None], caplog: pytest.LogCaptureFixture
) -> None:
    import optuna

    from sweep.store.rdb import open_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(postgres_url, reconnect_timeout_s=30)
    study = optuna.create_study(study_name="ack", storage=storage)
    study = optuna.load_study(study_name="ack", storage=storage)  # the worker's cached storage
    dropper = _DropAfterCommit(storage.engine, postgres_url)
    try:
        with dropper.armed():
            create(storage, study)
    finally:
        dropper.close()
    trials = storage.get_all_trials(study._study_id, deepcopy=False)
    storage.engine.dispose()
    assert dropper.dropped == 1, "the connection was not dropped after the commit"
    assert len(trials) == 1, f"{len(trials)} trials after one creation: {trials}"
    assert "acknowledgement was lost" in caplog.text, caplog.text
    print(
        f"[faults] connection dropped right after the commit of a trial creation "
        f"({create.__name__.removeprefix('_create_')}): {len(trials)} trial",
        flush=True,
    )


@pytest.mark.faults
def test_a_worker_refuses_a_reconnect_timeout_its_grace_period_cannot_cover(
    sqlite_url: str, synthetic_npz: Path
) -> None:
    create_study(sqlite_url, "short", synthetic_npz, 1, "--sampler", "random")
    result = run_sweep(sqlite_url, "worker", "short", "--reconnect-timeout", "10", timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("Error: --reconnect-timeout 10"), lines
    assert f"grace period ({GRACE_S} s)" in lines[0], lines[0]
    reader = StudyReader(sqlite_url, "short")
    assert reader.trials() == [], "a refused worker must not start a trial"
    reader.close()
    print(f"[faults] reconnect timeout longer than the grace period: {lines[0]}", flush=True)


@pytest.mark.faults
def test_a_running_worker_follows_a_raised_budget(
    sqlite_url: str, procs: Processes, synthetic_npz: Path
) -> None:
    create_study(sqlite_url, "grow", synthetic_npz, 2, "--sampler", "random", "--pruner", "none")
    worker = procs.start(sqlite_url, "worker", "grow")
    reader = StudyReader(sqlite_url, "grow")
    wait_until(
        lambda: reader.running_for(worker.pid) or worker.poll() is not None,
        timeout=120,
        what="the worker's first trial",
    )
    assert worker.poll() is None, procs.output(worker)[-3000:]
    raised = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, sys; from sweep.run.launch import resume_study; "
            "resume_study(os.environ['SWEEP_STORAGE'], 'grow', 4)",
        ],
        env=sweep_env(sqlite_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert raised.returncode == 0, raised.stderr[-3000:]
    code, output = procs.finish(worker, timeout=600)
    trials = reader.trials()
    reader.close()
    assert code == 0, output[-3000:]
    assert "worker done (budget met): 4 trials run" in output, output[-3000:]
    figures = check_sweep(trials, 4)
    print(
        f"[faults] budget raised from 2 to 4 by another process during the first trial: the "
        f"running worker ran all 4; {figures.line()}",
        flush=True,
    )


def _unwatched_trial(url: str, name: str) -> tuple[int, dict[str, Any]]:
    """A RUNNING trial from a plain Optuna client: ``study.ask()`` with no heartbeat at all.

    Optuna's stale check skips a trial without a heartbeat row, and nothing `sweep` does at
    creation can give this one a row: it comes from another client of the study.
    """
    import optuna

    from sweep.store.rdb import open_storage
    from sweep.store.study import load_config

    config = load_config(open_storage(url), name)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    trial = study.ask()
    config.search_space.suggest(trial)
    frozen = storage.get_trial(trial._trial_id)
    storage.engine.dispose()
    return frozen.number, frozen.params


@pytest.mark.faults
@pytest.mark.parametrize("fault_storage", ["sqlite", "postgres"], indirect=True)
def test_resume_fails_a_running_trial_another_client_left_without_heartbeat(
    fault_storage: str, procs: Processes, synthetic_npz: Path
) -> None:
    url = fault_storage
    backend = url.split(":", 1)[0].split("+")[0]
    create_study(url, "stray", synthetic_npz, 2, "--sampler", "random", "--pruner", "none")
    number, params = _unwatched_trial(url, "stray")
    reader = StudyReader(url, "stray")
    running = [t for t in reader.trials() if t.state.name == "RUNNING"]
    reader.close()
    assert [t.number for t in running] == [number]
    started = time.monotonic()
    # Before the cure `resume` waited for the stray trial forever (killed at 300 s).
    resumed = procs.start(url, "resume", "stray", "--timeout", "90")
    code, output = procs.finish(resumed, timeout=400)
    took = time.monotonic() - started
    assert code == 0, output[-3000:]
    reader = StudyReader(url, "stray")
    trials = reader.trials()
    reader.close()
    assert trials[number].state.name == "FAIL", f"the stray trial is {trials[number].state.name}"
    assert "no heartbeat" in output, output[-3000:]
    retries = retries_of(trials, number)
    assert retries and all(r.params == params for r in retries), "retried with other params"
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 2, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state.name == "RUNNING"]
    print(
        f"[faults] stray RUNNING trial from plain Optuna ({backend}): failed and retried, "
        f"resume met the budget {took:.0f} s after it started (grace {GRACE_S} s)",
        flush=True,
    )
