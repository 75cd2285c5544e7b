"""The small per-trial sample behind a trial's latent and reconstruction figures.

Every trial stores it as the user attribute ``figure_sample`` (a JSON object, about 10-20 kB),
so figures need no re-run on any storage, PostgreSQL included, artifact store or not:

* ``z_mean`` and ``z_log_var`` of up to :data:`SAMPLE_ROWS` validation rows for a few latent
  dimensions (``dims``): a seeded sample of them plus the most and the least active
  (``dim_role``: 0 sampled, 1 most active, 2 least active), as float16;
* per section and row, the actual number of ones and the predicted (expected) number, the sum
  of the output probabilities (``actual_count``, ``predicted_count``; rows x sections);
* per section, histograms of the output probability where the data has a one and where it has
  a zero (``prob_hist_ones``, ``prob_hist_zeros``; :data:`HIST_BINS` bins over [0, 1]).

The arrays travel as a compressed ``.npz``, base64-encoded; :func:`decode` never unpickles.
This module needs only numpy and the standard library.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT = "npz-base64-v1"
ATTR = "figure_sample"
SAMPLE_ROWS = 256
SAMPLED_DIMS = 4
EXTREME_DIMS = 2  # the most and the least active, each
HIST_BINS = 20
MAX_BYTES = 200_000  # a guard: well above what the sizes above produce

ROLE_SAMPLED, ROLE_MOST, ROLE_LEAST = 0, 1, 2


def choose_dims(activity: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Latent dims to keep, and their roles: the most and least active plus a seeded sample.

    Args:
        activity: One value per latent dim (the variance of ``z_mean`` over rows).
        seed: Seed of the sampled dims.

    Returns:
        ``(dims, roles)``, both int arrays, most active first, then sampled, then least.
    """
    k = len(activity)
    values = np.nan_to_num(np.asarray(activity, dtype=float), nan=-np.inf)
    order = np.argsort(-values, kind="stable")
    if k <= SAMPLED_DIMS + 2 * EXTREME_DIMS:
        dims = order
        roles = np.full(k, ROLE_SAMPLED)
        if k:
            roles[0] = ROLE_MOST
        if k > 1:
            roles[-1] = ROLE_LEAST
        return dims.astype(np.int64), roles.astype(np.int64)
    most = order[:EXTREME_DIMS]
    least = order[-EXTREME_DIMS:]
    middle = order[EXTREME_DIMS:-EXTREME_DIMS]
    rng = np.random.default_rng(seed)
    sampled = np.sort(rng.choice(middle, size=SAMPLED_DIMS, replace=False))
    dims = np.concatenate([most, sampled, least])
    roles = np.array(
        [ROLE_MOST] * EXTREME_DIMS + [ROLE_SAMPLED] * SAMPLED_DIMS + [ROLE_LEAST] * EXTREME_DIMS
    )
    return dims.astype(np.int64), roles.astype(np.int64)


def build(
    x: np.ndarray,
    probs: np.ndarray,
    z_mean: np.ndarray,
    z_log_var: np.ndarray,
    sections: Sequence[tuple[str, int, int]],
    activity: np.ndarray,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``figure_sample`` attribute of a trial, from validation rows and their outputs.

    Args:
        x: Validation rows (0/1), at most :data:`SAMPLE_ROWS` of them.
        probs: The decoder's output probabilities for ``x`` (posterior mean).
        z_mean: Latent means of ``x``.
        z_log_var: Latent log-variances of ``x``.
        sections: ``(name, start, stop)`` per section, the label last.
        activity: Per latent dim, the variance of ``z_mean`` over the whole validation split.
        seed: Seed of the sampled dims.

    Returns:
        A JSON-serialisable dict: ``format``, ``sections``, ``rows``, ``data``.
    """
    x = np.asarray(x)
    probs = np.asarray(probs, dtype=np.float32)
    dims, roles = choose_dims(activity, seed)
    names = [str(name) for name, _, _ in sections]
    actual = np.empty((len(x), len(sections)), dtype=np.float32)
    predicted = np.empty_like(actual)
    hist_ones = np.zeros((len(sections), HIST_BINS), dtype=np.int64)
    hist_zeros = np.zeros_like(hist_ones)
    edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    for j, (_, start, stop) in enumerate(sections):
        xs = x[:, start:stop]
        ps = probs[:, start:stop]
        actual[:, j] = xs.sum(axis=1)
        predicted[:, j] = ps.sum(axis=1)
        ones = xs.astype(bool)
        hist_ones[j] = np.histogram(np.clip(ps[ones], 0, 1), bins=edges)[0]
        hist_zeros[j] = np.histogram(np.clip(ps[~ones], 0, 1), bins=edges)[0]
    arrays = {
        "dims": dims,
        "dim_role": roles,
        "z_mean": np.asarray(z_mean)[:, dims].astype(np.float16),
        "z_log_var": np.asarray(z_log_var)[:, dims].astype(np.float16),
        "actual_count": actual,
        "predicted_count": predicted,
        "prob_hist_ones": hist_ones,
        "prob_hist_zeros": hist_zeros,
        "section_width": np.array([stop - start for _, start, stop in sections], dtype=np.int64),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    if len(data) > MAX_BYTES:  # never expected: keep the attribute small whatever happens
        return {"format": FORMAT, "sections": names, "rows": 0, "data": None}
    return {"format": FORMAT, "sections": names, "rows": int(len(x)), "data": data}


def decode(value: Any) -> dict[str, Any] | None:
    """The arrays of a stored ``figure_sample`` (plus ``sections``), or ``None`` if unusable."""
    if not isinstance(value, Mapping) or value.get("format") != FORMAT or not value.get("data"):
        return None
    try:
        raw = base64.b64decode(str(value["data"]), validate=True)
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays: dict[str, Any] = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, KeyError):
        return None
    arrays["sections"] = [str(s) for s in value.get("sections") or []]
    return arrays
