"""Sweeps end to end: the real CLI, real Keras trials, SQLite and PostgreSQL studies.

Commands run in-process (Click's runner; each trial still runs in its own child process); worker
processes, signals and the import check use real processes.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.cli import sweep_argv
from tests.support.cli import sweep_env

QUICK = ["--space", str(TINY_SPACE), "--set", "epochs=1", "--pruner", "none"]
#: ``sweep(*args, storage=URL)``: the storage URL in the environment (never on argv).
sweep = functools.partial(run_sweep, check=True)


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if t.state.name in ("COMPLETE", "PRUNED")]


def test_launch_stores_every_metric_and_best_reads_them(
    storage_url: str, synthetic_npz: Path
) -> None:
    out = sweep(
        "launch",
        *QUICK,
        "--data",
        str(synthetic_npz),
        "--study",
        "s1",
        "--n-trials",
        "3",
        storage=storage_url,
    )
    assert "3/3 done" in out.stderr
    study = load(storage_url, "s1")
    trials = finished(study)
    assert len(trials) == 3
    for trial in trials:
        metrics = trial.user_attrs["metrics"]
        assert trial.values[0] == pytest.approx(metrics["expression.auroc"])
        for key in (
            "expression.f1",
            "section.H3K9me3.count_mse",
            "section.H3K27me3.output_mse",
            "latent.active_units",
            "collapse.any",
        ):
            assert key in metrics
        assert trial.user_attrs["params_full"]["epochs"] == 1
        assert len(trial.user_attrs["history"]["kl_loss"]) == 1
        assert trial.user_attrs["seconds"] > 0
    config = study.user_attrs["sweep"]
    assert config["space"]["fixed"]["epochs"] == 1 and "overrides" not in config
    assert len(config["data_sha256"]) == 64

    best = json.loads(sweep("best", "s1", "--format", "json", storage=storage_url).stdout)
    assert [row["number"] for row in best] == [
        t.number for t in sorted(trials, key=lambda t: -t.values[0])
    ]
    for row in best:
        assert set(row) >= {"number", "state", "values", "params", "metrics"}
        assert set(row["params"]) == {"coding_size", "focal_gamma", "kl_beta", "dataset"}
    table = sweep("best", "s1", storage=storage_url).stdout
    assert "auroc" in table
    status = json.loads(sweep("status", "s1", "--format", "json", storage=storage_url).stdout)
    assert status["finished"] == 3 and status["budget"] == 3


@pytest.mark.postgres
def test_two_workers_share_one_postgres_budget(postgres_url: str, synthetic_npz: Path) -> None:
    sweep(
        "launch",
        *QUICK,
        "--data",
        str(synthetic_npz),
        "--study",
        "par",
        "--n-trials",
        "5",
        "--no-run",
        storage=postgres_url,
    )
    workers = [
        subprocess.Popen(
            sweep_argv("worker", "par", "--worker-index", str(i)),
            env=sweep_env(postgres_url),
            text=True,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=900)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = load(postgres_url, "par").get_trials()
    assert sorted(t.state.name for t in trials) == ["COMPLETE"] * 5
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers) == 5
    # Both workers ran trials (the lock does not serialise the sweep onto one worker).
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def test_sigint_then_resume_reaches_the_exact_budget(sqlite_url: str, synthetic_npz: Path) -> None:
    launch = subprocess.Popen(
        sweep_argv(
            "launch", *QUICK, "--data", str(synthetic_npz), "--study", "intr", "--n-trials", "4"
        ),
        env=sweep_env(sqlite_url),
        text=True,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # interrupt once the first trial has finished
        time.sleep(0.5)
        try:
            if finished(load(sqlite_url, "intr")):
                break
        except KeyError:
            continue
    time.sleep(1.0)
    launch.send_signal(signal.SIGINT)
    _, stderr = launch.communicate(timeout=120)
    assert launch.returncode == 130, stderr
    assert "sweep resume" in stderr.splitlines()[-1]
    done_before = len(finished(load(sqlite_url, "intr")))
    assert 1 <= done_before < 4

    sweep("resume", "intr", storage=sqlite_url)
    trials = load(sqlite_url, "intr").get_trials()
    assert len([t for t in trials if t.state.name == "COMPLETE"]) == 4
    assert len({t.number for t in trials}) == len(trials)
    for trial in trials:
        if trial.state.name == "FAIL":
            assert trial.user_attrs["fail_reason"].startswith("interrupted by SIGINT")
    again = sweep("resume", "intr", storage=sqlite_url, check=False)
    assert again.returncode == 0 and "already complete" in again.stderr  # as a worker: exit 0
    assert "sweep resume intr --n-trials N" in again.stderr
    assert load(sqlite_url, "intr").get_trials() == trials  # nothing ran, nothing changed


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruners_see_the_objective_every_epoch(
    sqlite_url: str, synthetic_npz: Path, pruner: str
) -> None:
    from sweep.run.sampling import make_pruner
    from sweep.store.study import load_config

    sweep(
        "launch",
        "--space",
        str(TINY_SPACE),
        "--set",
        "epochs=2",
        "--pruner",
        pruner,
        "--data",
        str(synthetic_npz),
        "--study",
        "pr",
        "--n-trials",
        "1",
        storage=sqlite_url,
    )
    # Five reference trials that beat every real AUROC (at most 1) at every epoch, reported
    # through the study's own pruner: enough for the median pruner to start (it waits for 5
    # completed trials) and for Hyperband's single bracket, so each new trial must be pruned.
    storage = optuna.storages.RDBStorage(sqlite_url)
    reference = optuna.load_study(
        study_name="pr", storage=storage, pruner=make_pruner(load_config(storage, "pr"))
    )
    for _ in range(5):
        trial = reference.ask()
        trial.set_user_attr("reference", True)
        for epoch in (0, 1):
            trial.report(2.0, epoch)
        trial.should_prune()
        reference.tell(trial, 2.0)
    sweep("resume", "pr", "--n-trials", "8", storage=sqlite_url)

    study = load(sqlite_url, "pr")
    real = sorted(
        (t for t in finished(study) if "reference" not in t.user_attrs), key=lambda t: t.number
    )
    assert [t.state.name for t in real] == ["COMPLETE", "PRUNED", "PRUNED"]
    for trial in real:
        assert sorted(trial.intermediate_values) == [0, 1]
        if trial.state.name == "COMPLETE":
            curve = trial.user_attrs["history"]["epoch.expression.auroc"]
            assert curve == pytest.approx(
                [trial.intermediate_values[0], trial.intermediate_values[1]]
            )
        else:
            reason = trial.user_attrs["prune_reason"]
            assert reason.startswith("pruned after epoch 2: expression.auroc="), reason
            assert "metrics" not in trial.user_attrs  # stopped before the final scoring
    artifacts = Path(sqlite_url.removeprefix("sqlite:///") + ".artifacts")
    assert any(artifacts.iterdir())  # per-trial samples of codes and reconstructions


def test_multi_objective_best_is_the_pareto_set(sqlite_url: str, synthetic_npz: Path) -> None:
    sweep(
        "launch",
        "--space",
        "notes_pareto",
        "--set",
        "encoder_units=32-16",
        "--set",
        "epochs=1",
        "--set",
        "coding_size=4",
        "--pruner",
        "none",
        "--sampler",
        "nsga2",
        "--data",
        str(synthetic_npz),
        "--study",
        "mo",
        "--n-trials",
        "3",
        storage=sqlite_url,
    )
    study = load(sqlite_url, "mo")
    best = json.loads(sweep("best", "mo", "--format", "json", storage=sqlite_url).stdout)
    assert sorted(row["number"] for row in best) == sorted(t.number for t in study.best_trials)
    for row in best:
        assert len(row["values"]) == 2
        assert row["values"][0] == pytest.approx(row["metrics"]["expression_hidden.auroc"])
        assert row["values"][1] == pytest.approx(row["metrics"]["sections.mean_auprc_lift"])


def test_gpus_start_one_worker_per_gpu(
    sqlite_url: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    """`--gpus 0,1`: one worker per id, each with its own CUDA_VISIBLE_DEVICES.

    This machine has no GPU, so a stand-in `nvidia-smi` lists two; TensorFlow then finds no
    CUDA device and trains on the CPU, which is enough to check the orchestration.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    fake.chmod(0o755)
    env_path = f"{bin_dir}:{os.environ['PATH']}"
    sweep(
        "launch",
        *QUICK,
        "--data",
        str(synthetic_npz),
        "--study",
        "gpu",
        "--n-trials",
        "2",
        "--gpus",
        "0,1",
        storage=sqlite_url,
        env={"PATH": env_path},
    )
    trials = finished(load(sqlite_url, "gpu"))
    assert len(trials) == 2
    assert sorted(t.user_attrs["cuda_visible_devices"] for t in trials) == ["0", "1"]
    missing = sweep(
        "launch",
        *QUICK,
        "--data",
        str(synthetic_npz),
        "--study",
        "gpu2",
        "--gpus",
        "0,7",
        storage=sqlite_url,
        check=False,
        env={"PATH": env_path},
    )
    assert missing.returncode == 1
    assert "GPU 7 not found; this machine has 0, 1" in missing.stderr
