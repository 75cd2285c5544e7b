"""Figures of a whole study: Optuna's plots and the notes' questions across trials.

* Optuna's visualization module, matplotlib backend: optimization history, parameter
  importances (PED-ANOVA: no scikit-learn, fast), parallel coordinates, slice plots and, for
  two objectives, the Pareto front;
* the rate-distortion view: KL (rate, ``latent.kl_mean``) against the reconstruction error
  (distortion, ``sections.mean_output_mse``, the same for every loss) per COMPLETE trial,
  coloured by beta, collapsed trials marked;
* balanced vs original: the objective and the section score side by side;
* collapse across trials: active units against beta and against the coding size.

Each function returns the :class:`~sweep.present.plotting.Figure` it wrote, or raises
:class:`FigureUnavailable` with the reason (too few trials, no such parameter...), which the
report prints in the figure's place.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sweep.names import predicts_all_zeros
from sweep.present.plotting import TRAIN_COLOR
from sweep.present.plotting import VAL_COLOR
from sweep.present.plotting import Figure
from sweep.present.plotting import log_x
from sweep.present.plotting import pyplot
from sweep.present.plotting import save

RATE = "latent.kl_mean"
DISTORTION = "sections.mean_output_mse"
SECTION_SCORE = "sections.mean_auprc_lift"
ACTIVE = "latent.active_units"


#: Fewer COMPLETE trials than this get a note instead of parameter importances: on so few,
#: the importances are mostly noise.
MIN_IMPORTANCE_TRIALS = 20
#: The baseline's and the best trial's colours in the per-epoch curves.
BASELINE_COLOR = "#ff7f0e"
BEST_COLOR = "#2ca02c"


class FigureUnavailable(Exception):
    """A figure cannot be drawn for this study; the message says why."""


def optuna_figures(
    study: Any, metric_names: Sequence[str], out: Path
) -> list[tuple[str, Figure | str]]:
    """Optuna's plots of ``study`` as PNGs in ``out``.

    Args:
        study: A loaded ``optuna.Study``.
        metric_names: The objective metric names (axis labels).
        out: The folder.

    Returns:
        ``(title, figure or the reason it is missing)`` per plot, in report order.
    """
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator
    from optuna.visualization import matplotlib as vis

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    n_obj = len(study.directions)
    names = list(metric_names) or [f"objective {i}" for i in range(n_obj)]
    target: Callable[[Any], float] | None = None
    target_name = names[0]
    if n_obj > 1:
        target = _first_value
        target_name = f"{names[0]} (objective 1 of {n_obj})"
    plots: list[tuple[str, str, Callable[[], Any], str]] = [
        (
            "Optimization history",
            "optuna_history.png",
            lambda: vis.plot_optimization_history(study, target=target, target_name=target_name),
            "every COMPLETE trial's objective, and the best so far",
        ),
        (
            "Parameter importances",
            "optuna_importances.png",
            lambda: vis.plot_param_importances(
                study,
                evaluator=PedAnovaImportanceEvaluator(),
                target=target,
                target_name=target_name,
            ),
            "PED-ANOVA importance of each searched parameter for the objective",
        ),
        (
            "Parallel coordinates",
            "optuna_parallel.png",
            lambda: vis.plot_parallel_coordinate(study, target=target, target_name=target_name),
            "each line a COMPLETE trial, coloured by the objective",
        ),
        (
            "Slice plots",
            "optuna_slice.png",
            lambda: vis.plot_slice(study, target=target, target_name=target_name),
            "the objective against each parameter",
        ),
    ]
    if n_obj == 2:
        plots.append(
            (
                "Pareto front",
                "optuna_pareto.png",
                lambda: vis.plot_pareto_front(study, target_names=names[:2]),
                "the two objectives of every COMPLETE trial; the front in red",
            )
        )
    results: list[tuple[str, Figure | str]] = []
    for title, file, draw, caption in plots:
        if not complete:
            results.append((title, "no COMPLETE trial yet"))
            continue
        if title == "Parameter importances" and len(complete) < MIN_IMPORTANCE_TRIALS:
            results.append((title, importance_note(len(complete))))
            continue
        if title == "Parallel coordinates" and len(complete) < 2:
            results.append((title, "needs at least 2 COMPLETE trials"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                drawn = draw()
            _save_optuna(drawn, out / file)
        except Exception as e:  # noqa: BLE001  (Optuna raises several types for thin studies)
            pyplot().close("all")
            results.append((title, f"not available: {type(e).__name__}: {e}"))
            continue
        results.append((title, Figure(file, title, caption)))
    return results


def importance_note(complete: int) -> str:
    """Why a study with ``complete`` COMPLETE trials gets no importance figure."""
    return (
        f"not shown: the study has {complete} COMPLETE trial{'s' if complete != 1 else ''}, "
        f"too few for importances (they need about {MIN_IMPORTANCE_TRIALS}; fewer give noise)"
    )


def _first_value(trial: Any) -> float:
    return float(trial.values[0])


def _save_optuna(drawn: Any, path: Path) -> None:
    """Save what an Optuna matplotlib function returned (one Axes, or an array of them)."""
    import numpy as np
    from matplotlib.ticker import NullFormatter

    axes = np.atleast_1d(np.asarray(drawn, dtype=object)).ravel()
    fig = axes[0].figure
    for ax in fig.axes:  # log axes: major labels only, or they overlap
        if ax.get_xscale() == "log":
            ax.xaxis.set_minor_formatter(NullFormatter())
        if ax.get_yscale() == "log":
            ax.yaxis.set_minor_formatter(NullFormatter())
    width, height = fig.get_size_inches()
    if len(axes) > 1:  # slice plots: one panel per parameter, in a row
        fig.set_size_inches(max(width, 3.2 * len(axes)), max(height, 3.6))
    else:
        fig.set_size_inches(max(width, 10.0), max(height, 5.0))
    save(fig, path)


def rate_distortion(
    trials: Sequence[Mapping[str, Any]], out: Path, marked: Mapping[int, str] | None = None
) -> Figure:
    """KL against reconstruction error per COMPLETE trial, coloured by beta, collapse marked.

    Args:
        trials: Trial dicts (``metrics``, ``params_full``, ``flags``).
        out: The folder.
        marked: ``{trial number: label}`` to annotate (the best trial, the baseline).

    Raises:
        FigureUnavailable: no COMPLETE trial has both metrics.
    """
    import numpy as np

    points = [
        (t, _metric(t, RATE), _metric(t, DISTORTION))
        for t in trials
        if t.get("state") == "COMPLETE"
    ]
    points = [(t, x, y) for t, x, y in points if x is not None and y is not None]
    if not points:
        raise FigureUnavailable(f"no COMPLETE trial with both {RATE} and {DISTORTION}")
    plt = pyplot()
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(8, 5))
    betas = np.array([_param(t, "kl_beta") or math.nan for t, _, _ in points], dtype=float)
    xs = np.array([x for _, x, _ in points])
    ys = np.array([y for _, _, y in points])
    collapsed = np.array([_collapsed(t) for t, _, _ in points])
    finite = np.isfinite(betas) & (betas > 0)
    norm = None
    if finite.any() and betas[finite].min() < betas[finite].max():
        norm = LogNorm(vmin=betas[finite].min(), vmax=betas[finite].max())
    colors = np.where(finite, betas, np.nan)
    healthy = ~collapsed
    scatter = ax.scatter(
        xs[healthy],
        ys[healthy],
        c=colors[healthy],
        cmap="viridis",
        norm=norm,
        s=36,
        edgecolors="black",
        linewidths=0.3,
        label="trial",
    )
    if collapsed.any():
        ax.scatter(
            xs[collapsed],
            ys[collapsed],
            c=colors[collapsed],
            cmap="viridis",
            norm=norm,
            s=70,
            marker="X",
            edgecolors=VAL_COLOR,
            linewidths=1.0,
            label="collapsed (a collapse flag)",
        )
    if finite.any():
        fig.colorbar(scatter, ax=ax, label="kl_beta")
    for t, x, y in points:
        note = (marked or {}).get(int(t.get("number", -1)))
        if note:
            ax.annotate(
                note,
                (x, y),
                xytext=(6, 6),
                textcoords="offset points",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "lw": 0.5},
            )
    if (xs > 0).all() and xs.max() / max(xs.min(), 1e-12) > 50:
        log_x(ax)
    ax.set_xlabel(f"rate: KL per row, nats ({RATE})")
    ax.set_ylabel(f"distortion: output MSE ({DISTORTION})")
    ax.set_title(
        f"Rate-distortion, {len(points)} COMPLETE trials: lower-left is better; "
        "beta moves trials along the curve"
    )
    ax.legend(loc="upper right")
    save(fig, out / "rate_distortion.png")
    return Figure(
        "rate_distortion.png",
        "Rate-distortion",
        "KL (rate) against reconstruction error (distortion) per trial, coloured by beta; "
        "X: collapsed trials",
    )


def balanced_vs_original(trials: Sequence[Mapping[str, Any]], objective: str, out: Path) -> Figure:
    """The objective and the section score of COMPLETE trials, per ``dataset`` value.

    Raises:
        FigureUnavailable: no COMPLETE trial, or every trial used one dataset.
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for t in trials:
        if t.get("state") == "COMPLETE":
            groups.setdefault(str(_param(t, "dataset") or "?"), []).append(t)
    if not groups:
        raise FigureUnavailable("no COMPLETE trial yet")
    if len(groups) < 2:
        raise FigureUnavailable(f"every COMPLETE trial used dataset {next(iter(groups))!r}")
    plt = pyplot()
    import numpy as np

    names = sorted(groups)
    panels = [
        (f"objective: {objective}", lambda t: _value(t)),
        (f"section score: {SECTION_SCORE}", lambda t: _metric(t, SECTION_SCORE)),
        (f"active units ({ACTIVE})", lambda t: _metric(t, ACTIVE)),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    rng = np.random.default_rng(0)
    for ax, (title, get) in zip(axes, panels, strict=True):
        data = [[v for v in (get(t) for t in groups[n]) if v is not None] for n in names]
        for i, values in enumerate(data):
            if values:
                ax.boxplot(values, positions=[i], widths=0.5, showfliers=False)
                jitter = rng.uniform(-0.12, 0.12, len(values))
                ax.scatter(
                    np.full(len(values), i) + jitter,
                    values,
                    s=14,
                    color=TRAIN_COLOR,
                    alpha=0.7,
                    zorder=3,
                )
        ax.set_xticks(range(len(names)), [f"{n}\n(n={len(groups[n])})" for n in names])
        ax.set_title(title, fontsize=9)
    fig.suptitle("Balanced vs original training data (COMPLETE trials)")
    fig.tight_layout()
    save(fig, out / "balanced_vs_original.png")
    return Figure(
        "balanced_vs_original.png",
        "Balanced vs original",
        "each point a COMPLETE trial; the validation split is the same for both",
    )


def collapse_across_trials(trials: Sequence[Mapping[str, Any]], out: Path) -> Figure:
    """Active units against beta and against the coding size, per COMPLETE trial.

    Raises:
        FigureUnavailable: no COMPLETE trial reports active units.
    """
    points = [
        (t, _metric(t, ACTIVE), _param(t, "kl_beta"), _param(t, "coding_size"))
        for t in trials
        if t.get("state") == "COMPLETE"
    ]
    points = [p for p in points if p[1] is not None]
    if not points:
        raise FigureUnavailable(f"no COMPLETE trial reports {ACTIVE}")
    plt = pyplot()
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.colors import Normalize

    active = np.array([p[1] for p in points], dtype=float)
    beta = np.array([p[2] if p[2] else math.nan for p in points], dtype=float)
    coding = np.array([p[3] if p[3] else math.nan for p in points], dtype=float)
    collapsed = np.array([_collapsed(p[0]) for p in points])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, xs, colour_by, xlabel, clabel in (
        (axes[0], beta, coding, "kl_beta", "coding_size"),
        (axes[1], coding, beta, "coding_size", "kl_beta"),
    ):
        ok = np.isfinite(xs)
        if not ok.any():
            ax.text(0.5, 0.5, f"no {xlabel} recorded", ha="center", transform=ax.transAxes)
            continue
        shown = colour_by[np.isfinite(colour_by)]
        # One colour scale over every trial, so that it is valid (vmin < vmax) even when only
        # one trial is drawn as a dot (the others collapsed).
        spread = len(shown) > 0 and shown.min() < shown.max()
        norm: Normalize | None = None
        if spread and clabel == "kl_beta" and (shown > 0).all():
            norm = LogNorm(vmin=shown.min(), vmax=shown.max())
        elif spread:
            norm = Normalize(vmin=shown.min(), vmax=shown.max())
        sc = ax.scatter(
            xs[ok & ~collapsed],
            active[ok & ~collapsed],
            c=colour_by[ok & ~collapsed],
            cmap="viridis",
            norm=norm,
            s=30,
            edgecolors="black",
            linewidths=0.3,
        )
        if (ok & collapsed).any():
            ax.scatter(
                xs[ok & collapsed],
                active[ok & collapsed],
                marker="X",
                s=60,
                color=VAL_COLOR,
                label="collapsed",
            )
            ax.legend()
        if norm is not None and (ok & ~collapsed).any():
            fig.colorbar(sc, ax=ax, label=clabel)
        if xlabel == "kl_beta" and (xs[ok] > 0).all() and xs[ok].max() > xs[ok].min():
            log_x(ax)
        if xlabel == "coding_size" and ok.any():
            top = float(np.nanmax(xs))
            ax.plot([0, top], [0, top], color="#999999", lw=0.8, ls="--", label="all units")
            ax.legend()
        ax.set_xlabel(xlabel)
        ax.set_ylabel("active units (variance of z_mean > 0.01)")
    fig.suptitle("Collapse across trials: active latent units")
    fig.tight_layout()
    save(fig, out / "collapse_active_units.png")
    return Figure(
        "collapse_active_units.png",
        "Active units against beta and coding size",
        "X: trials with a collapse flag",
    )


def all_zero_sections(trials: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Which COMPLETE trials predict all zeros in which mark section (the collapse rule,
    :func:`sweep.names.predicts_all_zeros`: nothing above 0.5 and no ranking of the ones).

    Returns:
        The section names, and one row per such trial: ``[number, True/False per section]``.
    """
    sections: list[str] = []
    for t in trials:
        for key in t.get("metrics") or {}:
            if key.startswith("section.") and key.endswith(".predicted_rate"):
                name = key[len("section.") : -len(".predicted_rate")]
                if name not in sections:
                    sections.append(name)
    rows = []
    for t in trials:
        if t.get("state") != "COMPLETE":
            continue
        m = t.get("metrics") or {}
        hits = [
            predicts_all_zeros(
                m.get(f"section.{s}.predicted_rate"),
                m.get(f"section.{s}.actual_rate"),
                m.get(f"section.{s}.auprc_lift"),
            )
            for s in sections
        ]
        if any(hits):
            rows.append([t.get("number"), *hits])
    return sections, rows


def _metric(trial: Mapping[str, Any], key: str) -> float | None:
    value = (trial.get("metrics") or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _param(trial: Mapping[str, Any], name: str) -> Any:
    full = trial.get("params_full") or {}
    if name in full:
        return full[name]
    return (trial.get("params") or {}).get(name)


def _value(trial: Mapping[str, Any]) -> float | None:
    values = trial.get("values") or []
    if not values or values[0] is None or not math.isfinite(float(values[0])):
        return None
    return float(values[0])


def _collapsed(trial: Mapping[str, Any]) -> bool:
    metrics = trial.get("metrics") or {}
    return bool(trial.get("flags")) or bool(metrics.get("collapse.any"))


def history_across_trials(trials: Sequence[Mapping[str, Any]], out: Path) -> Figure:
    """A KerasTuner hypermodel study's own curves: each validation metric of its Keras history
    (the training one where there is no ``val_``) per epoch, one line per COMPLETE trial.

    Raises:
        FigureUnavailable: no COMPLETE trial stored a history.
    """
    from sweep.present.plotting import grid_shape
    from sweep.present.trial_figures import history_keys

    histories = [
        (t.get("number"), t["history"])
        for t in trials
        if t.get("state") == "COMPLETE" and isinstance(t.get("history"), Mapping)
    ]
    keys: dict[str, None] = {}
    for _, history in histories:
        keys.update(dict.fromkeys(history_keys(history)))
    if not keys:
        raise FigureUnavailable("no COMPLETE trial stored a Keras history")
    plt = pyplot()
    rows, cols = grid_shape(len(keys))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        shown = f"val_{key}"
        if not any(isinstance(h.get(shown), list) and h.get(shown) for _, h in histories):
            shown = key
        for _number, history in histories:
            values = [float(v) for v in history.get(shown) or [] if isinstance(v, int | float)]
            if values:
                ax.plot(range(1, len(values) + 1), values, color=VAL_COLOR, alpha=0.5, lw=1)
        ax.set_title(shown)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle("Keras history per epoch, COMPLETE trials")
    fig.tight_layout()
    save(fig, out / "history_across_trials.png")
    return Figure(
        "history_across_trials.png",
        "Training curves across trials",
        "each line a COMPLETE trial; validation curves where the history has them",
    )


def epoch_curves(
    curves: Mapping[int, tuple[str, Sequence[tuple[int, float]]]],
    metric: str,
    out: Path,
    *,
    baseline: int | None = None,
    best: int | None = None,
    baseline_name: str = "",
    source: str = "as reported to the pruner",
) -> Figure:
    """Every trial's per-epoch curve overlaid (Optuna's intermediate-values plot), with the
    baseline and the best trial drawn apart and labelled.

    Args:
        curves: ``{trial number: (state, ((epoch index, value), ...))}``.
        metric: What the curves measure (the y label).
        out: The folder.
        baseline: The baseline trial's number, if the study has one.
        baseline_name: The baseline's name (``notes``), shown in its label.
        best: The best trial's number.
        source: Where the values come from, for the caption.

    Raises:
        FigureUnavailable: no trial has a per-epoch value.
    """
    drawn = {
        n: (state, [(e, v) for e, v in points if math.isfinite(v)])
        for n, (state, points) in curves.items()
    }
    drawn = {n: c for n, c in drawn.items() if c[1]}
    if not drawn:
        raise FigureUnavailable("no trial recorded a value per epoch")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.6))
    pruned = complete = 0
    for number, (state, points) in sorted(drawn.items()):
        if number in (baseline, best):
            continue
        epochs = [e + 1 for e, _ in points]
        values = [v for _, v in points]
        is_pruned = state == "PRUNED"
        pruned += is_pruned
        complete += not is_pruned
        ax.plot(
            epochs,
            values,
            color="#999999" if is_pruned else TRAIN_COLOR,
            ls="--" if is_pruned else "-",
            alpha=0.35 if is_pruned else 0.45,
            lw=0.9,
            marker="o" if len(points) == 1 else None,
            ms=3,
            label=None,
        )
    # Proxy entries, one per kind of line, so the legend stays short at any study size.
    if complete:
        ax.plot(
            [], [], color=TRAIN_COLOR, alpha=0.6, lw=1, label=f"other COMPLETE trials ({complete})"
        )
    if pruned:
        ax.plot([], [], color="#999999", ls="--", lw=1, label=f"other PRUNED trials ({pruned})")
    for marked, color, name in (
        (best, BEST_COLOR, "best"),
        (baseline, BASELINE_COLOR, "baseline"),
    ):
        if marked is None or marked not in drawn or (name == "best" and marked == baseline):
            continue
        line = drawn[marked][1]
        ax.plot(
            [e + 1 for e, _ in line],
            [v for _, v in line],
            color=color,
            lw=2.4,
            marker="o",
            ms=4,
            zorder=5,
            label=f"{name} #{marked}"
            + (f" ({baseline_name})" if name == "baseline" and baseline_name else "")
            + (", also the best" if marked == best == baseline else ""),
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    last = max(e for _, points in drawn.values() for e, _ in points) + 1
    if last <= 20:
        ax.set_xticks(range(1, last + 1))
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{metric} per epoch, {len(drawn)} trials ({source})")
    ax.legend(loc="best")
    save(fig, out / "epoch_curves.png")
    marks = [
        f"baseline #{baseline} in orange" if baseline in drawn else "",
        f"best #{best} in green" if best in drawn and best != baseline else "",
    ]
    note = "; ".join(m for m in marks if m)
    return Figure(
        "epoch_curves.png",
        "Per-epoch curves",
        f"every trial's {metric} per epoch ({source}); PRUNED trials dashed"
        + (f"; {note}" if note else ""),
    )
