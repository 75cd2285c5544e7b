"""The objective (:mod:`sweep.run.objective`) with a stand-in child, and the worker's claim.

The real child runs in ``tests/test_sweep.py`` and the fault suite; here ``run_in_child`` is
replaced so each outcome (complete, failed, pruned, interrupted) is certain and quick.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest

import sweep.run.objective as objective_module
from sweep.errors import TrialFailed
from sweep.run.isolation import EpochHandler
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest
from sweep.run.signals import Interrupted
from sweep.run.worker import BudgetClaim
from sweep.store.lock import budget_lock
from sweep.store.rdb import open_storage
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.objective import tiny_objective as _objective
from tests.support.objective import trial_result as _result

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _fake_child(
    monkeypatch: pytest.MonkeyPatch,
    epochs: list[float],
    outcome: TrialOutcome | BaseException,
    calls: list[str] | None = None,
) -> None:
    def run_in_child(
        request: TrialRequest,
        *,
        on_epoch: EpochHandler | None = None,
        env: Mapping[str, str] | None = None,
        on_ask: Any = None,
    ) -> TrialOutcome:
        if calls is not None:
            calls.append("child")
        for epoch, value in enumerate(epochs):
            assert on_epoch is not None
            on_epoch(epoch, {"expression.auroc": value, "loss": 1.0})
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(objective_module, "run_in_child", run_in_child)


def test_a_complete_trial_records_its_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    _fake_child(monkeypatch, [0.6, 0.7], _result(0.75), calls)
    study = optuna.create_study(direction="maximize")
    objective = _objective(worker_id="host:1").with_hook(lambda: calls.append("created"))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert calls == ["created", "child"]  # the budget slot is handed over before training
    assert trial.state.name == "COMPLETE" and trial.value == pytest.approx(0.75)
    assert trial.intermediate_values == {0: 0.6, 1: 0.7}
    recorded = ("metrics", "history", "diagnostics", "flags", "seconds", "train_seconds")
    assert set(recorded) | {"elbo_beta", "epochs_run", "figure_sample"} <= set(trial.user_attrs)
    assert trial.user_attrs["train_seconds"] == 1.5
    assert trial.user_attrs["worker"] == "host:1"
    assert trial.user_attrs["params_full"]["epochs"] == 2
    assert "cuda_visible_devices" in trial.user_attrs


def test_a_failed_trial_is_fail_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, [0.6], TrialFailed("collapsed: output std 3e-7"))
    study = optuna.create_study(direction="maximize")
    study.optimize(_objective(), n_trials=1, catch=(TrialFailed,))
    trial = study.trials[0]
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"] == "collapsed: output std 3e-7"


def test_an_undefined_objective_fails_the_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, [], _result(float("nan")))
    study = optuna.create_study(direction="maximize")
    study.optimize(_objective(), n_trials=1, catch=(TrialFailed,))
    reason = study.trials[0].user_attrs["fail_reason"]
    assert reason.startswith("objective metric expression.auroc is undefined for this trial")


def test_the_pruner_sees_every_epoch_and_prunes(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, [0.6, 0.5, 0.4], _result(0.4))
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.55)
    )
    study.optimize(_objective(), n_trials=1)
    trial = study.trials[0]
    assert trial.state.name == "PRUNED"
    assert trial.intermediate_values == {0: 0.6, 1: 0.5}
    assert trial.user_attrs["prune_reason"] == "pruned after epoch 2: expression.auroc=0.5"
    assert "metrics" not in trial.user_attrs


def test_without_epoch_metrics_nothing_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, [0.1, 0.1], _result(0.8))
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.55)
    )
    study.optimize(_objective(epoch_metrics=()), n_trials=1)
    assert study.trials[0].state.name == "COMPLETE"
    assert study.trials[0].intermediate_values == {}


def test_an_interrupt_is_recorded_as_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_child(monkeypatch, [0.6], Interrupted("SIGTERM"))
    study = optuna.create_study(direction="maximize")
    with pytest.raises(Interrupted):
        study.optimize(_objective(), n_trials=1)
    trial = study.trials[0]
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["fail_reason"] == "interrupted by SIGTERM"


def _lock_is_free(url: str, study: str) -> bool:
    """Whether another holder gets ``study``'s lock within a few seconds."""
    got = threading.Event()
    storage = open_storage(url)

    def take() -> None:
        with budget_lock(storage, study):
            got.set()

    threading.Thread(target=take, daemon=True).start()
    return got.wait(5)


def test_a_budget_claim_holds_the_lock_until_released(storage_url: str) -> None:
    storage = open_storage(storage_url, create=True)
    with BudgetClaim(storage, "study") as claim:
        probe = open_storage(storage_url)
        waiting = threading.Event()
        got = threading.Event()

        def take() -> None:
            waiting.set()
            with budget_lock(probe, "study"):
                got.set()

        threading.Thread(target=take, daemon=True).start()
        assert waiting.wait(5)
        assert not got.wait(1.0), "the claim did not hold the budget lock"
        claim.release()
        assert got.wait(10), "release() did not release the budget lock"
        claim.release()  # idempotent
    assert _lock_is_free(storage_url, "study")


def test_repeated_failures_stop_at_the_budget(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, synthetic_npz: Path
) -> None:
    from sweep.errors import SweepStopped
    from sweep.run.isolation import SparePool
    from sweep.run.worker import WorkerSettings
    from sweep.run.worker import run_worker

    done = run_sweep(
        "launch", "--no-run", "--space", str(TINY_SPACE), "--data", str(synthetic_npz),
        "--study", "f", "--n-trials", "2", "--max-consecutive-failures", "5",
        storage=sqlite_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    def failing(self: SparePool, request: TrialRequest, **kwargs: Any) -> TrialOutcome:
        raise TrialFailed("diverged on purpose")

    monkeypatch.setattr(SparePool, "run", failing)
    with pytest.raises(SweepStopped, match=r"after 2 consecutive failed trials \(as many as"):
        run_worker(WorkerSettings(study_name="f", storage_url=sqlite_url, spare=False))
    trials = optuna.load_study(study_name="f", storage=sqlite_url).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
