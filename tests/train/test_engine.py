"""One trial end to end on real Keras: metrics, curves, collapse diagnostics, failures."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from sweep.errors import TrialFailed
from sweep.names import metric_names
from sweep.params import TrialParams
from sweep.train.data import load_dataset
from sweep.train.engine import EngineOptions
from sweep.train.engine import run_trial

TINY = dict(
    encoder_units=(64, 32), coding_size=8, epochs=4, batch_size=32, reduce_lr_on_plateau=False
)


@pytest.fixture(scope="module")
def dataset(synthetic_npz: Path):  # noqa: ANN201
    # Two splits only: these tests measure training on every non-validation row (the test split
    # has its own tests below).
    return load_dataset(synthetic_npz, test_fraction=0.0)


def test_trial_reports_every_metric_and_curve(dataset) -> None:  # noqa: ANN001
    seen: list[int] = []
    result = run_trial(
        TrialParams(**TINY),
        dataset,
        on_epoch=lambda epoch, values: seen.append(epoch),
        options=EngineOptions(score_every_epoch=True, sample_rows=len(dataset.val)),
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
    # The reported expression metrics are those of the validation label column against its
    # reconstruction: recompute them from the returned samples (every validation row here;
    # probabilities rounded to float16, hence the tolerances).
    samples = result.samples
    np.testing.assert_array_equal(samples["x"], dataset.val)
    label = dataset.label_column
    y, p = samples["x"][:, label], samples["reconstruction"][:, label].astype(np.float64)
    assert result.metrics["expression.auroc"] == pytest.approx(roc_auc_score(y, p), abs=0.02)
    assert result.metrics["expression.mse"] == pytest.approx(np.mean((p - y) ** 2), abs=1e-3)
    assert result.history["epoch.expression.auroc"][-1] == pytest.approx(
        result.metrics["expression.auroc"], abs=1e-9
    )
    assert result.elbo_beta == pytest.approx(TrialParams(**TINY).kl_beta * 12001)
    assert samples["z_mean"].shape == (len(dataset.val), 8)
    assert samples["reconstruction"].shape == (len(dataset.val), 12001)
    json.dumps(result.to_json(), allow_nan=False)


def test_balancing_equalises_the_training_classes_only(dataset) -> None:  # noqa: ANN001
    label = dataset.label_column
    train_before, val_before = dataset.train.copy(), dataset.val.copy()
    rows = dataset.training_rows("balanced", 0)
    labels = rows[:, label]
    ones = int(labels.sum())
    assert 0 < ones == len(rows) - ones
    minority = min(
        int(train_before[:, label].sum()), len(train_before) - int(train_before[:, label].sum())
    )
    assert ones == minority
    # Every balanced row is a training row: as a multiset (rows repeat), a subset of the split.
    drawn = Counter(r.tobytes() for r in rows)
    available = Counter(r.tobytes() for r in train_before)
    assert all(count <= available[key] for key, count in drawn.items())
    # Deterministic per seed, different across seeds; the original split is the training split.
    np.testing.assert_array_equal(dataset.training_rows("balanced", 0), rows)
    assert not np.array_equal(dataset.training_rows("balanced", 1), rows)
    np.testing.assert_array_equal(dataset.training_rows("original", 0), train_before)
    # Neither split is modified, and a balanced trial scores on the same validation rows.
    np.testing.assert_array_equal(dataset.train, train_before)
    np.testing.assert_array_equal(dataset.val, val_before)
    result = run_trial(
        TrialParams(**{**TINY, "epochs": 1, "dataset": "balanced"}),
        dataset,
        options=EngineOptions(sample_rows=len(dataset.val)),
    )
    np.testing.assert_array_equal(result.samples["x"], val_before)
    np.testing.assert_array_equal(dataset.val, val_before)


def test_same_seed_same_result(dataset) -> None:  # noqa: ANN001
    a = run_trial(TrialParams(**{**TINY, "epochs": 2}), dataset)
    b = run_trial(TrialParams(**{**TINY, "epochs": 2}), dataset)
    assert a.metrics["expression.auroc"] == pytest.approx(b.metrics["expression.auroc"], abs=1e-6)
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=1e-5)


def test_huge_beta_collapses_and_small_beta_does_not(dataset) -> None:  # noqa: ANN001
    """The honest test of the collapse diagnostics, on synthetic data with the notes' layout."""
    settings = {**TINY, "epochs": 8, "learning_rate": 3e-3, "dataset": "original"}
    collapsed = run_trial(TrialParams(**settings, kl_beta=10.0), dataset)
    healthy = run_trial(TrialParams(**settings, kl_beta=1e-4), dataset)
    assert collapsed.metrics["latent.active_units"] <= 1
    assert collapsed.metrics["collapse.any"] == 1
    assert any("no active" in f or "constant" in f or "mean" in f for f in collapsed.flags)
    assert healthy.metrics["latent.active_units"] >= 4
    assert healthy.metrics["collapse.active_units_zero"] == 0
    assert healthy.metrics["collapse.constant_output"] == 0
    # The synthetic label is planted from the marks near the TSS, so a healthy model predicts it
    # from the marks alone (label bit hidden) clearly better than chance (0.73 at seed 0; 0.75
    # and 0.82 at seeds 1 and 2).
    assert healthy.metrics["expression_hidden.auroc"] > 0.65


def test_diverging_loss_fails_the_trial(dataset) -> None:  # noqa: ANN001
    with pytest.raises(TrialFailed, match="non-finite"):
        run_trial(TrialParams(**{**TINY, "learning_rate": 1e12, "loss": "bce"}), dataset)


def test_defaults_run_on_the_bundled_data() -> None:
    result = run_trial({"epochs": 1, "encoder_units": [32], "coding_size": 4})
    assert result.n_features == 20001
    assert math.isfinite(result.metrics["expression.auroc"])


# ---------------------------------------------------------------------------------------------
# the test split, the threshold and --score-test


@pytest.fixture(scope="module")
def split_files(synthetic_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three files with the same train rows: as split, test rows corrupted, val rows corrupted."""
    data = load_dataset(synthetic_npz)
    assert data.test is not None
    folder = tmp_path_factory.mktemp("split")
    sections = np.array([s.name for s in data.sections])
    widths = np.array([s.width for s in data.sections])

    def corrupt(rows: np.ndarray) -> np.ndarray:
        out = rows.copy()
        out[:, :-1] = 1 - out[:, :-1]  # every mark flipped; labels kept
        return out

    variants = {
        "base": (data.val, data.test),
        "test_corrupted": (data.val, corrupt(data.test)),
        "val_corrupted": (corrupt(data.val), data.test),
    }
    paths = {}
    for name, (val, test) in variants.items():
        paths[name] = folder / f"{name}.npz"
        np.savez(
            paths[name],
            X_train=data.train,
            X_val=val,
            X_test=test,
            sections=sections,
            section_widths=widths,
        )
    return paths


def test_test_rows_never_reach_a_trial(split_files: dict[str, Path]) -> None:
    params = TrialParams(**{**TINY, "epochs": 2})
    options = EngineOptions(score_test=True)
    base = run_trial(params, load_dataset(split_files["base"]), options=options)
    corrupted = run_trial(params, load_dataset(split_files["test_corrupted"]), options=options)
    # Training, callbacks, per-epoch scores and every validation metric are identical ...
    assert corrupted.metrics == base.metrics
    assert corrupted.history == base.history
    # ... while the test split itself is scored, with the same keys, prefixed.
    names = metric_names([s.name for s in load_dataset(split_files["base"]).sections])
    assert list(base.test_metrics) == [f"test.{k}" for k in names]
    assert corrupted.test_metrics != base.test_metrics
    assert base.to_json()["test_metrics"] == base.test_metrics
    assert "test_metrics" not in run_trial(params, load_dataset(split_files["base"])).to_json()


def test_the_threshold_is_chosen_on_training_rows_only(split_files: dict[str, Path]) -> None:
    params = TrialParams(**{**TINY, "epochs": 2})
    base = run_trial(params, load_dataset(split_files["base"]))
    other = run_trial(params, load_dataset(split_files["val_corrupted"]))
    threshold = base.metrics["expression_hidden.threshold"]
    assert threshold is not None and 0.0 < threshold < 1.0
    assert other.metrics["expression_hidden.threshold"] == threshold
    assert other.metrics["sections.mean_output_mse"] != base.metrics["sections.mean_output_mse"]
    f1 = base.metrics["expression_hidden.f1_at_threshold"]
    assert f1 is not None and 0.0 <= f1 <= 1.0
