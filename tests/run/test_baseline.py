"""The notes' baseline: enqueued as trial 0 by ``sweep launch``, marked, shown by ``best``."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from sweep.config import BASELINE_ATTR
from sweep.params import NOTES_BASELINE
from sweep.params import TrialParams
from sweep.space import load_space
from sweep.store.read import baseline_trial
from sweep.store.study import load_config
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep

LAUNCH = ("launch", "--no-run", "--n-trials", "3")


def _launch(url: str, data: Path, *extra: str) -> None:
    done = run_sweep(*LAUNCH, "--data", str(data), *extra, storage=url)
    assert done.returncode == 0, done.stderr


def _trials(url: str, name: str = "notes") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


@pytest.mark.parametrize("space", ["notes", "notes_wide", "notes_pareto"])
def test_the_baseline_is_trial_0_with_exactly_the_notes_parameters(
    sqlite_url: str, synthetic_npz: Path, space: str
) -> None:
    _launch(sqlite_url, synthetic_npz, "--space", space, "--pruner", "none")
    (trial,) = _trials(sqlite_url)
    assert trial.number == 0 and trial.state == optuna.trial.TrialState.WAITING
    assert trial.user_attrs == {BASELINE_ATTR: "notes"}
    study_space = load_space(space)
    fixed = optuna.trial.FixedTrial(trial.system_attrs["fixed_params"])
    assert study_space.suggest(fixed) == NOTES_BASELINE
    assert NOTES_BASELINE.focal_alpha is None  # passed to Keras, never applied
    if space != "notes_wide":
        assert trial.system_attrs["fixed_params"] == {
            "coding_size": 300,
            "focal_gamma": 2.0,
            "focal_alpha_applied": False,
            "kl_beta": 1e-4,
            "dataset": "balanced",
        }
    config = load_config(optuna.storages.get_storage(sqlite_url), "notes")
    assert config.baseline == "notes" and config.baseline_differs == {}
    assert config.baseline_params == trial.system_attrs["fixed_params"]


def test_the_notes_baseline_is_the_notes_list() -> None:
    assert NOTES_BASELINE == TrialParams(
        coding_size=300,
        focal_gamma=2.0,
        focal_alpha=None,
        kl_beta=1e-4,
        dataset="balanced",
        encoder_units=(1280, 1024, 768, 512),
        learning_rate=1e-3,
        batch_size=32,
        epochs=10,
        loss="focal",
    )


def test_relaunch_does_not_enqueue_it_twice(sqlite_url: str, synthetic_npz: Path) -> None:
    _launch(sqlite_url, synthetic_npz)
    _launch(sqlite_url, synthetic_npz)
    _launch(sqlite_url, synthetic_npz, "--baseline", "notes")
    assert [t.number for t in _trials(sqlite_url)] == [0]


def test_baseline_none_enqueues_nothing(sqlite_url: str, synthetic_npz: Path) -> None:
    _launch(sqlite_url, synthetic_npz, "--baseline", "none")
    assert _trials(sqlite_url) == []
    assert load_config(optuna.storages.get_storage(sqlite_url), "notes").baseline is None


def test_fixed_values_stay_as_the_study_says_and_are_recorded(
    sqlite_url: str, synthetic_npz: Path
) -> None:
    _launch(sqlite_url, synthetic_npz, "--set", "epochs=1")
    config = load_config(optuna.storages.get_storage(sqlite_url), "notes")
    assert config.baseline_differs == {"epochs": [1, 10]}
    fixed = optuna.trial.FixedTrial(_trials(sqlite_url)[0].system_attrs["fixed_params"])
    assert config.search_space.suggest(fixed) == NOTES_BASELINE.replace(epochs=1)


def test_a_space_that_cannot_express_it_gets_one_line_and_no_study(
    sqlite_url: str, synthetic_npz: Path
) -> None:
    done = run_sweep(
        *LAUNCH, "--space", str(TINY_SPACE), "--data", str(synthetic_npz), "--baseline", "notes",
        storage=sqlite_url,
    )  # fmt: skip
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1
    assert "coding_size=300" in done.stderr and "[4, 8]" in done.stderr
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists() or not (
        optuna.get_all_study_summaries(sqlite_url)
    )


def test_tiny_has_no_baseline_by_default(sqlite_url: str, synthetic_npz: Path) -> None:
    _launch(sqlite_url, synthetic_npz, "--space", str(TINY_SPACE))
    assert _trials(sqlite_url) == []


def test_best_and_trials_show_the_baseline(sqlite_url: str, synthetic_npz: Path) -> None:
    _launch(sqlite_url, synthetic_npz)
    study = optuna.load_study(study_name="notes", storage=sqlite_url)
    space = load_space("notes")
    for value in (0.7, 0.8):  # two real COMPLETE trials that beat the (unrun) baseline
        trial = study.ask()
        if trial.number == 0:  # the baseline is popped first: finish it with a lower value
            space.suggest(trial)
            study.tell(trial, 0.6)
            trial = study.ask()
        space.suggest(trial)
        study.tell(trial, value)
    best = run_sweep("best", "notes", "--top", "1", storage=sqlite_url)
    assert best.returncode == 0, best.stderr
    header = best.stdout.splitlines()[0].split()
    assert header[:4] == ["trial", "#2", "#0", "baseline"]
    assert header[4:] == ["reference"]  # test_reference.py; what it is goes below the table
    assert "reference: logistic, 100-bp bins" in best.stdout.splitlines()
    rows = json.loads(
        run_sweep("best", "notes", "--top", "1", "--format", "json", storage=sqlite_url).stdout
    )
    assert [r["number"] for r in rows] == [2]  # JSON: the best set only
    baseline = baseline_trial(sqlite_url, "notes")
    assert baseline is not None and (baseline["number"], baseline["baseline"]) == (0, "notes")
    assert baseline["values"] == [0.6]
    listing = run_sweep("trials", "notes", storage=sqlite_url).stdout
    assert "0 baseline" in listing
    csv_rows = run_sweep("trials", "notes", "--format", "csv", storage=sqlite_url).stdout
    assert csv_rows.splitlines()[1].split(",")[0] == "0" and ",notes," in csv_rows.splitlines()[1]


def test_no_baseline_query_without_a_baseline(sqlite_url: str, synthetic_npz: Path) -> None:
    _launch(sqlite_url, synthetic_npz, "--baseline", "none")
    assert baseline_trial(sqlite_url, "notes") is None
