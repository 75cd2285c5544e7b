"""Synthetic data in the notes layout, with peak-like marks and a planted label.

Each row is one gene: three 4 kb mark sections (DNA methylation, H3K9me3, H3K27me3, column
``widths // 2`` of each is the TSS) and the label ``expressed``. Marks come as contiguous runs
(peaks), placed mostly near the TSS; histone runs are a few hundred bp long, methylation runs
shorter. How many runs a row gets varies from gene to gene (a gamma-distributed activity), so
most rows are empty in the repressive marks, as in real data. The number of runs in a batch is
fixed by the target, so the density of ones per section matches :data:`NOTES_DENSITIES` closely
even on a few thousand rows (within about 7 %, measured on 2000 rows over 40 seeds).

The label is planted with a logistic model: coverage of each mark within ``widths // 4`` of the
TSS lowers the odds of expression (H3K27me3 most, then H3K9me3, then DNA methylation). The
intercept is solved on the generated rows so that the expected rate is
:data:`NOTES_EXPRESSED_RATE`.

Only numpy is used, and no float matrix of the full size is ever made: runs are written
straight into a ``uint8`` array.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sweep.train.data import NOTES_SECTIONS
from sweep.train.data import write_npz

NOTES_DENSITIES: dict[str, float] = {
    "DNA_methylation": 0.0337,
    "H3K9me3": 0.0321,
    "H3K27me3": 0.0108,
}
"""Density of ones per mark section in the researcher's data."""

NOTES_EXPRESSED_RATE = 0.3775
"""Fraction of expressed genes (label 1) in the researcher's data."""

# Per mark, at widths=4000: mean run length (bp), spread of run lengths (lognormal sigma), spread
# of run centres around the TSS (normal sd, bp), share of runs placed uniformly instead, gamma
# shape of the per-gene activity (small = most genes unmarked), logistic coefficient per 100 bp
# covered near the TSS, and a correction for overlapping / clipped runs (measured).
_MARKS: dict[str, dict[str, float]] = {
    "DNA_methylation": {
        "mean_len": 60.0,
        "len_sigma": 0.6,
        "centre_sd": 700.0,
        "uniform": 0.25,
        "shape": 0.6,
        "coef": -0.8,
        "overlap": 1.069,
    },
    "H3K9me3": {
        "mean_len": 450.0,
        "len_sigma": 0.4,
        "centre_sd": 900.0,
        "uniform": 0.3,
        "shape": 0.5,
        "coef": -1.0,
        "overlap": 1.076,
    },
    "H3K27me3": {
        "mean_len": 300.0,
        "len_sigma": 0.4,
        "centre_sd": 700.0,
        "uniform": 0.2,
        "shape": 0.5,
        "coef": -2.0,
        "overlap": 1.022,
    },
}
_NOTES_WIDTH = 4000


def synthesize(rows: int, *, seed: int = 0, widths: int = 4000) -> np.ndarray:
    """Generate a synthetic matrix in the notes layout.

    Args:
        rows: Number of genes (rows), at least 1.
        seed: Seed; the same seed, rows and widths give the same matrix.
        widths: Width of each of the three mark sections; lengths and spreads scale with it.

    Returns:
        ``uint8`` array of shape ``(rows, 3 * widths + 1)`` with values 0/1: DNA_methylation,
        H3K9me3, H3K27me3, then the label ``expressed``.

    Raises:
        ValueError: ``rows`` or ``widths`` is below 1.
    """
    if rows < 1:
        raise ValueError(
            f"Invalid value received for argument `rows`. Expected >= 1. Received: rows={rows}"
        )
    if widths < 1:
        raise ValueError(
            "Invalid value received for argument `widths`. Expected >= 1. "
            f"Received: widths={widths}"
        )
    rng = np.random.default_rng(seed)
    scale = widths / _NOTES_WIDTH
    tss = widths // 2
    near = max(1, widths // 4)
    X = np.zeros((rows, 3 * widths + 1), dtype=np.uint8)
    logit = np.zeros(rows, dtype=np.float64)
    for k, (mark, density) in enumerate(NOTES_DENSITIES.items()):
        p = _MARKS[mark]
        offset = k * widths
        mean_len = max(1.0, p["mean_len"] * scale)
        per_row = density * widths / mean_len * p["overlap"]
        # Gamma-distributed activity per gene; the batch total of runs is fixed (stochastic
        # rounding) and shared out in proportion, so the density is right even on few rows.
        activity = rng.gamma(p["shape"], 1.0 / p["shape"], size=rows)
        expected = per_row * rows
        total = int(expected) + int(rng.random() < expected - int(expected))
        n_runs = rng.multinomial(total, activity / activity.sum())
        row_of = np.repeat(np.arange(rows), n_runs)
        # Lognormal lengths with the wanted mean: mu = log(mean) - sigma^2 / 2.
        sigma = p["len_sigma"]
        lengths = rng.lognormal(math.log(mean_len) - sigma**2 / 2, sigma, size=total)
        lengths = np.maximum(1, np.rint(lengths)).astype(np.int64)
        centres = np.where(
            rng.random(total) < p["uniform"],
            rng.uniform(0, widths, size=total),
            rng.normal(tss, p["centre_sd"] * scale, size=total),
        )
        starts = np.clip(np.rint(centres - lengths / 2), 0, widths - 1).astype(np.int64)
        stops = np.minimum(starts + lengths, widths)
        for r, a, b in zip(row_of.tolist(), starts.tolist(), stops.tolist(), strict=True):
            X[r, offset + a : offset + b] = 1
        lo = offset + max(0, tss - near)
        hi = offset + min(widths, tss + near)
        covered = np.count_nonzero(X[:, lo:hi], axis=1)
        logit += p["coef"] * covered / (100.0 * scale)
    intercept = _solve_intercept(logit, NOTES_EXPRESSED_RATE)
    prob = 1.0 / (1.0 + np.exp(-(intercept + logit)))
    X[:, -1] = rng.random(rows) < prob
    return X


def write_synthetic(path: str | Path, rows: int, *, seed: int = 0) -> Path:
    """Write a synthetic form (b) file in the notes layout (12001 columns).

    Returns:
        The path written.
    """
    path = Path(path)
    write_npz(path, synthesize(rows, seed=seed, widths=_NOTES_WIDTH), NOTES_SECTIONS)
    return path


def _solve_intercept(logit: np.ndarray, rate: float) -> float:
    """Intercept ``b`` such that ``mean(sigmoid(b + logit)) == rate`` (bisection)."""
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        mean = float(np.mean(1.0 / (1.0 + np.exp(-(mid + logit)))))
        if mean < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
