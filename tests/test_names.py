"""sweep.names: metric names without numpy, scikit-learn, scipy or TensorFlow."""

from __future__ import annotations

from sweep.names import metric_names
from sweep.names import quick_metric_names

HEAVY = ("numpy", "scipy", "sklearn", "tensorflow", "keras", "optuna", "sqlalchemy")


def test_quick_names_are_a_subset_of_the_full_names() -> None:
    sections = ["DNA_methylation", "H3K9me3", "expressed"]
    full = metric_names(sections)
    quick = quick_metric_names(sections)
    assert set(quick) <= set(full)
    assert "section.H3K9me3.count_mse" in quick and "latent.active_units" not in quick
    assert len(full) == len(set(full))


def test_natural_direction_of_every_vae_metric() -> None:
    from sweep.names import natural_direction

    directions = {name: natural_direction(name) for name in metric_names(["a", "b", "label"])}
    assert directions["expression.mse"] == "minimize"
    assert directions["section.a.count_mse"] == "minimize"
    assert directions["latent.kl_mean"] == "minimize"
    assert directions["collapse.any"] == "minimize"
    assert directions["expression_hidden.auroc"] == "maximize"
    assert directions["sections.mean_auprc_lift"] == "maximize"
    assert directions["latent.active_units"] == "maximize"
    undecided = sorted(n for n, d in directions.items() if d is None)
    assert undecided == [
        "expression_hidden.threshold",
        "section.a.actual_rate",
        "section.a.expected_rate",
        "section.a.predicted_rate",
        "section.b.actual_rate",
        "section.b.expected_rate",
        "section.b.predicted_rate",
    ]
    assert directions["section.a.expected_count_mse"] == "minimize"
