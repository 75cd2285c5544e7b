"""sweep.config: option rules, frozen settings, old stored configs; the pruner's epoch budget."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from sweep.config import OPTIONS
from sweep.config import RECONNECT_TIMEOUT_S
from sweep.config import Heartbeat
from sweep.config import OptionError
from sweep.config import RunOptions
from sweep.config import StudyConfig
from sweep.config import StudySettings
from sweep.config import max_reconnect_timeout
from sweep.config import reconnect_timeout
from sweep.config import study_config
from sweep.errors import UsageError
from sweep.run.sampling import make_pruner
from sweep.run.sampling import make_sampler
from sweep.run.sampling import max_epochs
from sweep.run.sampling import median_warmup

OBJECTIVE = {"metric": "expression.auroc", "direction": "maximize"}


def _space(search: dict[str, Any] | None = None, fixed: dict[str, Any] | None = None) -> dict:
    return {"objective": OBJECTIVE, "search": search or {}, "fixed": fixed or {}}


def test_settings_take_their_defaults_from_the_options() -> None:
    settings = StudySettings()
    for name in ("n_trials", "sampler", "pruner", "seed", "val_fraction", "split_seed"):
        assert getattr(settings, name) == OPTIONS[name].default
    assert RunOptions().workers == OPTIONS["workers"].default


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: StudySettings(n_trials=0), "--n-trials must be at least 1, got 0"),
        (lambda: StudySettings(sampler="bayes"), "--sampler must be one of tpe"),
        (lambda: StudySettings(max_consecutive_failures=0), "--max-consecutive-failures"),
        (lambda: RunOptions(workers=0), "--workers must be at least 1, got 0"),
        (lambda: RunOptions(timeout_s=0), "--timeout must be a positive number of seconds"),
    ],
)
def test_each_rule_is_the_options_rule(make: Any, message: str) -> None:
    with pytest.raises(OptionError, match=message) as caught:
        make()
    assert caught.value.exit_code == 1


@pytest.mark.parametrize("grace", [10, 20])
def test_the_grace_period_must_be_longer_than_two_heartbeats(grace: int) -> None:
    with pytest.raises(UsageError, match="grace period longer than two intervals") as caught:
        StudySettings(heartbeat_interval_s=10, grace_period_s=grace)
    assert caught.value.exit_code == 1
    assert StudySettings(heartbeat_interval_s=10, grace_period_s=21).grace_period_s == 21


def test_the_defaults_survive_an_outage_up_to_the_reconnect_timeout() -> None:
    """Grace >= reconnect timeout + 2 heartbeat intervals (last beat, one retry pause)."""
    settings = StudySettings()
    heartbeat = Heartbeat(settings.heartbeat_interval_s, settings.grace_period_s)
    assert heartbeat.grace_period_s >= RECONNECT_TIMEOUT_S + 2 * heartbeat.interval_s
    assert max_reconnect_timeout(heartbeat) == RECONNECT_TIMEOUT_S == 40
    assert reconnect_timeout(None, heartbeat, "s") == RECONNECT_TIMEOUT_S


def test_a_reconnect_timeout_the_grace_period_cannot_cover_is_refused() -> None:
    heartbeat = Heartbeat(interval_s=10, grace_period_s=60)
    assert reconnect_timeout(40, heartbeat, "s") == 40
    assert reconnect_timeout(5, heartbeat, "s") == 5
    with pytest.raises(OptionError) as caught:
        reconnect_timeout(120, heartbeat, "s")
    message = str(caught.value)
    assert caught.value.exit_code == 1 and "\n" not in message
    assert message.startswith("--reconnect-timeout 120 is too long for study 's'")
    assert "grace period (60 s)" in message and "use at most 40 s" in message


def test_replace_checks_again() -> None:
    config = study_config(_space())
    with pytest.raises(OptionError, match="--n-trials"):
        config.replace(n_trials=0)


def test_old_stored_configs_with_overrides_still_load() -> None:
    stored = study_config(_space(fixed={"epochs": 1}), n_trials=3).to_json()
    assert "overrides" not in stored
    old = {**stored, "overrides": {"epochs": 1}}
    config = StudyConfig.from_json(old)
    assert config.n_trials == 3 and config.search_space.fixed["epochs"] == 1
    assert config.settings() == StudySettings(n_trials=3)


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        (_space(fixed={"epochs": 7}), 7),
        (_space({"epochs": {"type": "int", "low": 5, "high": 20, "step": 5}}), 20),
        (_space({"epochs": {"type": "int", "low": 5, "high": 22, "step": 5}}), 20),
        (_space({"epochs": {"type": "int", "low": 2, "high": 30, "log": True}}), 30),
        (_space({"epochs": {"type": "categorical", "choices": [3, 12, 6]}}), 12),
        (_space(), 10),  # TrialParams' default
    ],
)
def test_max_epochs_is_the_largest_a_trial_can_run(space: dict, expected: int) -> None:
    assert max_epochs(study_config(space).search_space) == expected


@pytest.mark.parametrize(("epochs", "warmup"), [(1, 1), (2, 1), (3, 1), (4, 2), (10, 5)])
def test_the_median_pruner_waits_half_the_epochs(epochs: int, warmup: int) -> None:
    # B2 (benchmarks/search_efficiency.py): early epochs rank trials unlike the final one.
    config = study_config(_space({}, fixed={"epochs": epochs}), pruner="median", max_seeds=1)
    pruner = make_pruner(config)
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    assert pruner._n_warmup_steps == warmup
    assert median_warmup(epochs) == warmup


def test_hyperband_max_resource_follows_a_searched_epochs() -> None:
    space = _space({"epochs": {"type": "categorical", "choices": [5, 40]}})
    pruner = make_pruner(study_config(space, pruner="hyperband", max_seeds=1))
    assert isinstance(pruner, optuna.pruners.HyperbandPruner)
    assert pruner._max_resource == 40


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "nsga2"])
def test_samplers_accept_any_worker_index(sampler: str) -> None:
    # A PID on a host with pid_max 4194304 times the per-worker stride is past 2**32.
    config = study_config(_space({"coding_size": {"type": "int", "low": 2, "high": 8}}))
    study = optuna.create_study(
        sampler=make_sampler(config.replace(sampler=sampler), worker_index=4_000_000)
    )
    study.optimize(lambda trial: trial.suggest_int("coding_size", 2, 8), n_trials=2)
    assert len(study.trials) == 2
