"""sweep.train.metrics: hand-computed cases on tiny arrays, plus the real tiny data layout."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweep.errors import DataError
from sweep.names import EXPRESSION_METRICS
from sweep.names import SECTION_METRICS
from sweep.names import THRESHOLD_METRICS
from sweep.names import metric_names
from sweep.train.metrics import Evaluation
from sweep.train.metrics import choose_threshold
from sweep.train.metrics import evaluate
from sweep.train.metrics import symmetric_label_probe

TINY = Path(__file__).parent / "data" / "k562_exact_layout_12001_tiny.npz"


@dataclass(frozen=True)
class Section:
    name: str
    start: int
    stop: int


SECTIONS = (Section("A", 0, 6), Section("B", 6, 11), Section("expressed", 11, 12))

# 8 rows: section A (6 cols), section B (5 cols), label; both label classes present.
X = np.array(
    [
        [1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1],
        [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ],
    dtype=np.uint8,
)
Y = X[:, -1]


def layout(names: list[str], widths: list[int]) -> list[Section]:
    """Consecutive sections of these widths, in order."""
    out = []
    start = 0
    for name, width in zip(names, widths, strict=True):
        out.append(Section(name, start, start + int(width)))
        start += int(width)
    return out


def healthy_latent(n: int, k: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes with two clearly active dims and the rest near-constant."""
    rng = np.random.default_rng(seed)
    z_mean = rng.normal(size=(n, k)) * 1e-3
    z_mean[:, :2] = rng.normal(size=(n, 2))
    z_log_var = np.full((n, k), -1.0)
    return z_mean, z_log_var


def run(probs: np.ndarray, hidden: np.ndarray | None = None, **kw: Any) -> Evaluation:
    z_mean, z_log_var = healthy_latent(X.shape[0])
    if hidden is None:
        hidden = probs[:, -1]
    return evaluate(X, probs, hidden, z_mean, z_log_var, SECTIONS, **kw)


def assert_json_ready(value: Any) -> None:
    """Only dict/list/str/bool/int/float/None, no numpy types, no NaN or infinity."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_json_ready(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            assert_json_ready(item)
    else:
        assert type(value) in (str, bool, int, float, type(None)), (value, type(value))
        if type(value) is float:
            assert math.isfinite(value)


def test_perfect_predictor() -> None:
    ev = run(X.astype(np.float64))
    m = ev.metrics
    for key in ("accuracy", "f1", "precision", "recall", "auroc", "auprc"):
        assert m[f"expression.{key}"] == 1.0
    assert m["expression.mse"] == 0.0
    for name in ("A", "B"):
        assert m[f"section.{name}.output_mse"] == 0.0
        assert m[f"section.{name}.count_mse"] == 0.0
        assert m[f"section.{name}.auprc"] == 1.0
        assert m[f"section.{name}.predicted_rate"] == m[f"section.{name}.actual_rate"]
    assert m["section.A.actual_rate"] == pytest.approx(10 / 48)
    assert m["sections.mean_output_mse"] == 0.0
    assert ev.flags == ()
    assert m["collapse.any"] == 0
    assert m["collapse.n_flags"] == 0
    assert m["latent.active_units"] == 2


def test_a_section_below_the_threshold_that_ranks_its_ones_is_not_flagged() -> None:
    """A rare mark: every probability under 0.5, but its ones get the higher ones."""
    probs = np.where(X == 1, 0.4, 0.05)  # nothing crosses 0.5; the ranking is perfect
    ev = run(probs)
    m = ev.metrics
    assert m["section.A.predicted_rate"] == 0.0
    assert m["section.A.auprc_lift"] == pytest.approx(48 / 10)
    assert not any("predicted all zeros" in f for f in ev.flags), ev.flags
    # Thresholded and expected counts under their own names.
    ones = X[:, 0:6].sum(1)
    assert m["section.A.count_mse"] == pytest.approx(np.mean(ones**2.0))
    expected = probs[:, 0:6].sum(1)
    assert m["section.A.expected_count_mse"] == pytest.approx(np.mean((expected - ones) ** 2))
    assert m["section.A.expected_rate"] == pytest.approx(probs[:, 0:6].mean())
    assert m["section.A.expected_count_mse"] < m["section.A.count_mse"]


def test_all_zero_predictor() -> None:
    ev = run(np.zeros(X.shape))
    m = ev.metrics
    assert m["expression.recall"] == 0.0
    assert m["expression.precision"] == 0.0
    assert m["expression.f1"] == 0.0
    assert m["expression.accuracy"] == 0.5
    assert m["expression.mse"] == 0.5
    # Nothing predicted, so the count error is the count of ones per row.
    assert m["section.A.count_mse"] == pytest.approx(np.mean(X[:, 0:6].sum(1) ** 2.0))
    assert m["section.A.count_mse"] == pytest.approx((4 + 0 + 9 + 1 + 1 + 0 + 4 + 1) / 8)
    assert m["section.B.count_mse"] == pytest.approx((1 + 0 + 1 + 0 + 4 + 0 + 1 + 0) / 8)
    assert m["section.A.output_mse"] == pytest.approx(10 / 48)
    assert m["section.A.predicted_rate"] == 0.0
    assert "section A predicted all zeros (actual rate 0.208, AUPRC lift 1 < 1.1)" in ev.flags
    assert any(f.startswith("section B predicted all zeros") for f in ev.flags)
    assert m["collapse.constant_output"] == 1
    assert m["collapse.any"] == 1
    assert m["collapse.n_flags"] == len(ev.flags)
    assert ev.diagnostics["flags"] == list(ev.flags)


def test_constant_predictor_predicts_the_mean() -> None:
    probs = np.tile(X.mean(axis=0), (X.shape[0], 1))
    ev = run(probs)
    m = ev.metrics
    assert m["expression.auroc"] == 0.5
    assert m["expression.auprc"] == 0.5  # average precision of a constant score = base rate
    assert m["collapse.constant_output"] == 1
    assert any("predicts the mean" in f for f in ev.flags)
    assert any(f.startswith("label probability near-constant") for f in ev.flags)
    assert ev.diagnostics["output_std_mean"] == 0.0
    assert ev.diagnostics["label_probs_std"] == 0.0
    # Column means are all below 0.5, so nothing is predicted 1 anywhere.
    assert m["section.A.predicted_rate"] == 0.0
    assert m["collapse.active_units_zero"] == 0


def test_hidden_label_tells_pass_through_from_learned() -> None:
    probs = X.astype(np.float64)
    ev = run(probs, hidden=np.full(X.shape[0], 0.3))
    m = ev.metrics
    assert m["expression.auroc"] == 1.0
    assert m["expression_hidden.auroc"] == 0.5
    assert m["expression_hidden.recall"] == 0.0
    assert m["expression_hidden.mse"] == pytest.approx((4 * 0.7**2 + 4 * 0.3**2) / 8)
    assert ev.diagnostics["label_probs_hidden_std"] == 0.0
    # The full-input outputs vary, so the model is not flagged constant.
    assert m["collapse.constant_output"] == 0


def test_threshold_is_strict() -> None:
    probs = X.astype(np.float64)
    probs[:, -1] = np.where(Y == 1, 0.5, 0.1)
    assert run(probs).metrics["expression.recall"] == 0.0
    assert run(probs, threshold=0.4).metrics["expression.recall"] == 1.0


def test_active_units_counts_high_variance_dims() -> None:
    rng = np.random.default_rng(1)
    n, k = 50, 6
    z_mean = rng.normal(size=(n, k)) * 1e-3
    z_mean[:, 1] = rng.normal(size=n) * 3.0
    z_mean[:, 4] = rng.normal(size=n) * 0.5
    z_log_var = np.zeros((n, k))
    x = np.zeros((n, 3), dtype=np.uint8)
    x[: n // 2, -1] = 1
    x[::3, 0] = 1
    secs = (Section("M", 0, 2), Section("y", 2, 3))
    probs = np.clip(x + rng.uniform(-0.2, 0.2, size=x.shape), 0, 1)
    ev = evaluate(x, probs, probs[:, -1], z_mean, z_log_var, secs)
    assert ev.metrics["latent.active_units"] == 2
    assert ev.diagnostics["latent_normality"]["active"] == [False, True, False, False, True, False]
    assert ev.metrics["collapse.active_units_zero"] == 0

    collapsed = evaluate(x, probs, probs[:, -1], z_mean * 1e-2, z_log_var, secs)
    assert collapsed.metrics["latent.active_units"] == 0
    assert collapsed.metrics["collapse.active_units_zero"] == 1
    assert any(f.startswith("no active latent units") for f in collapsed.flags)
    assert collapsed.metrics["latent.mean_abs_skew"] is None
    assert collapsed.metrics["latent.normality_pvalue_min"] is None


def test_kl_per_dim_matches_formula() -> None:
    x = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.uint8)
    secs = (Section("M", 0, 2), Section("y", 2, 3))
    z_mean = np.array([[1.0, 0.0], [0.0, 2.0]])
    z_log_var = np.array([[0.0, math.log(2.0)], [0.0, -1.0]])
    ev = evaluate(x, x * 0.9 + 0.05, np.array([0.6, 0.4]), z_mean, z_log_var, secs)
    # KL(N(mu, s^2) || N(0, 1)) = 0.5 * (mu^2 + s^2 - 1 - log s^2)
    kl = [
        [0.5 * (1.0 + 1.0 - 1.0 - 0.0), 0.5 * (0.0 + 2.0 - 1.0 - math.log(2.0))],
        [0.0, 0.5 * (4.0 + math.exp(-1.0) - 1.0 + 1.0)],
    ]
    expected_per_dim = [(kl[0][0] + kl[1][0]) / 2, (kl[0][1] + kl[1][1]) / 2]
    assert ev.diagnostics["kl_per_dim"] == pytest.approx(expected_per_dim, rel=1e-12)
    assert ev.metrics["latent.kl_mean"] == pytest.approx(sum(map(sum, kl)) / 2, rel=1e-12)


def test_latent_normality_separates_gaussian_from_skewed() -> None:
    rng = np.random.default_rng(2)
    n = 400
    gauss = rng.normal(size=(n, 2))
    z_mean = np.column_stack([gauss, rng.exponential(size=n)])
    x = np.zeros((n, 2), dtype=np.uint8)
    x[::2, -1] = 1
    x[::5, 0] = 1
    secs = (Section("M", 0, 1), Section("y", 1, 2))
    probs = np.clip(x * 0.8 + 0.1, 0, 1)
    ev = evaluate(x, probs, probs[:, -1], z_mean, np.zeros_like(z_mean), secs)
    normality = ev.diagnostics["latent_normality"]
    assert abs(normality["skew"][0]) < 0.3
    assert normality["skew"][2] > 1.0  # exponential: skew 2, excess kurtosis 6
    assert normality["excess_kurtosis"][2] > 2.0
    assert normality["normaltest_pvalue"][2] < 1e-6
    assert ev.metrics["latent.normality_pvalue_min"] == normality["normaltest_pvalue"][2]
    assert ev.metrics["latent.normal_fraction"] == pytest.approx(2 / 3)
    expected_skew = np.mean(np.abs(normality["skew"]))
    assert ev.metrics["latent.mean_abs_skew"] == pytest.approx(expected_skew)


@pytest.mark.parametrize(
    "names",
    [
        ["A", "B", "expressed"],
        ["DNA_methylation", "H3K9me3", "H3K27me3", "expressed"],
        ["expressed"],
    ],
)
def test_metric_names_equal_evaluate_keys(names: list[str]) -> None:
    rng = np.random.default_rng(3)
    n = 12
    widths = [3] * (len(names) - 1) + [1]
    secs = layout(names, widths)
    x = (rng.uniform(size=(n, sum(widths))) < 0.3).astype(np.uint8)
    x[:, -1] = np.arange(n) % 2
    probs = rng.uniform(size=x.shape)
    z_mean, z_log_var = healthy_latent(n)
    ev = evaluate(x, probs, rng.uniform(size=n), z_mean, z_log_var, secs)
    expected = metric_names(names)
    assert list(ev.metrics) == expected
    assert len(set(expected)) == len(expected)
    n_marks = len(names) - 1
    fixed = 13  # sections.mean_* (3), latent.* (6), collapse.* (4)
    assert len(expected) == (
        2 * len(EXPRESSION_METRICS)
        + len(THRESHOLD_METRICS)
        + n_marks * len(SECTION_METRICS)
        + fixed
    )
    if n_marks == 0:
        assert ev.metrics["sections.mean_output_mse"] is None


def test_everything_json_ready() -> None:
    rng = np.random.default_rng(4)
    probs = rng.uniform(size=X.shape).astype(np.float32)
    for ev in (run(probs), run(np.zeros(X.shape, dtype=np.float32))):
        assert_json_ready(ev.metrics)
        assert_json_ready(ev.diagnostics)
        json.dumps({"metrics": ev.metrics, "diagnostics": ev.diagnostics}, allow_nan=False)
        assert type(ev.metrics["latent.active_units"]) is int
        assert type(ev.metrics["collapse.any"]) is int
        assert type(ev.metrics["expression.f1"]) is float


def test_real_tiny_layout_section_without_ones() -> None:
    data = np.load(TINY)
    x = data["X"]
    names = [str(s) for s in data["sections"]]
    secs = layout(names, data["section_widths"].tolist())
    assert x[:, secs[1].start : secs[1].stop].sum() == 0  # H3K9me3 has no ones here
    rng = np.random.default_rng(5)
    probs = rng.uniform(size=x.shape).astype(np.float32)
    z_mean, z_log_var = healthy_latent(x.shape[0], k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = evaluate(x, probs, probs[:, -1], z_mean, z_log_var, secs)
    assert ev.metrics["section.H3K9me3.auprc"] is None
    assert ev.metrics["section.H3K9me3.actual_rate"] == 0.0
    assert isinstance(ev.metrics["section.H3K27me3.auprc"], float)
    # No ones, so no "predicted all zeros" flag for it even though nothing is right.
    assert not any("H3K9me3" in f for f in ev.flags)
    # 16 rows: too few for the normality test, shape statistics still computed.
    assert ev.metrics["latent.normality_pvalue_min"] is None
    assert isinstance(ev.metrics["latent.mean_abs_skew"], float)
    assert list(ev.metrics) == metric_names(names)


def test_rejects_bad_inputs() -> None:
    probs = X.astype(np.float64)
    z_mean, z_log_var = healthy_latent(X.shape[0])
    hidden = probs[:, -1]
    with pytest.raises(DataError, match="probs must have"):
        evaluate(X, probs[:, :-1], hidden, z_mean, z_log_var, SECTIONS)
    with pytest.raises(DataError, match="label_probs_hidden"):
        evaluate(X, probs, hidden[:-1], z_mean, z_log_var, SECTIONS)
    with pytest.raises(DataError, match="z_log_var"):
        evaluate(X, probs, hidden, z_mean, z_log_var[:, :-1], SECTIONS)
    with pytest.raises(DataError, match="only 0 and 1"):
        evaluate(X * 2, probs, hidden, z_mean, z_log_var, SECTIONS)
    with pytest.raises(DataError, match="non-finite"):
        evaluate(X, np.full(X.shape, np.nan), hidden, z_mean, z_log_var, SECTIONS)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        evaluate(X, probs * 2, hidden, z_mean, z_log_var, SECTIONS)
    with pytest.raises(DataError, match="width 1"):
        bad = (Section("A", 0, 6), Section("expressed", 6, 12))
        evaluate(X, probs, hidden, z_mean, z_log_var, bad)
    with pytest.raises(DataError, match="stop <= 12"):
        bad = (Section("A", 0, 13), Section("expressed", 11, 12))
        evaluate(X, probs, hidden, z_mean, z_log_var, bad)
    with pytest.raises(DataError, match="threshold"):
        evaluate(X, probs, hidden, z_mean, z_log_var, SECTIONS, threshold=1.0)
    with pytest.raises(DataError, match="unique"):
        metric_names(["A", "A", "expressed"])
    with pytest.raises(DataError, match="at least one"):
        metric_names([])


def test_quick_metrics_match_their_names_and_the_full_evaluation() -> None:
    from sweep.names import quick_metric_names
    from sweep.train.metrics import quick_metrics

    rng = np.random.default_rng(3)
    sections = [Section("a", 0, 10), Section("b", 10, 30), Section("expressed", 30, 31)]
    x = (rng.random((50, 31)) < 0.3).astype(np.uint8)
    x[:25, 30], x[25:, 30] = 0, 1
    probs = rng.random((50, 31))
    hidden = rng.random(50)
    quick = quick_metrics(x, probs, hidden, sections)
    assert list(quick) == quick_metric_names(["a", "b", "expressed"])
    full = evaluate(
        x, probs, hidden, rng.normal(size=(50, 3)), rng.normal(size=(50, 3)), sections
    ).metrics
    for key, value in quick.items():
        assert value == pytest.approx(full[key]), key


# ---------------------------------------------------------------------------------------------
# the symmetric label-hidden probe


def test_symmetric_probe_hand_computed() -> None:
    # A tiny "model": the label output is 0.2 + 0.1 * (marks set) + 0.4 * (input label bit).
    def model(x: np.ndarray) -> np.ndarray:
        out = np.full(x.shape, 0.5)
        out[:, 2] = 0.2 + 0.1 * x[:, :2].sum(axis=1) + 0.4 * x[:, 2]
        return out

    rows = np.array([[0, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]], dtype=np.uint8)
    before = rows.copy()
    probe = symmetric_label_probe(model, rows, 2)
    # bit 0: 0.2 + 0.1 k; bit 1: 0.6 + 0.1 k; mean: 0.4 + 0.1 k, for k marks set.
    np.testing.assert_allclose(probe, [0.4, 0.5, 0.6, 0.6])
    np.testing.assert_array_equal(rows, before)  # the input is not modified


def test_a_bit_copier_scores_chance_on_the_symmetric_probe_but_fools_the_old_one() -> None:
    """A model that only copies the input bit, more confidently for lightly marked genes.

    Its label output always moves towards the input bit and carries nothing else; here the
    lightly marked genes happen to be the negatives. Setting the bit to 0 (the old probe) then
    ranks the positives first (AUROC 1.0), though the model never predicts the label from the
    marks. The symmetric probe scores 0.5 for every row: chance.
    """
    rng = np.random.default_rng(0)
    n, width = 40, 6
    y = np.arange(n) % 2
    marks = (rng.uniform(size=(n, width)) < np.where(y[:, None] == 1, 0.8, 0.2)).astype(np.uint8)
    rows = np.column_stack([marks, y]).astype(np.uint8)

    def copier(x: np.ndarray) -> np.ndarray:
        confidence = 1.0 - x[:, :width].sum(axis=1) / 8  # light marks: confident copy
        out = np.full(x.shape, 0.5)
        out[:, width] = 0.5 + (x[:, width] - 0.5) * confidence
        return out

    from sklearn.metrics import roc_auc_score

    old = copier(np.column_stack([marks, np.zeros(n, np.uint8)]))[:, width]
    symmetric = symmetric_label_probe(copier, rows, width)
    assert roc_auc_score(y, old) > 0.95  # fooled
    np.testing.assert_allclose(symmetric, 0.5)
    assert roc_auc_score(y, symmetric) == 0.5  # chance
    # ... while the visible label makes it look perfect, as expected of a copier.
    assert roc_auc_score(y, copier(rows)[:, width]) == 1.0


def test_a_float32_copier_ties_exactly_despite_round_off() -> None:
    """Keras outputs float32: a copier's c and 1 - c average to 0.5 only up to round-off, which
    an AUROC would rank (0.43 seen on real runs); the probe rounds it away."""
    rng = np.random.default_rng(1)
    n, width = 200, 6
    y = np.arange(n) % 2
    marks = (rng.uniform(size=(n, width)) < np.where(y[:, None] == 1, 0.7, 0.3)).astype(np.uint8)
    rows = np.column_stack([marks, y]).astype(np.uint8)
    logits = rng.normal(size=n).astype(np.float32)

    def copier(x: np.ndarray) -> np.ndarray:
        c = (1.0 / (1.0 + np.exp(-(logits + x[:, :width].sum(axis=1) / 3.7)))).astype(np.float32)
        out = np.full(x.shape, 0.5, dtype=np.float32)
        out[:, width] = np.where(x[:, width] == 1, c, np.float32(1.0) - c)
        return out

    from sklearn.metrics import roc_auc_score

    x0, x1 = rows.copy(), rows.copy()
    x0[:, width], x1[:, width] = 0, 1
    raw = 0.5 * (copier(x0)[:, width].astype(np.float64) + copier(x1)[:, width])
    assert len(np.unique(raw)) > 1  # the round-off the probe must remove
    probe = symmetric_label_probe(copier, rows, width)
    assert roc_auc_score(y, probe) == 0.5


# ---------------------------------------------------------------------------------------------
# AUPRC lift per section


def _lift_case(probs_marks: np.ndarray) -> Evaluation:
    x = np.array([[1, 0, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]], dtype=np.uint8)
    # marks: A = columns 0-1 (cells 1,0,0,0,1,1,0,0: rate 3/8); label = column 2.
    probs = np.zeros(x.shape)
    probs[:, :2] = probs_marks
    probs[:, 2] = [0.9, 0.1, 0.8, 0.2]
    return evaluate(
        x,
        probs,
        np.array([0.9, 0.1, 0.8, 0.2]),
        *healthy_latent(4),
        layout(["A", "expressed"], [2, 1]),
    )


def test_auprc_lift_hand_computed() -> None:
    # Cells in row order: x = 1 0 0 0 1 1 0 0; scores ranked: .9(1) .8(1) .7(0) .6(1) ...
    # AP = sum over positives of precision at its rank / 3 = (1/1 + 2/2 + 3/4) / 3 = 11/12.
    scores = np.array([[0.9, 0.1], [0.2, 0.3], [0.8, 0.6], [0.7, 0.05]])
    m = _lift_case(scores).metrics
    assert m["section.A.auprc"] == pytest.approx(11 / 12)
    assert m["section.A.auprc_lift"] == pytest.approx((11 / 12) / (3 / 8))
    assert m["sections.mean_auprc_lift"] == pytest.approx((11 / 12) / (3 / 8))


@pytest.mark.parametrize("value", [0.0, 0.3, 0.999])
def test_all_zeros_or_a_constant_has_no_lift(value: float) -> None:
    m = _lift_case(np.full((4, 2), value)).metrics
    assert m["section.A.auprc"] == pytest.approx(3 / 8)  # the base rate
    assert m["section.A.auprc_lift"] == pytest.approx(1.0)
    assert m["sections.mean_auprc_lift"] == pytest.approx(1.0)


def test_mean_lift_skips_sections_without_ones() -> None:
    x = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 1], [0, 0, 0, 0]], dtype=np.uint8)
    probs = np.full(x.shape, 0.4)
    probs[:, 0] = [0.9, 0.1, 0.8, 0.2]  # A: cells ranked perfectly; B (column 2): no ones
    m = evaluate(
        x,
        probs,
        np.array([0.9, 0.1, 0.8, 0.2]),
        *healthy_latent(4),
        layout(["A", "B", "expressed"], [2, 1, 1]),
    ).metrics
    assert m["section.B.auprc_lift"] is None
    assert m["section.A.auprc_lift"] == m["sections.mean_auprc_lift"]


# ---------------------------------------------------------------------------------------------
# the threshold chosen on training rows


def test_threshold_hand_computed() -> None:
    # scores .1 .3 .6 .9 with labels 0 1 0 1. Cuts: all (F1 2/3), > .2 (P 2/3, R 1: F1 0.8),
    # > .45 (F1 1/2), > .75 (F1 2/3): the best keeps .3, .6, .9, halfway between .1 and .3.
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.3, 0.6, 0.9])
    assert choose_threshold(y, s) == pytest.approx(0.2)
    assert choose_threshold(np.ones(4), s) is None


def test_f1_at_threshold_is_scored_on_the_rows_given() -> None:
    x = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.uint8)
    hidden = np.array([0.3, 0.35, 0.1, 0.25])
    m = evaluate(
        x,
        x.astype(float),
        hidden,
        *healthy_latent(4),
        layout(["A", "expressed"], [1, 1]),
        hidden_threshold=0.2,
    ).metrics
    # At 0.5 nothing is predicted 1 (F1 0); above 0.2: rows 0, 1, 3 (TP 2, FP 1): F1 0.8.
    assert m["expression_hidden.f1"] == 0.0
    assert m["expression_hidden.threshold"] == 0.2
    assert m["expression_hidden.f1_at_threshold"] == pytest.approx(0.8)
    no_threshold = evaluate(
        x, x.astype(float), hidden, *healthy_latent(4), layout(["A", "expressed"], [1, 1])
    ).metrics
    assert no_threshold["expression_hidden.threshold"] is None
    assert no_threshold["expression_hidden.f1_at_threshold"] is None


@pytest.mark.parametrize("rows", [1, 7, 300])
def test_cell_average_precision_is_scikit_learns_to_the_bit(rows: int) -> None:
    from sklearn.metrics import average_precision_score

    from sweep.train.metrics import cell_average_precision

    rng = np.random.default_rng(rows)
    labels = (rng.random((rows, 4000)) < 0.05).astype(np.uint8)
    labels.flat[0] = 1
    smooth = rng.random(labels.shape).astype(np.float32)
    tied = np.round(smooth, 2).astype(np.float32)  # many ties, zeros included
    tied.flat[1] = np.float32(-0.0)
    informative = np.clip(tied + 0.3 * labels, 0, 1).astype(np.float32)
    for scores in (smooth, tied, informative, np.zeros_like(smooth)):
        expected = average_precision_score(labels.ravel(), scores.astype(np.float64).ravel())
        assert cell_average_precision(labels.ravel(), scores.ravel()) == expected
    # inputs outside the fast path (float64, negative scores) are scikit-learn's own
    assert cell_average_precision(labels.ravel(), smooth.ravel().astype(np.float64)) == (
        average_precision_score(labels.ravel(), smooth.ravel().astype(np.float64))
    )
    shifted = smooth.ravel() - np.float32(0.5)
    assert cell_average_precision(labels.ravel(), shifted) == average_precision_score(
        labels.ravel(), shifted.astype(np.float64)
    )
    # labels of other dtypes take the fast path too, with the same result
    expected = average_precision_score(labels.ravel(), informative.astype(np.float64).ravel())
    for dtype in (bool, np.int64, np.float32, np.float64):
        assert cell_average_precision(labels.ravel().astype(dtype), informative.ravel()) == (
            expected
        )
