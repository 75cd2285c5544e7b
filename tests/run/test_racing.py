"""Racing inside the search (:mod:`sweep.run.racing`): real workers and a real study database
(SQLite and PostgreSQL), with a stand-in trial child whose value is a known function of the
configuration plus seed noise, so every decision is certain and quick.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweep.config import study_config
from sweep.run.isolation import SparePool
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest
from sweep.run.racing import seed_mean_pruner
from sweep.run.racing import seed_mean_sampler
from sweep.run.sampling import make_pruner
from sweep.run.sampling import make_sampler
from sweep.run.worker import WorkerSettings
from sweep.run.worker import run_worker
from sweep.seeds import RACE_ATTR
from sweep.seeds import SEED_INDEX_ATTR
from sweep.seeds import race
from sweep.seeds import race_seed
from sweep.space import load_space
from sweep.store.rdb import open_storage
from sweep.store.read import StudyReader
from sweep.store.study import create_or_reuse_study
from tests.support.cli import TINY_SPACE

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: Seed noise of the stand-in child: +-0.02 around the configuration's own value.
NOISE = {0: 0.0, race_seed(1): 0.02, race_seed(2): -0.02}


def _truth(params: dict[str, Any]) -> float:
    """The stand-in configuration's true value: higher focal_gamma is better."""
    return 0.5 + 0.4 * (float(params["focal_gamma"]) - 1.5)


def _study(url: str, tmp_path: Path, **settings: Any) -> str:
    from sweep.train.data import file_sha256

    data = tmp_path / "stand-in.npz"
    data.write_bytes(b"never read: the child is a stand-in")
    config = study_config(
        load_space(TINY_SPACE),
        data_path=str(data),
        data_sha256=file_sha256(data),
        pruner="none",
        **settings,
    )
    create_or_reuse_study(open_storage(url, create=True), "race", config)
    return "race"


def _stand_in_child(monkeypatch: pytest.MonkeyPatch, epochs: int = 2) -> list[TrialRequest]:
    requests: list[TrialRequest] = []

    def run(self: SparePool, request: TrialRequest, **kwargs: Any) -> TrialOutcome:
        requests.append(request)
        params = dict(request.params or {})
        value = _truth(params) + NOISE.get(int(params["seed"]), 0.0)
        extra = {"diagnostics": {}, "flags": [], "elbo_beta": 0.1, "figure_sample": {}}
        return TrialOutcome(
            metrics={"expression.auroc": value}, seconds=0.1, epochs_run=epochs, extra=extra
        )

    monkeypatch.setattr(SparePool, "run", run)
    return requests


def _run(url: str) -> None:
    run_worker(WorkerSettings(study_name="race", storage_url=url, spare=False, poll_s=0.1))


def test_racing_spends_seeds_near_the_top_and_ranks_by_the_mean(
    monkeypatch: pytest.MonkeyPatch, storage_url: str, tmp_path: Path
) -> None:
    requests = _stand_in_child(monkeypatch)
    _study(storage_url, tmp_path, n_trials=8, max_seeds=3, sampler="random")
    _run(storage_url)

    trials = optuna.load_study(study_name="race", storage=storage_url).get_trials()
    configs = [t for t in trials if RACE_ATTR not in t.user_attrs]
    seeds = [t for t in trials if RACE_ATTR in t.user_attrs]
    assert Counter(t.state.name for t in configs) == {"COMPLETE": 8}  # n_trials: configurations
    assert seeds, "no configuration was raced"
    assert all(t.state.name == "COMPLETE" for t in seeds)
    keys = [(t.user_attrs[RACE_ATTR], t.user_attrs[SEED_INDEX_ATTR]) for t in seeds]
    assert len(keys) == len(set(keys)), "a seed ran twice"
    by_number = {t.number: t for t in trials}
    for t in seeds:  # the configuration's parameters, the seed index's seed
        own = by_number[t.user_attrs[RACE_ATTR]]
        assert t.params == own.params
        assert t.user_attrs["params_full"]["seed"] == race_seed(t.user_attrs[SEED_INDEX_ATTR])
    assert len(requests) == len(trials)

    # the race is over: the rule asks for nothing more, and at most 3 seeds each
    from sweep.run.racing import study_configurations

    final = study_configurations(trials)
    assert race(final, maximize=True, max_seeds=3) == []
    assert max(c.n for c in final) == 3
    # best ranks configurations by their seed mean, with every seed's value
    with StudyReader(storage_url) as reader:
        best = reader.best("race", top=3)
        status = reader.study("race")
    means = sorted((c.mean for c in final), reverse=True)
    assert [r.seeds["value_mean"] for r in best] == pytest.approx(means[:3])
    assert best[0].seeds["seeds"] == 3
    assert best[0].seeds["value_mean"] == pytest.approx(
        statistics.fmean(best[0].seeds["seed_values"])
    )
    assert status.finished == 8 and status.extra_seeds == len(seeds)
    assert best[0].seeds["seed_sd"] == pytest.approx(0.02, rel=0.5)  # the stand-in's noise
    # the stand-in's values are far apart against its seed noise: the top is ahead of #2
    assert best[0].seeds["ahead_of_next"] is (best[0].seeds["value_mean"] - means[1] > 0.05)

    from sweep.present.formatting import render_status
    from sweep.present.status import status_view

    with StudyReader(storage_url) as reader:
        view = status_view(reader, "race")
    assert view["best"]["number"] == best[0].number and view["best"]["seeds"] == 3
    assert view["best"]["values"] == [pytest.approx(best[0].seeds["value_mean"])]
    text = render_status(view, "table")
    assert "8/8 configurations (+" in text and "(seed mean of 3, #" in text

    from sweep.present.report import write_report

    page = write_report(storage_url, "race", tmp_path / "report").read_text()
    assert "Ranked by seed mean: #" in page and "seed mean" in page


def test_a_clearly_worse_configuration_gets_no_seed(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    _stand_in_child(monkeypatch)
    _study(sqlite_url, tmp_path, n_trials=1, max_seeds=3)
    study = optuna.load_study(study_name="race", storage=sqlite_url)
    study.enqueue_trial({"focal_gamma": 2.0, "coding_size": 8, "kl_beta": 1e-3})
    _run(sqlite_url)  # the incumbent: 0.7 on 3 seeds, sd 0.02
    config = open_storage(sqlite_url).get_study_user_attrs(study._study_id)["sweep"]
    save = {**config, "n_trials": 2}
    open_storage(sqlite_url).set_study_user_attr(study._study_id, "sweep", save)
    study.enqueue_trial({"focal_gamma": 1.5, "coding_size": 8, "kl_beta": 1e-3})  # 0.5
    _run(sqlite_url)
    trials = study.get_trials()
    raced = Counter(t.user_attrs.get(RACE_ATTR) for t in trials if RACE_ATTR in t.user_attrs)
    assert raced == {0: 2}  # the incumbent's two extra seeds; trial 3 (0.5) none
    assert len(trials) == 4


def test_the_sampler_and_the_pruner_see_seed_means(sqlite_url: str) -> None:
    seen: dict[str, Any] = {}

    class Recording(optuna.samplers.RandomSampler):
        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            seen["values"] = [t.value for t in study.get_trials(states=(_COMPLETE,))]
            seen["cached"] = [t.value for t in study._get_trials(use_cache=True)]
            return super().sample_independent(study, trial, name, dist)

    class RecordingPruner(optuna.pruners.BasePruner):
        def prune(self, study: Any, trial: Any) -> bool:
            done = study.get_trials(deepcopy=False, states=(_COMPLETE,))
            seen["curves"] = [t.intermediate_values for t in done]
            return False

    storage = open_storage(sqlite_url, create=True)
    study = optuna.create_study(
        study_name="m",
        storage=storage,
        direction="maximize",
        sampler=seed_mean_sampler(Recording(seed=0)),
        pruner=seed_mean_pruner(RecordingPruner()),
    )
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    own = optuna.trial.create_trial(
        params={"x": 0.3}, distributions={"x": dist}, value=0.9, intermediate_values={0: 0.8}
    )
    study.add_trial(own)
    for index, value, curve in ((1, 0.7, 0.6), (2, 0.5, 0.4)):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": 0.3},
                distributions={"x": dist},
                value=value,
                intermediate_values={0: curve},
                user_attrs={RACE_ATTR: 0, SEED_INDEX_ATTR: index},
            )
        )

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        trial.report(0.5, 0)
        trial.should_prune()
        return 0.1

    study.optimize(objective, n_trials=1)
    assert seen["values"] == [pytest.approx(0.7)]  # one configuration: (0.9 + 0.7 + 0.5) / 3
    assert seen["cached"][0] == pytest.approx(0.7) and len(seen["cached"]) == 2
    assert seen["curves"] == [{0: pytest.approx(0.6)}]
    assert study.trials[0].value == 0.9  # the stored runs are untouched


_COMPLETE = optuna.trial.TrialState.COMPLETE


def test_max_seeds_1_is_optunas_own_sampler_and_pruner(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    space = load_space(TINY_SPACE)
    one = study_config(space, max_seeds=1, pruner="median")
    assert type(make_sampler(one, 0)) is optuna.samplers.TPESampler
    assert type(make_pruner(one)) is optuna.pruners.MedianPruner
    assert type(make_sampler(study_config(space), 0)).__name__ == "SeedMeanSampler"

    _stand_in_child(monkeypatch)
    _study(sqlite_url, tmp_path, n_trials=4, max_seeds=1)
    _run(sqlite_url)
    trials = optuna.load_study(study_name="race", storage=sqlite_url).get_trials()
    assert len(trials) == 4 and not any(RACE_ATTR in t.user_attrs for t in trials)


def test_budget_epochs_stops_on_epochs_spent_seeds_included(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    _stand_in_child(monkeypatch, epochs=2)
    _study(sqlite_url, tmp_path, n_trials=50, max_seeds=3, budget_epochs=9)
    _run(sqlite_url)
    trials = optuna.load_study(study_name="race", storage=sqlite_url).get_trials()
    spent = sum(t.user_attrs["epochs_run"] for t in trials)
    assert 9 <= spent <= 9 + 2 * 3  # one claim past the line, then the running race ends
    assert len(trials) < 50


def test_a_study_from_before_racing_keeps_one_seed() -> None:
    from sweep.config import StudyConfig

    stored = study_config(load_space(TINY_SPACE)).to_json()
    del stored["max_seeds"]
    assert StudyConfig.from_json(stored).max_seeds == 1
    assert math.isclose(_truth({"focal_gamma": 2.0}), 0.7)


def test_resume_counts_configurations_and_finishes_queued_seeds(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, tmp_path: Path
) -> None:
    from sweep.errors import StudyConflictError
    from sweep.run.launch import resume_study

    _stand_in_child(monkeypatch)
    _study(sqlite_url, tmp_path, n_trials=2, max_seeds=3)
    _run(sqlite_url)
    with pytest.raises(StudyConflictError, match=r"already complete \(2/2 trials\)"):
        resume_study(sqlite_url, "race")
    study = optuna.load_study(study_name="race", storage=sqlite_url)
    assert len(study.trials) > 2  # seeds ran, and do not count against --n-trials 2
    # a seed left queued (its worker died before running it) is work left
    study.enqueue_trial(
        dict(study.trials[0].params), user_attrs={RACE_ATTR: 0, SEED_INDEX_ATTR: 9}
    )
    assert resume_study(sqlite_url, "race").n_trials == 2
    _run(sqlite_url)
    assert study.trials[-1].state.name == "COMPLETE"
    assert resume_study(sqlite_url, "race", n_trials=3).n_trials == 3  # raised over configs
