"""Metric names: the keys a trial reports, listed without training or scoring anything.

:func:`metric_names` and :func:`quick_metric_names` give exactly the keys
:func:`sweep.train.metrics.evaluate` and :func:`sweep.train.metrics.quick_metrics` fill, so a
search space's objective can be checked, and per-epoch values named, in a process that never
loads numpy, scikit-learn, scipy or TensorFlow (the worker's parent, the CLI).

This module imports only the standard library (and :mod:`sweep.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sweep.errors import DataError

EXPRESSION_METRICS = ("mse", "accuracy", "f1", "precision", "recall", "auroc", "auprc")
"""Expression metrics, under ``expression.`` (label visible) and ``expression_hidden.`` (the
symmetric label-hidden probe: the mean of the outputs with the label bit set to 0 and to 1)."""
THRESHOLD_METRICS = ("threshold", "f1_at_threshold")
"""``expression_hidden.`` only: the threshold maximising the probe's F1 on the training rows, and
the validation F1 at it (``f1`` is at 0.5, as in the notes)."""
SECTION_METRICS = (
    "count_mse",
    "expected_count_mse",
    "output_mse",
    "auprc",
    "auprc_lift",
    "predicted_rate",
    "expected_rate",
    "actual_rate",
)
"""Per mark section; ``auprc_lift`` is the AUPRC divided by the section's rate of ones (1.0: no
better than all zeros or any constant). ``count_mse`` and ``predicted_rate`` count the cells
thresholded to 1 (the notes' "count MSE"); ``expected_count_mse`` and ``expected_rate`` use the
expected counts (sums of probabilities), which a rare mark's well-ranked outputs get right
while staying below any threshold."""
ALL_ZEROS_MAX_LIFT = 1.1
"""A section "predicts all zeros" only if no cell crosses the threshold *and* its AUPRC lift is
below this: the model ranks its ones within 10 % of chance, too. A rare mark (H3K9me3, rate
0.005 on the bundled data) is all below 0.5 in a healthy model, whose ranking of it still lifts
AUPRC to 1.3-1.4; collapsed demo trials (no active unit) score 1.09-1.17 on their rare marks."""


def predicts_all_zeros(
    predicted_rate: float | None, actual_rate: float | None, auprc_lift: float | None
) -> bool:
    """The collapse rule for one mark section (see :data:`ALL_ZEROS_MAX_LIFT`).

    True when the section has ones, none is predicted at the threshold, and the outputs do not
    rank the ones either (lift below :data:`ALL_ZEROS_MAX_LIFT`, or unknown).
    """
    if predicted_rate != 0 or not actual_rate:
        return False
    return auprc_lift is None or auprc_lift < ALL_ZEROS_MAX_LIFT
LATENT_METRICS = (
    "active_units",
    "kl_mean",
    "mean_abs_skew",
    "mean_excess_kurtosis",
    "normality_pvalue_min",
    "normal_fraction",
)
COLLAPSE_METRICS = ("active_units_zero", "constant_output", "n_flags", "any")
SECTIONS_SUMMARY = ("sections.mean_output_mse", "sections.mean_count_mse")
"""Keys averaging the per-section values over every mark section (also measured per epoch)."""
SECTIONS_LIFT = "sections.mean_auprc_lift"
"""The mean of ``section.NAME.auprc_lift`` over the sections that have ones (after training)."""


def metric_names(section_names: Sequence[str]) -> list[str]:
    """Every metric key :func:`sweep.train.metrics.evaluate` returns for these sections.

    Args:
        section_names: Section names in row order; the last one is the label.

    Returns:
        The keys, in the order ``evaluate`` fills them.

    Raises:
        DataError: No section is given, or a name is empty or repeated.
    """
    names = [str(n) for n in section_names]
    check_section_names(names)
    keys = [f"expression.{m}" for m in EXPRESSION_METRICS]
    keys += [f"expression_hidden.{m}" for m in EXPRESSION_METRICS + THRESHOLD_METRICS]
    for name in names[:-1]:
        keys += [f"section.{name}.{m}" for m in SECTION_METRICS]
    keys += [*SECTIONS_SUMMARY, SECTIONS_LIFT]
    keys += [f"latent.{m}" for m in LATENT_METRICS]
    keys += [f"collapse.{m}" for m in COLLAPSE_METRICS]
    return keys


#: Metric leaves where lower is better (errors, KL, non-normality, collapse flags); ``None``
#: from :func:`natural_direction` for those with no better side (a threshold, a rate).
_LOWER_IS_BETTER = ("mse", "kl_mean", "mean_abs_skew", "mean_excess_kurtosis")
_NO_DIRECTION = ("threshold", "predicted_rate", "expected_rate", "actual_rate")


def natural_direction(metric: str) -> str | None:
    """``"minimize"`` or ``"maximize"`` for a metric key, ``None`` where neither side is better."""
    leaf = metric.rsplit(".", 1)[-1]
    if leaf in _NO_DIRECTION:
        return None
    if metric.startswith("collapse.") or leaf.endswith(_LOWER_IS_BETTER):
        return "minimize"
    return "maximize"


def quick_metric_names(section_names: Sequence[str]) -> list[str]:
    """The keys :func:`sweep.train.metrics.quick_metrics` returns (available after every epoch)."""
    names = [str(n) for n in section_names]
    check_section_names(names)
    keys = [
        f"{prefix}.{m}"
        for prefix in ("expression", "expression_hidden")
        for m in EXPRESSION_METRICS
    ]
    for name in names[:-1]:
        keys += [f"section.{name}.count_mse", f"section.{name}.output_mse"]
    keys += list(SECTIONS_SUMMARY)
    return keys


def value_columns(n_values: int) -> list[str]:
    """Column names of a trial's objective values, as Optuna's ``trials_dataframe()`` has them.

    ``value`` for one objective; ``value_0``, ``value_1``... for several.
    """
    return ["value"] if n_values == 1 else [f"value_{i}" for i in range(n_values)]


def check_section_names(names: Sequence[str]) -> None:
    """Check section names: at least one (the label, last), none empty, none repeated.

    Raises:
        DataError: on a violation, quoting the names.
    """
    if not names:
        raise DataError("sections: expected at least one section (the label, last), got none")
    if any(not n for n in names):
        raise DataError(f"sections: every section needs a non-empty name, got {list(names)!r}")
    if len(set(names)) != len(names):
        raise DataError(f"sections: names must be unique, got {list(names)!r}")
