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
