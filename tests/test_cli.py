"""The CLI's own commands for one trial and for data files, run in-process (Click's runner)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sweep.names import metric_names
from sweep.train.data import file_sha256
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

    from sweep import cli

    monkeypatch.setattr(os, "getpid", lambda: 1)  # PID 1, as in every container
    indices = set()
    for host in ("worker-a", "worker-b", "worker-c"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        indices.add(cli._default_worker_index())
    assert len(indices) == 3
    assert all(0 <= i < 2**31 for i in indices)
