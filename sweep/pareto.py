"""The Pareto set of a list of loss vectors (every objective minimized). NumPy, imported lazily.

Used by the study reader (``sweep best`` on several objectives) and importable by any layer.
"""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(losses: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated rows of ``losses`` (every column minimized).

    Rows equal to a front row are on the front too (they do not dominate each other), as in
    Optuna. Two columns: one vectorized sweep, O(n log n). More: each row, in lexicographic
    order, is checked against the front found so far, O(n * front size).
    """
    import numpy as np

    if not len(losses):
        return []
    points = np.asarray(losses, dtype=float)
    n, k = points.shape
    order = np.lexsort(points.T[::-1])  # by first column, then second...
    ranked = points[order]
    if k == 2:
        # A row is dominated iff some lexicographically smaller, different row has a second
        # value <= its own: compare with the running minimum before its group of equal rows.
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        before = np.concatenate([[np.inf], np.minimum.accumulate(ranked[:, 1])[:-1]])
        keep = ~(before[group_start] <= ranked[:, 1])
        return [int(i) for i in order[keep]]
    front_rows: list[int] = []
    front = np.empty((0, k))
    for i, p in zip(order, ranked, strict=True):
        if len(front_rows) and np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1)):
            continue
        front_rows.append(int(i))
        front = np.vstack([front, p])
    return front_rows
