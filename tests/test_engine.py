"""One trial end to end on real Keras: metrics, curves, collapse diagnostics, failures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sweep.errors import TrialFailed
from sweep.params import TrialParams
from sweep.train.data import load_dataset
from sweep.train.engine import EngineOptions
from sweep.train.engine import run_trial
from sweep.train.metrics import metric_names

TINY = dict(
    encoder_units=(64, 32), coding_size=8, epochs=4, batch_size=32, reduce_lr_on_plateau=False
)


@pytest.fixture(scope="module")
def dataset(synthetic_npz: Path):  # noqa: ANN201
    return load_dataset(synthetic_npz)


def test_trial_reports_every_metric_and_curve(dataset) -> None:  # noqa: ANN001
    seen: list[int] = []
    result = run_trial(
        TrialParams(**TINY),
        dataset,
        on_epoch=lambda epoch, values: seen.append(epoch),
        options=EngineOptions(score_every_epoch=True, sample_rows=16),
    )
    names = metric_names([s.name for s in dataset.sections])
    assert set(result.metrics) == set(names)
    assert seen == [0, 1, 2, 3]
    for key in (
        "loss",
        "reconstruction_loss",
        "kl_loss",
        "val_loss",
        "val_kl_loss",
        "epoch.expression.auroc",
    ):
        assert len(result.history[key]) == 4, key
    assert 0.0 <= result.metrics["expression.auroc"] <= 1.0
    assert result.elbo_beta == pytest.approx(TrialParams(**TINY).kl_beta * 12001)
    assert result.samples["z_mean"].shape == (16, 8)
    assert result.samples["reconstruction"].shape == (16, 12001)
    json.dumps(result.to_json(), allow_nan=False)


def test_validation_split_is_untouched_by_balancing(dataset) -> None:  # noqa: ANN001
    before = dataset.val.copy()
    original = run_trial(TrialParams(**{**TINY, "epochs": 1}), dataset)
    balanced = run_trial(TrialParams(**{**TINY, "epochs": 1, "dataset": "balanced"}), dataset)
    np.testing.assert_array_equal(dataset.val, before)
    assert original.data_summary["rows"] == balanced.data_summary["rows"]


def test_same_seed_same_result(dataset) -> None:  # noqa: ANN001
    a = run_trial(TrialParams(**{**TINY, "epochs": 2}), dataset)
    b = run_trial(TrialParams(**{**TINY, "epochs": 2}), dataset)
    assert a.metrics["expression.auroc"] == pytest.approx(b.metrics["expression.auroc"], abs=1e-6)
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=1e-5)


def test_huge_beta_collapses_and_small_beta_does_not(dataset) -> None:  # noqa: ANN001
    """The honest test of the collapse diagnostics, on synthetic data with the notes' layout."""
    settings = {**TINY, "epochs": 8, "learning_rate": 3e-3}
    collapsed = run_trial(TrialParams(**settings, kl_beta=10.0), dataset)
    healthy = run_trial(TrialParams(**settings, kl_beta=1e-4), dataset)
    assert collapsed.metrics["latent.active_units"] <= 1
    assert collapsed.metrics["collapse.any"] == 1
    assert any("no active" in f or "constant" in f or "mean" in f for f in collapsed.flags)
    assert healthy.metrics["latent.active_units"] >= 4
    assert healthy.metrics["collapse.active_units_zero"] == 0
    assert healthy.metrics["collapse.constant_output"] == 0


def test_diverging_loss_fails_the_trial(dataset) -> None:  # noqa: ANN001
    with pytest.raises(TrialFailed, match="non-finite"):
        run_trial(TrialParams(**{**TINY, "learning_rate": 1e12, "loss": "bce"}), dataset)


def test_defaults_run_on_the_bundled_data() -> None:
    result = run_trial({"epochs": 1, "encoder_units": [32], "coding_size": 4})
    assert result.n_features == 20001
    assert math.isfinite(result.metrics["expression.auroc"])
