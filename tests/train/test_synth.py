"""Tests for sweep.train.synth: layout, densities, label rate, planted dependence, determinism."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from sweep.train.data import NOTES_SECTIONS
from sweep.train.data import load_dataset
from sweep.train.synth import NOTES_DENSITIES
from sweep.train.synth import NOTES_EXPRESSED_RATE
from sweep.train.synth import synthesize
from sweep.train.synth import write_synthetic

W = 4000


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    return synthesize(2000, seed=0)


def _section_sums(X: np.ndarray, widths: int = W) -> np.ndarray:
    return np.stack(
        [np.count_nonzero(X[:, k * widths : (k + 1) * widths], axis=1) for k in range(3)], axis=1
    )


def test_shape_and_dtype(big: np.ndarray) -> None:
    assert big.shape == (2000, 12001)
    assert big.dtype == np.uint8
    assert set(np.unique(big).tolist()) == {0, 1}


@pytest.mark.parametrize("seed", [0, 1])
def test_densities_match_notes(big: np.ndarray, seed: int) -> None:
    X = big if seed == 0 else synthesize(2000, seed=seed)
    for k, (name, target) in enumerate(NOTES_DENSITIES.items()):
        density = np.count_nonzero(X[:, k * W : (k + 1) * W]) / (X.shape[0] * W)
        assert abs(density / target - 1) < 0.15, (name, density, target)


def test_marks_come_in_runs_near_the_tss(big: np.ndarray) -> None:
    for k in range(3):
        block = big[:, k * W : (k + 1) * W]
        ones = np.count_nonzero(block)
        # A run starts where a 1 follows a 0; runs are far fewer than ones.
        starts = np.count_nonzero(np.diff(block, axis=1, prepend=0) == 1)
        assert ones / starts > 20 if k else ones / starts > 10
        near = np.count_nonzero(block[:, W // 2 - 1000 : W // 2 + 1000])
        assert near / ones > 0.6  # the middle half of the window holds most of the marks


def test_most_rows_lack_repressive_marks(big: np.ndarray) -> None:
    for k in (1, 2):
        empty = np.mean(big[:, k * W : (k + 1) * W].max(axis=1) == 0)
        assert empty > 0.6


def test_label_rate(big: np.ndarray) -> None:
    assert abs(big[:, -1].mean() - NOTES_EXPRESSED_RATE) < 0.03


def test_planted_dependence(big: np.ndarray) -> None:
    held_out = synthesize(1000, seed=1)
    model = LogisticRegression().fit(_section_sums(big) / 100.0, big[:, -1])
    auroc = roc_auc_score(
        held_out[:, -1], model.predict_proba(_section_sums(held_out) / 100.0)[:, 1]
    )
    assert auroc > 0.7
    assert np.all(model.coef_ < 0)  # every mark lowers the odds of expression


def test_deterministic_by_seed() -> None:
    a = synthesize(50, seed=7)
    assert np.array_equal(a, synthesize(50, seed=7))
    assert not np.array_equal(a, synthesize(50, seed=8))


def test_small_widths() -> None:
    X = synthesize(300, seed=0, widths=20)
    assert X.shape == (300, 61) and X.dtype == np.uint8
    assert 0 < np.count_nonzero(X[:, :60]) < X[:, :60].size
    assert 0 < X[:, -1].sum() < 300


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rows"):
        synthesize(0)
    with pytest.raises(ValueError, match="widths"):
        synthesize(5, widths=0)


def test_ten_thousand_rows_fast() -> None:
    start = time.perf_counter()
    X = synthesize(10_000, seed=3)
    elapsed = time.perf_counter() - start
    assert X.shape == (10_000, 12001)
    assert elapsed < 5.0


def test_write_synthetic_loads(tmp_path: Path) -> None:
    path = write_synthetic(tmp_path / "synth.npz", 100, seed=2)
    assert path == tmp_path / "synth.npz"
    data = load_dataset(path, test_fraction=0.0)  # every row in train or validation
    assert [(s.name, s.width) for s in data.sections] == list(NOTES_SECTIONS)
    assert data.train.shape == (80, 12001) and data.val.shape == (20, 12001)
    rows = np.concatenate([data.train, data.val])
    assert sorted(map(bytes, rows)) == sorted(map(bytes, synthesize(100, seed=2)))
