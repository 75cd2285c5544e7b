"""The worker's claim (:mod:`sweep.run.worker`): what runs under the budget lock, on both backends.

A real worker (``run_worker``) runs a few trials of a real study, SQLite and PostgreSQL; only the
training step is a stand-in. Each hold of the budget lock records the storage calls its thread
made meanwhile, and each stand-in trial checks, from another connection, that the lock is free.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

import sweep.run.worker as worker_module
from sweep.run.isolation import SparePool
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest
from sweep.store.lock import budget_lock
from sweep.store.rdb import open_storage
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.objective import trial_result

#: Tables whose reads mean loading trials (Optuna's ``_get_trials``, the sampler's history).
TRIAL_DETAIL_TABLES = (
    "trial_params",
    "trial_values",
    "trial_user_attributes",
    "trial_intermediate_values",
    "trial_heartbeats",
)


class _Holds:
    """The SQL each thread runs while it holds the budget lock, hold by hold."""

    def __init__(self) -> None:
        self.holds: list[list[str]] = []
        self._local = threading.local()

    def lock(self, original: Any) -> Any:
        @contextlib.contextmanager
        def recording(storage: Any, study_name: str) -> Iterator[Any]:
            with original(storage, study_name) as conn:
                statements: list[str] = []
                self._local.statements = statements
                try:
                    yield conn
                finally:
                    self._local.statements = None
                    self.holds.append(statements)

        return recording

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements = getattr(self._local, "statements", None)
        if statements is not None:
            statements.append(" ".join(statement.split()))

    @staticmethod
    def claims(holds: list[list[str]]) -> list[list[str]]:
        """The holds that created a trial or popped one from the queue."""
        return [
            h
            for h in holds
            if any(s.startswith("INSERT INTO trials ") or s.startswith("UPDATE trials") for s in h)
        ]


def _reads_trials(statement: str) -> bool:
    return statement.startswith("SELECT") and any(
        f" {table}" in statement for table in TRIAL_DETAIL_TABLES
    )


def test_the_lock_covers_only_the_count_and_the_insert(
    monkeypatch: pytest.MonkeyPatch, storage_url: str, synthetic_npz: Path
) -> None:
    from sweep.run.worker import WorkerSettings
    from sweep.run.worker import run_worker

    done = run_sweep(
        "launch", "--no-run", "--space", str(TINY_SPACE), "--data", str(synthetic_npz),
        "--study", "c", "--n-trials", "4", "--pruner", "none",
        storage=storage_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    holds = _Holds()
    monkeypatch.setattr(worker_module, "budget_lock", holds.lock(worker_module.budget_lock))
    probe = open_storage(storage_url)
    free_while_training: list[bool] = []

    def train(self: SparePool, request: TrialRequest, **kwargs: Any) -> TrialOutcome:
        got = threading.Event()

        def take() -> None:  # another connection (SQLite: another open file description)
            with budget_lock(probe, "c"):
                got.set()

        threading.Thread(target=take, daemon=True).start()
        free_while_training.append(got.wait(10))
        return trial_result(0.6 + 0.01 * len(free_while_training))

    monkeypatch.setattr(SparePool, "run", train)
    event.listen(Engine, "before_cursor_execute", holds)
    try:
        summary = run_worker(WorkerSettings(study_name="c", storage_url=storage_url, spare=False))
    finally:
        event.remove(Engine, "before_cursor_execute", holds)

    assert summary.ran == 4 and summary.stopped_because == "budget met"
    assert free_while_training == [True] * 4, "the budget lock was held while a trial trained"
    trials = optuna.load_study(study_name="c", storage=storage_url).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    claims = _Holds.claims(holds.holds)
    assert len(claims) == 4
    for statements in claims:
        # Two counts and one transaction that inserts the trial, nothing read trial by trial.
        assert not [s for s in statements if _reads_trials(s)], statements
        assert len(statements) <= 12, statements
    # Besides the claims: the start's check for unwatched trials, one check for lost retries
    # (rate-limited) and the claim that finds the budget met.
    assert len(holds.holds) <= len(claims) + 3, holds.holds
