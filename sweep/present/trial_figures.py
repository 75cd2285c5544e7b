"""Figures of one trial, drawn from what the study stores (no re-run, no TensorFlow).

From a trial dict of :func:`sweep.store.read.trial_by_number` (``history``, ``diagnostics``,
``metrics`` and the ``figure_sample`` of :mod:`sweep.figure_data`):

* ``losses.png``: reconstruction, KL (unweighted) and total loss per epoch, train and
  validation;
* ``kl_per_dim.png``: KL per latent dimension, sorted, active units marked;
* ``latent_hist.png`` and ``latent_qq.png``: histograms and QQ plots against N(0, 1) of the
  posterior means of a sample of dimensions plus the most and the least active;
* ``reconstruction.png``: per section, the number of ones per row in the data against the
  reconstruction's expected number, with the predicted and actual rates of ones; below, the
  output probabilities where the data has a one and where it has a zero.

A trial of a KerasTuner hypermodel gets ``history.png`` instead: one panel per metric of its
Keras history, train and validation.

A figure whose data the trial does not have (a failed trial, a trial recorded before sweep
stored samples) is skipped and listed in the returned notes.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweep import figure_data
from sweep.present.plotting import ACTUAL_COLOR
from sweep.present.plotting import PREDICTED_COLOR
from sweep.present.plotting import TRAIN_COLOR
from sweep.present.plotting import VAL_COLOR
from sweep.present.plotting import Figure
from sweep.present.plotting import grid_shape
from sweep.present.plotting import pyplot
from sweep.present.plotting import save

_LOSSES = (
    ("reconstruction_loss", "reconstruction loss"),
    ("kl_loss", "KL (unweighted, nats)"),
    ("loss", "total loss (recon. + kl_weight x KL)"),
)
_ROLE_NAMES = {
    figure_data.ROLE_MOST: "most active",
    figure_data.ROLE_LEAST: "least active",
    figure_data.ROLE_SAMPLED: "sampled",
}


def write_trial_figures(
    trial: Mapping[str, Any], out: Path, prefix: str = "", *, hypermodel: bool = False
) -> tuple[list[Figure], list[str]]:
    """Draw every figure of ``trial`` that its stored data allows into ``out``.

    Args:
        trial: A trial dict with ``history``, ``diagnostics`` and ``figure_sample`` loaded.
        out: The folder (created when needed).
        prefix: Prepended to each file name (``trial-3-``), so several trials share a folder.
        hypermodel: The trial ran a user's KerasTuner hypermodel: draw its own Keras history
            (one panel per metric, train and ``val_``) and none of the VAE's figures.

    Returns:
        The figures written, and one note per figure that could not be drawn (and why).
    """
    label = f"trial #{trial.get('number')}"
    figures: list[Figure] = []
    notes: list[str] = []
    history = trial.get("history") if isinstance(trial.get("history"), Mapping) else None
    if hypermodel:
        keys = history_keys(history or {})
        if keys:
            name = f"{prefix}history.png"
            _history(history or {}, keys, label, out / name)
            figures.append(
                Figure(name, f"Keras history per epoch, {label}", "train and validation")
            )
        else:
            notes.append("history per epoch: no Keras history stored for this trial")
        return figures, notes
    diagnostics = trial.get("diagnostics")
    diagnostics = diagnostics if isinstance(diagnostics, Mapping) else {}
    sample = figure_data.decode(trial.get(figure_data.ATTR))

    if history and any(history.get(key) for key, _ in _LOSSES):
        name = f"{prefix}losses.png"
        _losses(history, label, out / name)
        figures.append(Figure(name, f"Losses per epoch, {label}", "train and validation"))
    else:
        notes.append("losses per epoch: no per-epoch history stored for this trial")

    kl = diagnostics.get("kl_per_dim")
    if isinstance(kl, list) and kl:
        name = f"{prefix}kl_per_dim.png"
        active = (diagnostics.get("latent_normality") or {}).get("active")
        _kl_per_dim(kl, active if isinstance(active, list) else None, label, out / name)
        figures.append(Figure(name, f"KL per latent dimension, {label}", "validation rows"))
    else:
        notes.append("KL per latent dimension: no diagnostics stored for this trial")

    if sample is not None and len(sample.get("dims", [])):
        name = f"{prefix}latent_hist.png"
        _latent_hist(sample, label, out / name)
        figures.append(Figure(name, f"Latent histograms, {label}", "z_mean against N(0, 1)"))
        name = f"{prefix}latent_qq.png"
        _latent_qq(sample, label, out / name)
        figures.append(Figure(name, f"Latent QQ plots, {label}", "z_mean against N(0, 1)"))
        name = f"{prefix}reconstruction.png"
        _reconstruction(sample, trial.get("metrics") or {}, label, out / name)
        figures.append(
            Figure(name, f"Reconstruction per section, {label}", "validation sample vs data")
        )
    else:
        notes.append(
            "latent and reconstruction figures: no figure sample stored for this trial "
            "(failed, or recorded before sweep kept one)"
        )
    return figures, notes


def _losses(history: Mapping[str, Any], label: str, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for ax, (key, title) in zip(axes, _LOSSES, strict=True):
        for prefix, color, name in (("", TRAIN_COLOR, "train"), ("val_", VAL_COLOR, "validation")):
            values = _floats(history.get(prefix + key))
            if values:
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, marker="o", ms=3, color=color, label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.has_data():
            ax.legend()
    fig.suptitle(f"Losses per epoch, {label}")
    fig.tight_layout()
    save(fig, path)


def history_keys(history: Mapping[str, Any]) -> list[str]:
    """The metric names of a Keras history (``loss``, ``binary_accuracy``...), each once: a
    ``val_`` key counts as its training key's."""
    keys: dict[str, None] = {}
    for key, values in history.items():
        if isinstance(values, list) and values:
            keys.setdefault(key.removeprefix("val_"))
    return list(keys)


def _history(history: Mapping[str, Any], keys: list[str], label: str, path: Path) -> None:
    plt = pyplot()
    rows, cols = grid_shape(len(keys))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for prefix, color, name in (("", TRAIN_COLOR, "train"), ("val_", VAL_COLOR, "validation")):
            values = _floats(history.get(prefix + key))
            if values:
                ax.plot(
                    range(1, len(values) + 1), values, marker="o", ms=3, color=color, label=name
                )
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.has_data():
            ax.legend()
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle(f"Keras history per epoch, {label}")
    fig.tight_layout()
    save(fig, path)


def _kl_per_dim(kl: list[Any], active: list[Any] | None, label: str, path: Path) -> None:
    plt = pyplot()
    values = [float(v) if v is not None else 0.0 for v in kl]
    order = sorted(range(len(values)), key=lambda i: -values[i])
    is_active = [bool(active[i]) if active and i < len(active) else False for i in order]
    fig, ax = plt.subplots(figsize=(max(6.0, min(14.0, 0.05 * len(values) + 5)), 3.4))
    colors = [TRAIN_COLOR if a else "#bbbbbb" for a in is_active]
    ax.bar(range(len(values)), [values[i] for i in order], color=colors, width=0.9)
    n_active = sum(is_active)
    ax.set_title(
        f"KL per latent dimension, {label}: {n_active} of {len(values)} active "
        "(blue; variance of z_mean > 0.01)"
    )
    ax.set_xlabel("latent dimension, sorted by KL")
    ax.set_ylabel("mean KL (nats)")
    if len(values) <= 40:
        ax.set_xticks(range(len(values)), [str(i) for i in order], fontsize=7)
    save(fig, path)


def _dim_labels(sample: Mapping[str, Any]) -> list[str]:
    return [
        f"dim {int(d)} ({_ROLE_NAMES.get(int(r), '')})"
        for d, r in zip(sample["dims"], sample["dim_role"], strict=True)
    ]


def _latent_hist(sample: Mapping[str, Any], label: str, path: Path) -> None:
    import numpy as np

    plt = pyplot()
    z = np.asarray(sample["z_mean"], dtype=float)
    labels = _dim_labels(sample)
    rows, cols = grid_shape(len(labels))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    grid = np.linspace(-4, 4, 200)
    density = np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    for i, ax in enumerate(axes.flat):
        if i >= len(labels):
            ax.set_visible(False)
            continue
        values = z[:, i]
        lo = min(-4.0, float(values.min()))
        hi = max(4.0, float(values.max()))
        ax.hist(values, bins=30, range=(lo, hi), density=True, color=TRAIN_COLOR, alpha=0.7)
        ax.plot(grid, density, color=VAL_COLOR, lw=1.2, label="N(0, 1)")
        ax.set_title(f"{labels[i]}\nmean {values.mean():.2f}, sd {values.std():.2f}", fontsize=8)
        if i == 0:
            ax.legend()
    fig.suptitle(f"Latent histograms (z_mean, {z.shape[0]} validation rows), {label}")
    fig.tight_layout()
    save(fig, path)


def _latent_qq(sample: Mapping[str, Any], label: str, path: Path) -> None:
    import numpy as np

    plt = pyplot()
    z = np.asarray(sample["z_mean"], dtype=float)
    labels = _dim_labels(sample)
    n = z.shape[0]
    normal = statistics.NormalDist()
    theoretical = np.array([normal.inv_cdf((i + 0.5) / n) for i in range(n)])
    rows, cols = grid_shape(len(labels))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(labels):
            ax.set_visible(False)
            continue
        ordered = np.sort(z[:, i])
        ax.scatter(theoretical, ordered, s=6, color=TRAIN_COLOR)
        lim = max(3.0, float(np.abs(ordered).max()), float(np.abs(theoretical).max()))
        ax.plot([-lim, lim], [-lim, lim], color=VAL_COLOR, lw=1, label="y = x (N(0, 1))")
        ax.set_title(labels[i], fontsize=8)
        ax.set_xlabel("N(0, 1) quantile")
        ax.set_ylabel("z_mean quantile")
        if i == 0:
            ax.legend(loc="upper left")
    fig.suptitle(f"QQ plots of z_mean against N(0, 1), {label}")
    fig.tight_layout()
    save(fig, path)


def _reconstruction(
    sample: Mapping[str, Any], metrics: Mapping[str, Any], label: str, path: Path
) -> None:
    import numpy as np

    plt = pyplot()
    names = list(sample["sections"])
    actual = np.asarray(sample["actual_count"], dtype=float)
    predicted = np.asarray(sample["predicted_count"], dtype=float)
    widths = np.asarray(sample["section_width"], dtype=float)
    ones = np.asarray(sample["prob_hist_ones"], dtype=float)
    zeros = np.asarray(sample["prob_hist_zeros"], dtype=float)
    edges = np.linspace(0.0, 1.0, ones.shape[1] + 1)
    cols = len(names)
    fig, axes = plt.subplots(2, cols, figsize=(3.4 * cols, 5.6), squeeze=False)
    for j, name in enumerate(names):
        ax = axes[0, j]
        rate_actual = actual[:, j].sum() / max(1.0, widths[j] * len(actual))
        rate_mean = predicted[:, j].sum() / max(1.0, widths[j] * len(predicted))
        top = max(1.0, float(actual[:, j].max()), float(predicted[:, j].max()))
        bins = np.linspace(0.0, top, 25) if widths[j] > 1 else np.linspace(0.0, 1.0, 11)
        ax.hist(actual[:, j], bins=bins, color=ACTUAL_COLOR, alpha=0.55, label="data")
        ax.hist(
            predicted[:, j], bins=bins, color=PREDICTED_COLOR, alpha=0.55, label="reconstruction"
        )
        ax.set_xlabel("ones per row" if widths[j] > 1 else "value / probability")
        threshold_rate = metrics.get(f"section.{name}.predicted_rate")
        lines = [f"actual rate {rate_actual:.3g}", f"mean probability {rate_mean:.3g}"]
        if isinstance(threshold_rate, int | float):
            lines.append(f"predicted rate (p > 0.5) {threshold_rate:.3g}")
        ax.set_title(f"{name}\n" + "\n".join(lines), fontsize=8)
        ax.legend()
        ax = axes[1, j]
        centers = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        ax.bar(centers, zeros[j], width=width, color=ACTUAL_COLOR, alpha=0.5, label="data = 0")
        ax.bar(centers, ones[j], width=width, color=PREDICTED_COLOR, alpha=0.7, label="data = 1")
        if zeros[j].sum() + ones[j].sum() > 0:
            ax.set_yscale("log")
        ax.set_xlabel("output probability")
        ax.set_ylabel("positions")
        ax.legend()
    axes[0, 0].set_ylabel("rows")
    fig.suptitle(f"Reconstruction per section ({len(actual)} validation rows), {label}")
    fig.tight_layout()
    save(fig, path)


def _floats(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [float(v) if isinstance(v, int | float) else float("nan") for v in values]
