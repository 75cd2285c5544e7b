"""KerasTuner on the study database: hypermodels as sweeps, NotesVAE, --as-hyperparameters.

The ``hp`` stand-in and its Optuna suggestions are checked in this process without Keras; the
sweeps run the tiny hypermodels of tests/support/hypermodels/ (a Dense autoencoder, 1 epoch)
with real trial processes on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweep.dialects import suggest_hp
from sweep.errors import HypermodelError
from sweep.run.hypermodel import default_direction
from sweep.run.hypermodel import parse_hp_assignments
from sweep.train.hyperparams import SweepHyperParameters
from sweep.train.hyperparams import UnsupportedHpCall
from sweep.train.hyperparams import default_value
from tests.support.cli import run_sweep
from tests.support.hypermodels.calls import RANGES
from tests.support.hypermodels.calls import declare

HYPERMODELS = Path(__file__).resolve().parents[1] / "support" / "hypermodels"
TINY = HYPERMODELS / "tiny.py"

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _on_grid(value: float, low: float, step: float | None) -> bool:
    if step is None:
        return True
    k = (value - low) / step
    return math.isclose(k, round(k), abs_tol=1e-6)


def _check_values(values: dict[str, Any]) -> None:
    """Every numeric value inside its declared range and on its step grid."""
    for name, (kind, low, high, step) in RANGES.items():
        if values.get(name) is None:
            continue
        value = values[name]
        assert low <= value <= high, (name, value)
        assert _on_grid(value, low, step), (name, value)
        assert isinstance(value, int) == (kind == "int"), (name, value)
    assert values["activation"] in ("relu", "tanh")
    assert values["use_bias"] in (True, False)
    assert values["latent"] == 4
    assert (values.get("momentum") is not None) == (values["optimizer"] == "sgd")
    assert (values.get("beta_1") is not None) == (values["optimizer"] == "adam")


def _trial_hp(trial: optuna.trial.BaseTrial) -> SweepHyperParameters:
    return SweepHyperParameters(lambda question: suggest_hp(trial, question))


# --- the hp stand-in and its suggestions (no Keras) ---------------------------------------------


def test_each_hp_call_is_the_matching_optuna_suggestion() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen_optimizers = set()
    for _ in range(40):
        trial = study.ask()
        hp = _trial_hp(trial)
        values = declare(hp)
        _check_values(values)
        assert hp.get_config()["values"] == {k: v for k, v in values.items() if v is not None}
        seen_optimizers.add(values["optimizer"])
        study.tell(trial, 0.0)
    assert seen_optimizers == {"adam", "sgd"}
    dists: dict[str, Any] = {}
    for t in study.trials:
        dists.update(t.distributions)
    D = optuna.distributions
    assert dists == {
        "units": D.IntDistribution(4, 16, step=4),  # 17 is not on the grid: KerasTuner's top
        "layers": D.IntDistribution(1, 2),
        "lr": D.FloatDistribution(1e-4, 1e-2, log=True),
        "dropout": D.FloatDistribution(0.0, 0.5, step=0.1),
        "activation": D.CategoricalDistribution(["relu", "tanh"]),
        "use_bias": D.CategoricalDistribution([False, True]),
        "optimizer": D.CategoricalDistribution(["adam", "sgd"]),
        "momentum": D.FloatDistribution(0.0, 0.9, step=0.3),
        "beta_1": D.FloatDistribution(0.8, 0.95),
    }
    assert "latent" not in dists  # hp.Fixed is recorded, not searched


def test_defaults_and_set_values_are_honoured() -> None:
    hp = SweepHyperParameters(default_value, {"units": 12, "optimizer": "sgd"})
    values = declare(hp)
    assert values == {
        "units": 12,
        "layers": 1,
        "lr": 1e-4,
        "dropout": 0.0,
        "activation": "relu",
        "use_bias": True,
        "latent": 4,
        "optimizer": "sgd",
        "momentum": 0.0,
        "beta_1": None,  # inactive: KerasTuner returns None
    }
    assert hp.get("units") == 12
    with pytest.raises(ValueError, match="inactive"):
        hp.get("beta_1")
    fixed, fit = parse_hp_assignments(["epochs=2", "units=8", "activation=tanh", "use_bias=false"])
    assert fixed == {"epochs": 2, "units": 8, "activation": "tanh", "use_bias": False}
    assert fit == {"epochs": 2, "batch_size": 32}
    assert default_direction("val_binary_accuracy") == "maximize"
    assert default_direction("val_loss") == "minimize"


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (
            lambda hp: hp.Float("d", 1e-4, 0.1, sampling="reverse_log"),
            "hp.Float('d', sampling='reverse_log')",
        ),
        (
            lambda hp: hp.Int("n", 2, 64, step=2, sampling="log"),
            "hp.Int('n', sampling='log', step=2)",
        ),
        (
            lambda hp: hp.Float("x", 0.1, 1.0, sampling="log", step=2),
            "hp.Float('x', sampling='log', step=2)",
        ),
        (lambda hp: hp.merge([]), "hp.merge is not supported"),
        (lambda hp: hp.Choice("c", [[1], [2]]), "hp.Choice('c') with list values"),
    ],
)
def test_unsupported_calls_name_themselves(call: Any, named: str) -> None:
    with pytest.raises(UnsupportedHpCall, match="^" + __import__("re").escape(named)):
        call(SweepHyperParameters(default_value))


# --- sweeps of a hypermodel -------------------------------------------------------------------


def _db_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def test_a_bad_hypermodel_fails_the_launch_in_one_line_and_stores_nothing(
    tmp_path: Path, synthetic_npz: Path
) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    optuna.create_study(study_name="other", storage=url)
    before = _db_digest(db)
    cases = [
        (f"{TINY}:unsupported", "unsupported call hp.Float('decay', sampling='reverse_log')"),
        (f"{TINY}:nope", "has no attribute 'nope'"),
        ("no_such_module_xyz:build_model", "no module named 'no_such_module_xyz'"),
        (f"{tmp_path}/missing.py:build_model", "does not exist"),
        ("build_model", "expects module:attr"),
    ]
    for ref, message in cases:
        done = run_sweep(
            "launch",
            "--hypermodel",
            ref,
            "--data",
            str(synthetic_npz),
            "--study",
            "hm",
            storage=url,
        )
        assert done.returncode != 0, ref
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (ref, done.stderr)
        assert _db_digest(db) == before
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["other"]


def _launch(url: str, ref: str, data: Path, *extra: str) -> Any:
    return run_sweep(
        "launch",
        "--hypermodel",
        ref,
        "--data",
        str(data),
        "--study",
        "hm",
        "--set",
        "epochs=1",
        "--set",
        "batch_size=64",
        "--sampler",
        "random",
        *extra,
        storage=url,
    )


def test_a_hypermodel_runs_as_a_sweep(
    storage_url: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    done = _launch(storage_url, f"{TINY}:build_model", synthetic_npz, "--n-trials", "2")
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="hm", storage=storage_url)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for t in trials:
        stored = t.user_attrs["hyperparameters"]
        _check_values(
            {
                **stored["values"],
                "momentum": stored["values"].get("momentum"),
                "beta_1": stored["values"].get("beta_1"),
            }
        )
        assert {k: stored["values"][k] for k in t.params} == t.params
        assert t.user_attrs["metrics"]["val_loss"] == t.value
        assert t.user_attrs["epochs_run"] == 1
    if storage_url.startswith("postgresql"):
        return
    # resume raises the budget; best writes a config KerasTuner rebuilds the model from
    assert run_sweep("resume", "hm", "--n-trials", "3", storage=storage_url).returncode == 0
    study = optuna.load_study(study_name="hm", storage=storage_url)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE"] * 3
    out = tmp_path / "best_hp.json"
    best = run_sweep(
        "best",
        "hm",
        "--as-hyperparameters",
        str(out),
        storage=storage_url,
        report_heavy_imports=True,
    )
    assert best.returncode == 0, best.stderr
    assert "IMPORTED" not in best.stderr  # a read command: no TensorFlow, no KerasTuner
    config = json.loads(out.read_text())
    assert config["values"] == study.best_trial.user_attrs["hyperparameters"]["values"]

    import keras_tuner

    from tests.support.hypermodels.tiny import build_model

    hp = keras_tuner.HyperParameters.from_config(config)
    assert hp.values == config["values"]
    model = build_model(hp)
    units = [layer.units for layer in model.layers if hasattr(layer, "units")]
    assert units[:-2] == [config["values"]["units"]] * config["values"]["layers"]
    assert hp.get_config()["values"] == config["values"]  # build added nothing new


def test_a_hypermodel_that_raises_fails_that_trial_and_the_sweep_goes_on(
    sqlite_url: str, synthetic_npz: Path
) -> None:
    # With random sampling and seed 4 the first trial draws explode=True, the second False.
    done = _launch(
        sqlite_url,
        f"{TINY}:TinyHyperModel",
        synthetic_npz,
        "--n-trials",
        "2",
        "--seed",
        "4",
        "--max-consecutive-failures",
        "3",
    )
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="hm", storage=sqlite_url).get_trials()
    assert [t.state.name for t in trials][:2] == ["FAIL", "COMPLETE"]
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2  # the budget counts COMPLETE
    assert trials[0].user_attrs["fail_reason"] == "RuntimeError: exploded on purpose"
    assert trials[0].params["explode"] is True and trials[1].params["explode"] is False


def test_a_worker_refuses_a_changed_hypermodel_file(
    sqlite_url: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    for name in ("tiny.py", "calls.py"):
        shutil.copy(HYPERMODELS / name, tmp_path / name)
    ref = f"{tmp_path / 'tiny.py'}:build_model"
    done = _launch(sqlite_url, ref, synthetic_npz, "--n-trials", "1", "--no-run")
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "tiny.py", "a") as f:
        f.write("\n# changed\n")
    worker = run_sweep("worker", "hm", storage=sqlite_url)
    assert worker.returncode != 0
    lines = worker.stderr.strip().splitlines()
    assert len(lines) == 1 and "SHA-256" in lines[0] and "refusing" in lines[0], worker.stderr
    assert optuna.load_study(study_name="hm", storage=sqlite_url).get_trials() == []


def test_hypermodel_errors_are_sweep_errors() -> None:
    assert issubclass(HypermodelError, ValueError)


# --- the notes' VAE as a KerasTuner HyperModel ----------------------------------------------


def _layers(model: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    out = []
    for part in (model.encoder, model.decoder):
        for layer in part.layers:
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
            out.append((type(layer).__name__, layer.output.shape, config))
    return out


def test_notes_vae_builds_the_model_a_sweep_trial_builds(synthetic_npz: Path) -> None:
    import keras_tuner

    from sweep.space import load_space
    from sweep.train.kerastuner import NotesVAE
    from sweep.train.plan import build_vae

    values = {
        "coding_size": 150,
        "focal_gamma": 1.75,
        "focal_alpha_applied": True,
        "focal_alpha": 0.4,
        "kl_beta": 0.002,
        "dataset": "balanced",
    }
    hypermodel = NotesVAE(space="notes", data=synthetic_npz)
    hp = keras_tuner.HyperParameters()
    hp.values.update(values)
    native = hypermodel.build(hp)
    assert hp.values == values
    space = load_space("notes")
    params = space.suggest(optuna.trial.FixedTrial(values))
    swept = build_vae(params, hypermodel.data.n_features)
    assert _layers(native) == _layers(swept)
    assert (native.focal_alpha, native.focal_gamma, native.loss_name) == (0.4, 1.75, "focal")
    assert float(native.kl_weight.numpy()) == float(swept.kl_weight.numpy())
    assert native.count_params() == swept.count_params()
    # and the space KerasTuner sees is the sweep's: same names, ranges, condition
    declared = {p.name: p.get_config() for p in hp.space}
    assert declared["kl_beta"]["sampling"] == "log"
    assert declared["coding_size"]["values"] == [150, 300, 400, 500]
    assert declared["focal_alpha"]["conditions"][0]["config"] == {
        "name": "focal_alpha_applied",
        "values": [True],
    }


def test_keras_tuner_runs_notes_vae_natively(synthetic_npz: Path, tmp_path: Path) -> None:
    import keras_tuner

    from sweep.train.kerastuner import NotesVAE

    hypermodel = NotesVAE(space="tiny", data=synthetic_npz)
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=hypermodel.objective,
        max_trials=1,
        directory=str(tmp_path),
        project_name="notes",
        seed=0,
    )
    tuner.search(epochs=1, verbose=0)
    (trial,) = tuner.oracle.get_best_trials(1)
    assert 0.0 <= trial.score <= 1.0
    assert set(trial.hyperparameters.values) == {
        "coding_size",
        "focal_gamma",
        "kl_beta",
        "dataset",
    }


@pytest.mark.parametrize(
    ("ref", "extra", "message"),
    [
        (
            "build_model",
            ("--objective", "val_los"),
            "--objective val_los: not a metric",
        ),
        ("wrong_shape", (), "input shape to have value 100, but received"),
        ("broken", (), "RuntimeError: build broke on purpose"),
    ],
)
def test_the_launch_checks_the_model_on_one_batch_before_any_study(
    tmp_path: Path, synthetic_npz: Path, ref: str, extra: tuple[str, ...], message: str
) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    optuna.create_study(study_name="other", storage=url)
    before = _db_digest(db)
    done = _launch(url, f"{TINY}:{ref}", synthetic_npz, "--n-trials", "3", *extra)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    if ref == "build_model":
        assert "val_loss" in lines[0]  # the metrics it does report are listed
    assert _db_digest(db) == before
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["other"]


def test_confirm_reruns_a_hypermodel_study_with_fresh_seeds(
    sqlite_url: str, synthetic_npz: Path
) -> None:
    assert (
        _launch(sqlite_url, f"{TINY}:build_model", synthetic_npz, "--n-trials", "2").returncode
        == 0
    )
    done = run_sweep("confirm", "hm", "--top", "1", "--seeds", "2", storage=sqlite_url)
    assert done.returncode == 0, done.stderr
    best = optuna.load_study(study_name="hm", storage=sqlite_url).best_trial
    runs = optuna.load_study(study_name="hm.confirm", storage=sqlite_url).get_trials()
    assert [t.state.name for t in runs] == ["COMPLETE", "COMPLETE"]
    source = best.user_attrs["hyperparameters"]["values"]
    for run in runs:
        assert run.user_attrs["hyperparameters"]["values"] == source  # the source's values
        assert run.user_attrs["metrics"]["val_loss"] == run.value
        assert math.isfinite(run.user_attrs["test_metrics"]["test.val_loss"])
    assert sorted(run.user_attrs["confirm_seed"] for run in runs) == [1000, 1001]
    shown = run_sweep("best", "hm", "--format", "json", storage=sqlite_url)
    assert shown.returncode == 0, shown.stderr
    row = next(r for r in json.loads(shown.stdout) if r["number"] == best.number)
    confirmed = row["confirmed"]
    val = confirmed["val"]["val_loss"]
    assert val["n"] == 2
    assert val["mean"] == pytest.approx(statistics.mean(r.value for r in runs))
    assert confirmed["test"]["val_loss"]["n"] == 2
