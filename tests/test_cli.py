"""The CLI's own commands for one trial and for data files, run in-process (Click's runner)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweep.names import metric_names
from sweep.train.data import file_sha256
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep

SMALL = ["--set", "encoder_units=32-16", "--set", "coding_size=4", "--epochs", "1"]
run = functools.partial(run_sweep, check=True)


def test_trial_json_has_every_metric_and_the_exact_params(synthetic_npz: Path) -> None:
    out = json.loads(run("trial", "--data", str(synthetic_npz), *SMALL, "--json").stdout)
    sections = ["DNA_methylation", "H3K9me3", "H3K27me3", "expressed"]
    assert set(out["metrics"]) == set(metric_names(sections))
    assert out["params"]["encoder_units"] == [32, 16] and out["params"]["focal_alpha"] is None
    assert out["epochs_run"] == 1 and len(out["history"]["kl_loss"]) == 1
    assert out["elbo_beta"] == out["params"]["kl_beta"] * 12001


def test_trial_table_is_the_notes_table(synthetic_npz: Path) -> None:
    text = run("trial", "--data", str(synthetic_npz), *SMALL).stdout
    for row in (
        "Expression",
        "accuracy",
        "f1",
        "precision",
        "recall",
        "Section H3K27me3",
        "count_mse",
        "output_mse",
        "active_units",
        "ELBO-scale beta",
        "f1_at_threshold",
        "auprc_lift",
        "mean_auprc_lift",
    ):
        assert row in text, row
    assert "test split" not in text


def test_trial_score_test_adds_the_test_table(synthetic_npz: Path) -> None:
    out = json.loads(
        run("trial", "--data", str(synthetic_npz), *SMALL, "--score-test", "--json").stdout
    )
    sections = ["DNA_methylation", "H3K9me3", "H3K27me3", "expressed"]
    assert list(out["test_metrics"]) == [f"test.{k}" for k in metric_names(sections)]
    assert out["data"]["rows"] == {"train": 144, "val": 48, "test": 48}
    text = run("trial", "--data", str(synthetic_npz), *SMALL, "--score-test").stdout
    assert "test split (48 rows" in text and text.count("Expression, label hidden") == 2


def test_data_synth_check_and_metrics(tmp_path: Path) -> None:
    out = tmp_path / "synthetic.npz"
    run("data", "synth", "--rows", "120", "--out", str(out), "--seed", "3")
    with np.load(out) as npz:
        assert npz["X"].shape == (120, 12001) and npz["X"].dtype == np.uint8
    summary = json.loads(run("data", "check", str(out)).stdout)
    assert summary["sha256"] == file_sha256(out)
    assert summary["n_features"] == 12001
    names = run("metrics", "--data", str(out)).stdout.split()
    assert "expression.auroc" in names and "section.H3K9me3.output_mse" in names


def test_default_worker_indices_differ_between_hosts_with_the_same_pid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from sweep import cli_options

    monkeypatch.setattr(os, "getpid", lambda: 1)  # PID 1, as in every container
    indices = set()
    for host in ("worker-a", "worker-b", "worker-c"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        indices.add(cli_options.default_worker_index())
    assert len(indices) == 3
    assert all(0 <= i < 2**31 for i in indices)


# --- exit codes: 2 for what Click's parser refuses, 1 for input sweep refuses ------------------


@pytest.fixture
def created(tmp_path: Path, synthetic_npz: Path) -> str:
    """A SQLite storage holding study ``s`` (tiny space, no trials run)."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tiny = ("--space", str(TINY_SPACE), "--data", str(synthetic_npz), "--reference", "none")
    run("launch", *tiny, "--study", "s", "--n-trials", "1", "--no-run", storage=url)
    return url


def _one_line_error(done: Any) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "internal error" not in lines[0] and not done.stdout.strip(), done
    return str(lines[0])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["status"], "Missing argument 'NAME'"),
        (["best", "s", "--bogus"], "No such option '--bogus'"),
        (["launch", "--n-trials", "0"], "'--n-trials': must be at least 1, got 0"),
        (["trials", "s", "--format", "xml"], "'xml' is not one of"),
        (["export", "s"], "Missing option '--out'"),
        (["export", "s", "1", "--trial", "2", "--out", "x"], "N is 1 but --trial is 2"),
        (["trial", "--params", "p.yaml", "--from", "s:0"], "--params and --from both"),
        (["status", "s", "--interval", "0"], "'--interval': must be a positive number"),
        (["report", "s"], "Missing option '--out'"),
        (["data", "synth", "--out", "x.npz"], "Missing option '--rows'"),
    ],
)
def test_usage_errors_exit_2(created: str, args: list[str], needle: str) -> None:
    done = run_sweep(*args, storage=created)
    assert done.returncode == 2, done
    assert needle in _one_line_error(done)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["status", "nosuch"], "nosuch"),
        (["best", "nosuch"], "nosuch"),
        (["trials", "s", "--state", "fail", "--format", "json"], ""),  # not an error: exit 0
        (["export", "s", "99", "--out", "x"], "has no trial 99"),
        (["export", "s", "--trial", "99", "--out", "x"], "has no trial 99"),
        (["best", "s", "--by", "confirmed"], "no complete confirmation run"),
        (["data", "check", "missing.npz"], "missing.npz"),
        (["trial", "--data", "missing.npz"], "missing.npz"),
    ],
)
def test_refused_input_exits_1(created: str, tmp_path: Path, args: list[str], needle: str) -> None:
    done = run_sweep(*args, storage=created, cwd=tmp_path)
    if not needle:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 1, done
    assert needle in _one_line_error(done)


def test_a_storage_without_a_database_exits_1_in_every_read_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    for args in (["status", "s"], ["best", "s"], ["trials", "s"], ["show", "s", "0"]):
        done = run_sweep(*args, storage=url)
        assert done.returncode == 1, (args, done)
        assert "no study database" in _one_line_error(done)
    assert not (tmp_path / "none.db").exists()


# --- options that do not apply to the trial kind are refused, before any study exists ---------


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--objective", "val_loss"], "'val_loss' does not exist for this data (it reports"),
        (["--objective", "expression.aurc"], "(did you mean expression.auroc?)"),
        (["--objective", "expression.threshold"], "neither side is better; pass --direction"),
        (["--direction", "minimize"], "--direction needs --objective"),
        (["--space", "notes_pareto", "--pruner", "median"], "--pruner median needs a single"),
        (["--hypermodel", "m.py:build", "--space", "tiny"], "--space applies only to the"),
        (["--hypermodel", "m.py:build", "--keep-weights", "2"], "--keep-weights applies only"),
        (["--hypermodel", "m.py:build", "--baseline", "notes"], "--baseline applies only"),
        (["--hypermodel", "m.py:build", "--reference", "logistic"], "--reference applies"),
    ],
)
def test_launch_refuses_options_its_trial_kind_ignores(
    tmp_path: Path, synthetic_npz: Path, extra: list[str], needle: str
) -> None:
    db = tmp_path / "study.db"
    args = ["launch", "--data", str(synthetic_npz), "--no-run", *extra]
    done = run_sweep(*args, storage=f"sqlite:///{db}", cwd=tmp_path)
    assert done.returncode == 1, done
    line = _one_line_error(done)
    assert needle in line, line
    assert not db.exists()  # no study, not even a database file


def test_launch_objective_refusal_points_at_sweep_metrics(tmp_path: Path) -> None:
    done = run_sweep("launch", "--objective", "val_loss", storage=f"sqlite:///{tmp_path}/s.db")
    line = _one_line_error(done)
    assert "sweep metrics" in line and "expression_hidden.*" in line
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(
    ("extra", "objective"),
    [
        (["--objective", "sections.mean_count_mse"], ["sections.mean_count_mse", "minimize"]),
        (["--objective", "expression.f1"], ["expression.f1", "maximize"]),
        (
            ["--objective", "latent.kl_mean", "--direction", "maximize"],
            ["latent.kl_mean", "maximize"],
        ),
    ],
)
def test_the_vae_optimises_the_objective_given(
    tmp_path: Path, synthetic_npz: Path, extra: list[str], objective: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    done = run_sweep(
        "launch", "--space", str(TINY_SPACE), "--data", str(synthetic_npz), "--n-trials", "1",
        "--reference", "none", "--no-run", *extra, storage=url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status = run_sweep("status", "notes", "--format", "json", storage=url)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["objectives"] == [
        {"metric": objective[0], "direction": objective[1]}
    ]


def test_hypermodel_accepts_none_for_the_vae_only_options(tmp_path: Path) -> None:
    """``--reference none`` / ``--baseline none`` / ``--keep-weights 0`` ask for nothing."""
    db = tmp_path / "study.db"
    args = ["--reference", "none", "--baseline", "none", "--keep-weights", "0"]
    done = run_sweep("launch", "--hypermodel", "absent.py:build", *args, "--no-run",
                     storage=f"sqlite:///{db}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    assert "applies only" not in _one_line_error(done)  # refused later: no such file
    assert not db.exists()


def _command_paths(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    import click

    paths = [prefix]
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            paths += _command_paths(sub, (*prefix, name))
    return paths


def test_help_texts_have_no_rst_literals() -> None:
    from sweep.cli import cli

    paths = _command_paths(cli)
    assert ("status",) in paths and ("data", "check") in paths
    for path in paths:
        shown = run_sweep(*path, "--help")
        assert shown.returncode == 0, (path, shown.stderr)
        assert "Usage:" in shown.stdout
        assert "``" not in shown.stdout, (path, shown.stdout)


def test_read_commands_take_the_one_study_when_no_name_is_given(tmp_path: Path) -> None:
    from tests.support.study_writer import write_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    write_study(url, "only", 2)
    for command in ("status", "best", "trials"):
        named = run_sweep(command, "only", storage=url)
        unnamed = run_sweep(command, storage=url)
        assert unnamed.returncode == 0, unnamed.stderr
        assert unnamed.stdout == named.stdout != ""
    write_study(url, "second", 1)
    refused = run_sweep("status", storage=url)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith("2 studies in " + url + " (only, second): name one")
    import sqlite3

    sqlite3.connect(tmp_path / "empty.db").close()  # a database without studies
    none = run_sweep("best", storage=f"sqlite:///{tmp_path / 'empty.db'}")
    assert none.returncode == 1 and "no study in" in none.stderr
