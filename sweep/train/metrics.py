"""Validation metrics and posterior-collapse checks for one trained VAE.

:func:`evaluate` turns numpy arrays (validation rows, decoder probabilities, encoder codes) into a
flat dict of JSON-ready scalars plus diagnostics. :func:`sweep.names.metric_names` lists the same
keys without running anything (and without numpy), so a search-space objective can be checked
before any trial starts; it is re-exported here for old callers.

Conventions (they hold for every metric):

* A cell or label is *predicted 1* when its probability is strictly greater than ``threshold``
  (as Keras' ``binary_accuracy`` and ``numpy.round`` at 0.5 do).
* Every value is a plain Python ``float`` or ``int``, or ``None`` where the metric is undefined
  (no positives for an average precision, one class only for an AUROC, no active latent unit for
  the latent shape statistics, too few rows for a normality test). No NaN is ever returned.
* Rows are genes; the last section given is the label (width 1), every other one is a mark
  section.

This module imports numpy, scipy and scikit-learn only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Protocol

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score
from sklearn.metrics import average_precision_score
from sklearn.metrics import f1_score
from sklearn.metrics import precision_recall_curve
from sklearn.metrics import precision_score
from sklearn.metrics import recall_score
from sklearn.metrics import roc_auc_score

from sweep.errors import DataError
from sweep.names import ALL_ZEROS_MAX_LIFT
from sweep.names import SECTION_METRICS
from sweep.names import check_section_names
from sweep.names import predicts_all_zeros

ACTIVE_UNIT_VARIANCE = 0.01
"""A latent dim is active when the variance over rows of its ``z_mean`` exceeds this (Burda)."""
CONSTANT_STD = 1e-3
"""Outputs whose std across rows stays below this are treated as constant ("predicts the mean")."""
NORMALITY_MIN_ROWS = 20
"""Fewest rows for which the D'Agostino-Pearson test is computed (its kurtosis part needs 20)."""
NORMALITY_ALPHA = 0.05
"""A dim counts as Gaussian-looking in ``latent.normal_fraction`` when its p-value is >= this."""

MetricValue = float | int | None


class SectionLike(Protocol):
    """A named column range ``[start, stop)`` of a row (``sweep.train.data.Section`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def stop(self) -> int: ...


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` returns.

    Attributes:
        metrics: Flat scalar metrics; exactly the keys :func:`sweep.names.metric_names` lists.
        diagnostics: JSON-ready extras: ``kl_per_dim``, ``latent_variance``,
            ``latent_normality``, ``flags``, ``label_probs_std``, ``label_probs_hidden_std``,
            ``output_std_mean``, ``threshold``.
        flags: Human-readable collapse flags, empty for a healthy model.
    """

    metrics: dict[str, MetricValue]
    diagnostics: dict[str, Any]
    flags: tuple[str, ...]


def evaluate(
    x_true: np.ndarray,
    probs: np.ndarray,
    label_probs_hidden: np.ndarray,
    z_mean: np.ndarray,
    z_log_var: np.ndarray,
    sections: Sequence[SectionLike],
    *,
    threshold: float = 0.5,
    hidden_threshold: float | None = None,
) -> Evaluation:
    """Score one model on the validation rows and check it for posterior collapse.

    Expression (``expression.*`` from ``probs``' label column, ``expression_hidden.*`` from
    ``label_probs_hidden``): ``mse`` of the probability against the 0/1 label; ``accuracy``,
    ``f1``, ``precision``, ``recall`` at ``threshold`` (scikit-learn, ``zero_division=0``);
    ``auroc`` (None if the label has one class only) and ``auprc`` (average precision, None if
    the label has no ones). ``expression_hidden.threshold`` is ``hidden_threshold`` (chosen on
    the training rows, :func:`choose_threshold`) and ``expression_hidden.f1_at_threshold`` the
    F1 of ``label_probs_hidden > hidden_threshold``; both None without a threshold.

    Per mark section NAME: ``section.NAME.count_mse`` is the mean over rows of (number of cells
    predicted 1 - number of actual ones)^2 and ``expected_count_mse`` the same with the expected
    count (the row's sum of probabilities); ``output_mse`` the mean over rows and columns of
    (probability - x)^2; ``auprc`` the average precision over all cells (None if the section has
    no ones); ``auprc_lift`` that AUPRC divided by the section's rate of ones, so that all-zeros
    or any constant prediction scores exactly 1.0 and only a ranking of the cells scores above;
    ``predicted_rate``, ``expected_rate`` and ``actual_rate`` the fractions of cells predicted 1,
    the mean probability and the fraction of cells equal to 1.
    ``sections.mean_output_mse`` and ``sections.mean_count_mse`` average these over mark
    sections (None when there are none); ``sections.mean_auprc_lift`` averages the lift over
    the sections that have ones (None when none has).

    Latent: ``latent.active_units`` counts dims whose variance over rows of ``z_mean`` (ddof 0)
    exceeds 0.01 (Burda et al. 2016). ``latent.kl_mean`` is the mean over rows of
    sum_j -0.5 * (1 + log_var_j - mean_j^2 - exp(log_var_j)). The shape statistics answer "how
    Gaussian are the codes" for the *active* dims of ``z_mean`` only (inactive dims are near
    constant, so their shape is noise): ``mean_abs_skew`` is the mean of |sample skewness|,
    ``mean_excess_kurtosis`` the mean of Fisher (excess) kurtosis, both biased estimators from
    ``scipy.stats``; ``normality_pvalue_min`` is the smallest p-value of
    ``scipy.stats.normaltest`` (D'Agostino-Pearson, H0: the dim is normal) over active dims, and
    ``normal_fraction`` the fraction of active dims with p >= 0.05. All four are None without an
    active dim; the two test-based ones are also None with fewer than 20 rows.

    Collapse flags (strings in ``flags``, counted in ``collapse.n_flags``): a mark section whose
    actual rate is > 0, whose predicted rate is 0 and whose AUPRC lift is below 1.1
    (:func:`sweep.names.predicts_all_zeros`: it neither predicts nor ranks its ones); outputs
    near-constant across rows, i.e. the mean over all columns of the per-column std of ``probs``
    across rows is < 1e-3; the label probability's std across rows is < 1e-3; no active latent
    unit.
    ``collapse.constant_output`` is 1 if either near-constant flag is raised,
    ``collapse.active_units_zero`` 1 if no dim is active, ``collapse.any`` 1 if any flag is raised.

    Args:
        x_true: ``(n, d)`` 0/1 validation rows.
        probs: ``(n, d)`` decoder probabilities for the full input (posterior mean code).
        label_probs_hidden: ``(n,)`` label-hidden probe: the mean label probability with the
            label bit set to 0 and to 1 in the input (:func:`symmetric_label_probe`).
        z_mean: ``(n, k)`` encoder means.
        z_log_var: ``(n, k)`` encoder log-variances.
        sections: Column ranges in row order; the last one is the label, of width 1.
        threshold: Probability above which a cell or label is predicted 1; in (0, 1).
        hidden_threshold: The label-hidden probe's threshold chosen on the training rows.

    Returns:
        An :class:`Evaluation` whose ``metrics`` keys equal ``sweep.names.metric_names`` of the
        section names; everything in it is JSON-serialisable without a custom encoder.

    Raises:
        DataError: Shapes disagree, ``x_true`` is not 0/1, probabilities are not finite or
            outside [0, 1], codes are not finite, or the sections are malformed.
    """
    x, p, p_hidden, mu, log_var = _validated_arrays(
        x_true, probs, label_probs_hidden, z_mean, z_log_var
    )
    if not (isinstance(threshold, (int, float)) and 0.0 < float(threshold) < 1.0):
        raise DataError(f"evaluate: threshold must be a number in (0, 1), got {threshold!r}")
    threshold = float(threshold)
    _check_sections(sections, x.shape[1])
    label = sections[-1]
    marks = list(sections[:-1])

    metrics: dict[str, MetricValue] = {}
    flags: list[str] = []

    y = x[:, label.start].astype(np.int64)
    p_label = p[:, label.start]
    for prefix, scores in (("expression", p_label), ("expression_hidden", p_hidden)):
        for key, value in _expression_metrics(y, scores, threshold).items():
            metrics[f"{prefix}.{key}"] = value
    metrics["expression_hidden.threshold"] = hidden_threshold
    metrics["expression_hidden.f1_at_threshold"] = (
        None
        if hidden_threshold is None
        else _finite(f1_score(y, (p_hidden > hidden_threshold).astype(np.int64), zero_division=0))
    )

    output_mses: list[float] = []
    count_mses: list[float] = []
    lifts: list[float] = []
    for section in marks:
        values = _section_metrics(
            x[:, section.start : section.stop], p[:, section.start : section.stop], threshold
        )
        for key in SECTION_METRICS:
            metrics[f"section.{section.name}.{key}"] = values[key]
        output_mses.append(values["output_mse"])
        count_mses.append(values["count_mse"])
        if values["auprc_lift"] is not None:
            lifts.append(values["auprc_lift"])
        if predicts_all_zeros(
            values["predicted_rate"], values["actual_rate"], values["auprc_lift"]
        ):
            lift = values["auprc_lift"]
            flags.append(
                f"section {section.name} predicted all zeros "
                f"(actual rate {values['actual_rate']:.3g}, AUPRC lift "
                f"{'n/a' if lift is None else format(lift, '.3g')} < {ALL_ZEROS_MAX_LIFT:g})"
            )
    metrics["sections.mean_output_mse"] = _mean_or_none(output_mses)
    metrics["sections.mean_count_mse"] = _mean_or_none(count_mses)
    metrics["sections.mean_auprc_lift"] = _mean_or_none(lifts)

    latent_metrics, latent_diag = _latent_metrics(mu, log_var)
    for key, value in latent_metrics.items():
        metrics[f"latent.{key}"] = value

    output_std_mean = float(np.mean(np.std(p, axis=0)))
    label_std = float(np.std(p_label))
    constant = False
    if output_std_mean < CONSTANT_STD:
        constant = True
        flags.append(
            f"outputs near-constant across rows (mean per-column std {output_std_mean:.3g} "
            f"< {CONSTANT_STD:g}): predicts the mean"
        )
    if label_std < CONSTANT_STD:
        constant = True
        flags.append(
            f"label probability near-constant across rows (std {label_std:.3g} < {CONSTANT_STD:g})"
        )
    active = int(latent_metrics["active_units"] or 0)
    if active == 0:
        max_var = float(np.max(np.var(mu, axis=0)))
        flags.append(
            f"no active latent units (largest variance of z_mean across rows {max_var:.3g} "
            f"<= {ACTIVE_UNIT_VARIANCE:g})"
        )
    metrics["collapse.active_units_zero"] = int(active == 0)
    metrics["collapse.constant_output"] = int(constant)
    metrics["collapse.n_flags"] = len(flags)
    metrics["collapse.any"] = int(bool(flags))

    diagnostics: dict[str, Any] = {
        **latent_diag,
        "flags": list(flags),
        "label_probs_std": label_std,
        "label_probs_hidden_std": float(np.std(p_hidden)),
        "output_std_mean": output_std_mean,
        "threshold": threshold,
    }
    return Evaluation(metrics=metrics, diagnostics=diagnostics, flags=tuple(flags))


def quick_metrics(
    x_true: np.ndarray,
    probs: np.ndarray,
    label_probs_hidden: np.ndarray,
    sections: Sequence[SectionLike],
    *,
    threshold: float = 0.5,
) -> dict[str, MetricValue]:
    """The cheap subset of :func:`evaluate` for per-epoch scoring (pruning, curves).

    Returns ``expression.*``, ``expression_hidden.*``, ``section.NAME.count_mse``,
    ``section.NAME.output_mse`` and ``sections.mean_*`` with the same definitions as
    :func:`evaluate`; it skips the per-cell AUPRC (a sort of every cell) and the latent
    statistics, which dominate the cost on wide rows.
    """
    x = np.asarray(x_true)
    p = np.asarray(probs)
    _check_sections(sections, x.shape[1])
    label = sections[-1]
    y = x[:, label.start].astype(np.int64)
    metrics: dict[str, MetricValue] = {}
    scores = (("expression", p[:, label.start]), ("expression_hidden", label_probs_hidden))
    for prefix, score in scores:
        for key, value in _expression_metrics(y, np.asarray(score, np.float64), threshold).items():
            metrics[f"{prefix}.{key}"] = value
    output_mses, count_mses = [], []
    for section in sections[:-1]:
        values = _section_metrics(
            x[:, section.start : section.stop],
            p[:, section.start : section.stop],
            threshold,
            with_auprc=False,
        )
        for key in ("count_mse", "output_mse"):
            metrics[f"section.{section.name}.{key}"] = values[key]
        output_mses.append(values["output_mse"])
        count_mses.append(values["count_mse"])
    metrics["sections.mean_output_mse"] = _mean_or_none(output_mses)
    metrics["sections.mean_count_mse"] = _mean_or_none(count_mses)
    return metrics


#: Decimals the label-hidden probe is rounded to (:func:`symmetric_label_probe`).
PROBE_DECIMALS = 6


def symmetric_label_probe(
    reconstruct: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, label_column: int
) -> np.ndarray:
    """The label-hidden probe: the mean label probability with the bit set to 0 and to 1.

    Both classes are treated alike: every row is decoded once with its true bit and once with
    the other, so the probe is a function of the marks only, and a model that merely copies the
    input bit (however confidently) scores exactly 0.5 for every row. Setting the bit to 0 only
    would leave every negative's input unchanged and change every positive's.

    Args:
        reconstruct: Rows (``uint8``) to decoder probabilities of the same shape.
        rows: ``(n, d)`` 0/1 rows; not modified.
        label_column: Index of the label bit.

    Returns:
        ``(n,)`` float64 probabilities.
    """
    return _probe(*_bit_passes(reconstruct, rows, label_column), label_column)


def reconstruction_and_probe(
    reconstruct: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, label_column: int
) -> tuple[np.ndarray, np.ndarray]:
    """``reconstruct(rows)`` and :func:`symmetric_label_probe` of ``rows``, in two passes.

    Every row's own input is one of the probe's two (its bit is 0 or 1), so its reconstruction
    is taken from that pass instead of decoding the rows a third time. The passes keep the rows'
    order and batches, so the result equals ``reconstruct(rows)``.

    Returns:
        The ``(n, d)`` reconstruction (as ``reconstruct`` returns it) and the ``(n,)`` float64
        probe.
    """
    off, on = _bit_passes(reconstruct, rows, label_column)
    bit_set = np.asarray(rows)[:, label_column] == 1
    return np.where(bit_set[:, None], on, off), _probe(off, on, label_column)


def _bit_passes(
    reconstruct: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, label_column: int
) -> tuple[np.ndarray, np.ndarray]:
    """``reconstruct`` of ``rows`` with the label bit set to 0, then to 1."""
    x = np.array(rows, copy=True)
    x[:, label_column] = 0
    off = np.asarray(reconstruct(x))
    x[:, label_column] = 1
    return off, np.asarray(reconstruct(x))


def _probe(off: np.ndarray, on: np.ndarray, label_column: int) -> np.ndarray:
    """The probe of two full reconstructions (label bit 0, then 1)."""
    return label_hidden_probe(off[:, label_column], on[:, label_column])


def label_hidden_probe(label_off: np.ndarray, label_on: np.ndarray) -> np.ndarray:
    """The label-hidden probe from the label probabilities with the bit at 0 and at 1.

    Their mean in float64, rounded to :data:`PROBE_DECIMALS`; what
    :func:`symmetric_label_probe` returns, for a model that decodes the label alone
    (``sweep.train.model.VAE.label_outputs``).
    """
    # Rounded to 1e-6, about float32's precision: a copier whose confidence c varies with the
    # marks outputs c and 1 - c, whose float32 mean is 0.5 only up to round-off, and an AUROC
    # would rank that noise (0.43 seen) instead of scoring the tie it is.
    mean = 0.5 * (np.asarray(label_off, np.float64) + np.asarray(label_on, np.float64))
    return np.round(mean, PROBE_DECIMALS)


def label_metrics(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    threshold: float = 0.5,
    chosen_threshold: float | None = None,
) -> dict[str, MetricValue]:
    """The expression metrics of any score of the label, as :func:`evaluate` reports them.

    Keys (without a prefix): ``mse``, ``accuracy``, ``f1``, ``precision``, ``recall`` (at
    ``threshold``), ``auroc``, ``auprc``, ``threshold`` (``chosen_threshold``, picked on the
    training rows by :func:`choose_threshold`) and ``f1_at_threshold`` (None without one): the
    same definitions as ``expression_hidden.*``, so another model's scores (the supervised
    reference, say) compare key by key with a trial's.

    Raises:
        DataError: ``labels`` is not 0/1, or ``scores`` is not finite in [0, 1] of its length.
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not np.isin(y, (0, 1)).all():
        raise DataError("label_metrics: labels must hold only 0 and 1")
    if s.shape != y.shape or not np.isfinite(s).all() or (s.size and (s.min() < 0 or s.max() > 1)):
        raise DataError(f"label_metrics: scores must be {y.size} finite probabilities in [0, 1]")
    out = _expression_metrics(y, s, float(threshold))
    out["threshold"] = chosen_threshold
    out["f1_at_threshold"] = (
        None
        if chosen_threshold is None
        else _finite(f1_score(y, (s > chosen_threshold).astype(np.int64), zero_division=0))
    )
    return out


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """The threshold that maximises F1 of ``scores > threshold`` against ``labels``.

    Called with the training rows only. Among scikit-learn's ``precision_recall_curve`` cuts
    (``score >= t``), the one with the highest F1 wins (ties: the lowest cut); the threshold
    returned is halfway between that cut and the next lower score (0 below the lowest), so that
    the strict convention of this module keeps exactly the same training rows positive.

    Returns:
        The threshold, or None when ``labels`` has one class only.
    """
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0 < int(y.sum()) < y.size:
        return None
    precision, recall, cuts = precision_recall_curve(y, s)
    precision, recall = precision[: cuts.size], recall[: cuts.size]
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0
    )
    cut = float(cuts[int(np.argmax(f1))])
    below = s[s < cut]
    lower = float(below.max()) if below.size else 0.0
    return 0.5 * (cut + lower)


def _validated_arrays(
    x_true: np.ndarray,
    probs: np.ndarray,
    label_probs_hidden: np.ndarray,
    z_mean: np.ndarray,
    z_log_var: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(x_true)
    p = np.asarray(probs)
    p_hidden = np.asarray(label_probs_hidden)
    mu = np.asarray(z_mean, dtype=np.float64)
    log_var = np.asarray(z_log_var, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise DataError(f"evaluate: x_true must be a non-empty 2-D array, got shape {x.shape}")
    n = x.shape[0]
    if p.shape != x.shape:
        raise DataError(f"evaluate: probs must have x_true's shape {x.shape}, got {p.shape}")
    if p_hidden.shape != (n,):
        raise DataError(
            f"evaluate: label_probs_hidden must have shape ({n},), got {p_hidden.shape}"
        )
    if mu.ndim != 2 or mu.shape[0] != n or mu.shape[1] < 1:
        raise DataError(f"evaluate: z_mean must have shape ({n}, k) with k >= 1, got {mu.shape}")
    if log_var.shape != mu.shape:
        raise DataError(
            f"evaluate: z_log_var must have z_mean's shape {mu.shape}, got {log_var.shape}"
        )
    if not np.isin(x, (0, 1)).all():
        raise DataError("evaluate: x_true must hold only 0 and 1")
    for name, arr in (("probs", p), ("label_probs_hidden", p_hidden)):
        if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
            raise DataError(f"evaluate: {name} must be finite numbers, found non-finite values")
        if arr.min() < 0.0 or arr.max() > 1.0:
            raise DataError(
                f"evaluate: {name} must lie in [0, 1], found range "
                f"[{float(arr.min()):.6g}, {float(arr.max()):.6g}]"
            )
    for name, arr in (("z_mean", mu), ("z_log_var", log_var)):
        if not np.isfinite(arr).all():
            raise DataError(f"evaluate: {name} must be finite, found non-finite values")
    return x, p, p_hidden.astype(np.float64), mu, log_var


def _check_sections(sections: Sequence[SectionLike], width: int) -> None:
    check_section_names([str(s.name) for s in sections])
    for s in sections:
        if not (0 <= s.start < s.stop <= width):
            raise DataError(
                f"sections: {s.name} must satisfy 0 <= start < stop <= {width}, "
                f"got start={s.start}, stop={s.stop}"
            )
    label = sections[-1]
    if label.stop - label.start != 1:
        raise DataError(
            f"sections: the last section ({label.name}) is the label and must have width 1, "
            f"got {label.stop - label.start}"
        )


def _expression_metrics(
    y: np.ndarray, scores: np.ndarray, threshold: float
) -> dict[str, MetricValue]:
    pred = (scores > threshold).astype(np.int64)
    both_classes = 0 < int(y.sum()) < y.size
    return {
        "mse": _finite(np.mean((scores - y) ** 2)),
        "accuracy": _finite(accuracy_score(y, pred)),
        "f1": _finite(f1_score(y, pred, zero_division=0)),
        "precision": _finite(precision_score(y, pred, zero_division=0)),
        "recall": _finite(recall_score(y, pred, zero_division=0)),
        "auroc": _finite(roc_auc_score(y, scores)) if both_classes else None,
        "auprc": _finite(average_precision_score(y, scores)) if y.any() else None,
    }


def _section_metrics(
    x: np.ndarray, p: np.ndarray, threshold: float, *, with_auprc: bool = True
) -> dict[str, Any]:
    x64 = x.astype(np.float64)
    p64 = p.astype(np.float64)
    pred = p64 > threshold
    actual_counts = x.sum(axis=1, dtype=np.int64)
    count_err = pred.sum(axis=1, dtype=np.int64) - actual_counts
    expected_err = p64.sum(axis=1) - actual_counts
    has_ones = bool(x.any())
    auprc = lift = None
    actual_rate = float(x64.mean())
    if has_ones and with_auprc:
        auprc = _finite(cell_average_precision(x.ravel(), p.ravel()))
        lift = None if auprc is None else auprc / actual_rate
    return {
        "count_mse": float(np.mean(count_err.astype(np.float64) ** 2)),
        "expected_count_mse": float(np.mean(expected_err**2)),
        "output_mse": float(np.mean((p64 - x64) ** 2)),
        "auprc": auprc,
        "auprc_lift": lift,
        "predicted_rate": float(pred.mean()),
        "expected_rate": float(p64.mean()),
        "actual_rate": actual_rate,
    }


def cell_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn's ``average_precision_score(labels, scores)``, the same float, faster.

    For 0/1 ``labels`` and non-negative float32 ``scores`` (decoder probabilities over every
    cell of a section: millions), one ``sort`` of packed keys (the score's bits, then the label)
    replaces scikit-learn's stable ``argsort`` and its input checks; the curve and the sum
    are then computed exactly as scikit-learn does (``precision_recall_curve``, then
    ``-sum(diff(recall) * precision[:-1])``), on the same distinct thresholds in the same
    order, so the result is bit-for-bit the same. Other inputs go to scikit-learn.
    """
    y = np.asarray(labels).ravel()
    s = np.asarray(scores).ravel()
    if (
        s.dtype != np.float32
        or y.size != s.size
        or y.size == 0
        or not np.all(s >= 0)  # also False for NaN
        or not np.all(np.isfinite(s))
        or not np.all((y == 0) | (y == 1))
        or not y.any()
    ):
        return float(average_precision_score(y, np.asarray(s, dtype=np.float64)))
    # Finite non-negative float32 scores have bit patterns below 2**31, ordered as the scores:
    # (bits << 1) | label fits in 32 bits.
    bits = (s + np.float32(0.0)).view(np.uint32)  # -0.0 becomes 0.0
    keys = (bits << np.uint32(1)) | y.astype(np.uint32)
    keys.sort()
    keys = keys[::-1]  # descending scores, as scikit-learn sorts them
    score_bits = keys >> np.uint32(1)
    distinct = np.nonzero(score_bits[1:] != score_bits[:-1])[0]
    threshold_idxs = np.concatenate([distinct, np.asarray([keys.size - 1])])
    positives = (keys & np.uint32(1)).astype(np.float64)
    tps = np.cumsum(positives, dtype=np.float64)[threshold_idxs]
    fps = 1 + threshold_idxs.astype(np.float64) - tps
    ps = tps + fps
    precision = np.where(ps != 0, np.divide(tps, ps), 0.0)
    recall = tps / tps[-1]
    precision = np.concatenate((np.flip(precision), np.asarray([1.0])))
    recall = np.concatenate((np.flip(recall), np.asarray([0.0])))
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def _latent_metrics(
    mu: np.ndarray, log_var: np.ndarray
) -> tuple[dict[str, MetricValue], dict[str, Any]]:
    n, k = mu.shape
    kl = -0.5 * (1.0 + log_var - mu**2 - np.exp(log_var))
    variance = np.var(mu, axis=0)
    active = variance > ACTIVE_UNIT_VARIANCE

    # Shape statistics for every dim whose spread is meaningfully above rounding noise.
    scale = np.maximum(1.0, np.abs(np.mean(mu, axis=0)))
    shaped = (np.sqrt(variance) > 1e-8 * scale) & (n >= 3)
    skew = np.full(k, np.nan)
    kurt = np.full(k, np.nan)
    pvalue = np.full(k, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if shaped.any():
            cols = mu[:, shaped]
            skew[shaped] = stats.skew(cols, axis=0, bias=True)
            kurt[shaped] = stats.kurtosis(cols, axis=0, fisher=True, bias=True)
            if n >= NORMALITY_MIN_ROWS:
                pvalue[shaped] = stats.normaltest(cols, axis=0).pvalue

    sel = active & shaped
    metrics: dict[str, MetricValue] = {
        "active_units": int(active.sum()),
        "kl_mean": _finite(np.mean(kl.sum(axis=1))),
        "mean_abs_skew": _finite(np.mean(np.abs(skew[sel]))) if sel.any() else None,
        "mean_excess_kurtosis": _finite(np.mean(kurt[sel])) if sel.any() else None,
        "normality_pvalue_min": None,
        "normal_fraction": None,
    }
    if sel.any() and n >= NORMALITY_MIN_ROWS:
        metrics["normality_pvalue_min"] = _finite(np.min(pvalue[sel]))
        metrics["normal_fraction"] = float(np.mean(pvalue[sel] >= NORMALITY_ALPHA))
    diagnostics = {
        "kl_per_dim": [_finite(v) for v in kl.mean(axis=0)],
        "latent_variance": [_finite(v) for v in variance],
        "latent_normality": {
            "of": "z_mean, per latent dim, over validation rows",
            "active": [bool(a) for a in active],
            "skew": [_finite(v) for v in skew],
            "excess_kurtosis": [_finite(v) for v in kurt],
            "normaltest_pvalue": [_finite(v) for v in pvalue],
        },
    }
    return metrics, diagnostics


def _finite(value: Any) -> float | None:
    out = float(value)
    return out if math.isfinite(out) else None


def _mean_or_none(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None
