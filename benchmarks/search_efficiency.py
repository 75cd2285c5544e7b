"""B2, search efficiency: the notes' 96-point grid against random search, TPE and pruned TPE.

Run by hand (not a test); it takes hours on 2 cores at full scale, so it caches every trained
trial and resumes from the cache:

    .venv/bin/python benchmarks/search_efficiency.py             # 96 x 10 epochs, confirmed
    .venv/bin/python benchmarks/search_efficiency.py --epochs 6  # shorter trials (stated)
    .venv/bin/python benchmarks/search_efficiency.py --quick   # 6 points x 2 epochs: a smoke run

Method (a tabular benchmark, as HPOBench and NAS-Bench do it):

1. Train every point of the grid (``benchmarks/spaces/notes_grid.yaml``: coding {150, 300, 400,
   500} x gamma {1.5, 2} x alpha {0.25, 0.75} x beta {1e-4, 1e-3, 1e-2} x {balanced, original})
   once, seed 0, on the bundled K562 data with the studies' default split, scoring the
   label-hidden expression AUROC (the notes' spaces' objective) on validation after every epoch.
   Real trials: :func:`sweep.train.engine.run_trial`, in this process.
2. Replay the search methods against that table at equal total epochs (96 x epochs): the grid
   (``GridSampler``), random search, TPE, TPE + median pruning and TPE + Hyperband, built by the
   project's own ``make_sampler`` / ``make_pruner``. A trial reports its stored per-epoch
   values to the pruner and costs the epochs it ran; a pruned trial yields no final value.
   Each method is replayed with ``--repeats`` sampler seeds, which is cheap, so the table shows
   the spread over seeds instead of one lucky run.
3. Confirm: the grid's best ``--confirm-top`` points are trained again with 2 fresh seeds and
   scored on validation and on the test split (which no method saw), mean +- sd over 3 seeds.
4. How well an early epoch predicts the final score: Spearman's rank correlation of the epoch-k
   and the final objective over the grid, for every k; and the median pruner replayed with
   ``n_warmup_steps`` from 1 to epochs - 1.

Writes ``benchmarks/search_efficiency.png`` (best-so-far objective against epochs spent, median
and quartiles over the repeats) and the ``search_efficiency`` block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parent.parent
BLOCK = "search_efficiency"
SPACE = REPO / "benchmarks" / "spaces" / "notes_grid.yaml"
OBJECTIVE = "expression_hidden.auroc"
METHODS = (
    ("grid", "grid", "none"),
    ("random", "random", "none"),
    ("TPE", "tpe", "none"),
    ("TPE + median", "tpe", "median"),
    ("TPE + Hyperband", "tpe", "hyperband"),
)
REPORTED = (
    "expression_hidden.auroc",
    "expression.f1",
    "expression_hidden.f1_at_threshold",
    "expression.accuracy",
    "sections.mean_auprc_lift",
    "latent.active_units",
)


def point_key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


def grid_points(space: Any) -> list[dict[str, Any]]:
    grid = space.grid()
    names = sorted(grid)
    combos = itertools.product(*(grid[n] for n in names))
    return [dict(zip(names, combo, strict=True)) for combo in combos]


def train_point(
    fixed: dict[str, Any], values: dict[str, Any], epochs: int, seed: int
) -> dict[str, Any]:
    """One real trial of ``values``: per-epoch validation objective, final val and test metrics."""
    from sweep.params import TrialParams
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import load_dataset
    from sweep.train.engine import EngineOptions
    from sweep.train.engine import run_trial

    data = load_dataset(BUNDLED_DATA)

    params = TrialParams.from_dict({**fixed, **values, "epochs": epochs, "seed": seed})
    curve: list[float] = []

    def on_epoch(epoch: int, logs: Any) -> None:
        curve.append(float(logs[OBJECTIVE]))

    started = time.perf_counter()
    result = run_trial(
        params,
        data,
        on_epoch=on_epoch,
        options=EngineOptions(score_every_epoch=True, score_test=True),
    )
    return {
        "values": values,
        "seed": seed,
        "curve": curve,
        "final": float(result.metrics[OBJECTIVE]),
        "val": {k: _float(result.metrics.get(k)) for k in REPORTED},
        "test": {k: _float(result.test_metrics.get(f"test.{k}")) for k in REPORTED},
        "seconds": time.perf_counter() - started,
        "epochs_run": result.epochs_run,
    }


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def load_cache(path: Path, epochs: int) -> dict[tuple[str, int], dict[str, Any]]:
    cache: dict[tuple[str, int], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("epochs") == epochs:
                cache[(point_key(row["values"]), row["seed"])] = row
    return cache


def ensure_trained(
    fixed: dict[str, Any],
    points: list[dict[str, Any]],
    seeds: list[int],
    epochs: int,
    cache: dict[tuple[str, int], dict[str, Any]],
    cache_path: Path,
) -> None:
    todo = [(p, s) for p in points for s in seeds if (point_key(p), s) not in cache]
    for i, (values, seed) in enumerate(todo, 1):
        # A fresh process per trial, as a sweep runs it: TensorFlow does not give back the
        # memory of a finished model (in one process, 22 trials of this model grew to 17 GB).
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            trained = pool.submit(train_point, fixed, values, epochs, seed).result()
        row = {**trained, "epochs": epochs}
        cache[(point_key(values), seed)] = row
        with cache_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            f"[{i}/{len(todo)}] seed {seed} {values}: {OBJECTIVE} {row['final']:.4f} "
            f"({row['seconds']:.0f} s)",
            flush=True,
        )


def replay(
    space: Any,
    table: dict[str, dict[str, Any]],
    sampler_name: str,
    pruner_name: str,
    epochs: int,
    budget: int,
    seed: int,
    warmup: int | None = None,
) -> list[tuple[int, float, str]]:
    """Run one method against the table until ``budget`` epochs are spent.

    Returns ``(epochs spent, best final objective so far, point key)`` after every trial.
    """
    import optuna

    from sweep.config import study_config
    from sweep.run.sampling import make_pruner
    from sweep.run.sampling import make_sampler

    config = study_config(
        space.with_fixed({"epochs": epochs}),
        sampler=sampler_name,
        pruner=pruner_name,
        seed=seed,
        n_trials=10**6,
        max_seeds=1,
    )
    sampler = make_sampler(config, 0)
    pruner = make_pruner(config)
    if warmup is not None and pruner_name == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    spent, best, best_key = 0, float("-inf"), ""
    trace: list[tuple[int, float, str]] = []
    while spent < budget:
        trial = study.ask()
        params = space.suggest(trial)
        key = point_key({n: getattr(params, n) for n in space.search})
        row = table[key]
        pruned = False
        for epoch, value in enumerate(row["curve"]):
            spent += 1
            trial.report(value, epoch)
            if epoch + 1 < epochs and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            try:
                study.tell(trial, row["final"])
            except RuntimeError:  # GridSampler calls study.stop() after its last point
                if sampler_name != "grid":
                    raise
            if row["final"] > best:
                best, best_key = row["final"], key
        trace.append((spent, best, best_key))
        if sampler_name == "grid" and len(study.trials) >= len(table):
            break
    return trace


def reach(trace: list[tuple[int, float, str]], target: float) -> int | None:
    for spent, best, _ in trace:
        if best >= target - 1e-12:
            return spent
    return None


def spearman_by_epoch(rows: list[dict[str, Any]], epochs: int) -> list[float]:
    from scipy.stats import spearmanr

    finals = [r["final"] for r in rows]
    out = []
    for k in range(epochs):
        early = [r["curve"][k] if k < len(r["curve"]) else r["curve"][-1] for r in rows]
        out.append(float(spearmanr(early, finals).statistic))
    return out


def mean_sd(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


def figure(
    curves: dict[str, list[list[tuple[int, float, str]]]],
    budget: int,
    grid_best: float,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    xs = np.arange(1, budget + 1)
    for label, traces in curves.items():
        ys = []
        for trace in traces:
            y = np.full(budget, np.nan)
            for spent, best, _ in trace:
                if best > float("-inf"):
                    y[min(spent, budget) - 1 :] = best
            ys.append(y)
        stack = np.vstack(ys)
        with warnings.catch_warnings():  # epochs before any trial completed are all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(stack, axis=0)
            low = np.nanpercentile(stack, 25, axis=0)
            high = np.nanpercentile(stack, 75, axis=0)
        (line,) = ax.plot(xs, median, label=label, lw=1.8)
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.15)
    ax.axhline(grid_best, color="k", ls=":", lw=1, label="grid's best")
    ax.set_xlabel("epochs spent (the grid spends all of them)")
    ax.set_ylabel(f"best-so-far validation {OBJECTIVE}")
    ax.set_title("Search efficiency on the notes' 96-point grid (median, quartiles over seeds)")
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20, help="sampler seeds per method")
    parser.add_argument("--confirm-top", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="6 points, 2 epochs: a smoke run")
    parser.add_argument(
        "--cache", type=Path, default=REPO / "benchmarks" / ".cache" / "search_efficiency.jsonl"
    )
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.repeats, args.confirm_top = 2, 3, 2
        args.cache = args.cache.with_name(args.cache.stem + "-quick.jsonl")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from sweep.log import quiet_optuna
    from sweep.space import load_space
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import file_sha256

    quiet_optuna()
    space = load_space(SPACE)
    if args.quick:  # 6 points: beta x {balanced, original}
        space = space.with_fixed({"coding_size": 300, "focal_gamma": 2.0, "focal_alpha": 0.25})
    points = grid_points(space)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    cache = load_cache(args.cache, args.epochs)
    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    with _records.LoadMonitor() as load:
        ensure_trained(dict(space.fixed), points, [0], args.epochs, cache, args.cache)
        table = {point_key(p): cache[(point_key(p), 0)] for p in points}
        rows = list(table.values())
        budget = len(points) * args.epochs
        grid_best = max(r["final"] for r in rows)
        curves: dict[str, list[list[tuple[int, float, str]]]] = {}
        for label, sampler_name, pruner_name in METHODS:
            curves[label] = [
                replay(space, table, sampler_name, pruner_name, args.epochs, budget, seed)
                for seed in range(args.repeats)
            ]
        ranked = sorted(rows, key=lambda r: -r["final"])[: args.confirm_top]
        confirm_points = [r["values"] for r in ranked]
        ensure_trained(dict(space.fixed), confirm_points, [1, 2], args.epochs, cache, args.cache)
        warmups = {
            w: [
                replay(space, table, "tpe", "median", args.epochs, budget, seed, warmup=w)
                for seed in range(args.repeats)
            ]
            for w in range(1, args.epochs)
        }
    seconds = time.perf_counter() - started
    rho = spearman_by_epoch(rows, args.epochs)
    png = (
        REPO
        / "benchmarks"
        / ("search_efficiency-quick.png" if args.quick else "search_efficiency.png")
    )
    figure(curves, budget, grid_best, png)

    argv_text = [a for a in (argv if argv is not None else sys.argv[1:])]
    lines = [
        "## B2: search efficiency on the notes' grid"
        + (" (quick smoke run)" if args.quick else ""),
        "",
        _records.provenance(
            _records.command_line("search_efficiency.py", argv_text),
            load,
            started=started_at,
            seconds=seconds,
        ),
        f"Data: bundled K562 (`{BUNDLED_DATA.name}`, "
        f"SHA-256 {file_sha256(BUNDLED_DATA)[:12]}...), "
        f"default split (test held out). Trials: the notes' model (1280-1024-768-512, Adam 1e-3, "
        f"batch 32, ReduceLROnPlateau), **{args.epochs} epochs** "
        + ("(the notes ran 10)" if args.epochs != 10 else "(as the notes)")
        + f", {len(points)} grid points trained once (seed 0, "
        f"{statistics.fmean(r['seconds'] for r in rows):.0f} s per trial here on average). "
        "Objective: "
        f"validation `{OBJECTIVE}`. Methods replayed against that table at equal total epochs "
        f"({budget} = the grid's), {args.repeats} sampler seeds each; a pruned trial costs the "
        "epochs it ran. The grid's best here means its best single-seed validation score.",
        "",
        f"![best-so-far against epochs]({png.name})",
        "",
        "| method | share of the grid's epochs to reach the grid's best: median (quartiles) | "
        "reached it within the budget | best found at the budget, median | trials run, median |",
        "|---|---|---:|---:|---:|",
    ]
    summary: dict[str, float] = {}
    for label, traces in curves.items():
        reached = [reach(t, grid_best) for t in traces]
        shares = sorted((r / budget) if r is not None else float("inf") for r in reached)
        finite = [s for s in shares if s != float("inf")]
        q = (
            statistics.quantiles(shares, n=4)
            if len(shares) > 1 and len(finite) == len(shares)
            else None
        )
        median_share = statistics.median(shares)
        summary[label] = median_share
        share_text = (
            f"{100 * median_share:.0f} %"
            + (f" ({100 * q[0]:.0f}–{100 * q[2]:.0f} %)" if q else "")
            if median_share != float("inf")
            else "not reached in most runs"
        )
        lines.append(
            f"| {label} | {share_text} | {len(finite)}/{len(traces)} | "
            f"{statistics.median(t[-1][1] for t in traces):.4f} | "
            f"{statistics.median(len(t) for t in traces):.0f} |"
        )
    best_method = min((v, k) for k, v in summary.items() if k != "grid")
    best_share = (
        f"median {100 * best_method[0]:.0f} % of the grid's compute"
        if best_method[0] != float("inf")
        else "did not reach the grid's best in most runs"
    )
    lines += [
        "",
        f"Best method: **{best_method[1]}**, {best_share} (goal: 25 % or less: "
        f"{'met' if best_method[0] <= 0.25 else 'not met'}).",
        "",
        f"### Confirmed: the grid's top {len(ranked)} points, 3 seeds (0, 1, 2), validation "
        "and untouched test",
        "",
        "| rank (seed 0) | point | seed-0 val | val, 3 seeds | test, 3 seeds "
        "| test F1 at threshold | test section AUPRC lift | active units |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, r in enumerate(ranked, 1):
        runs = [cache[(point_key(r["values"]), s)] for s in (0, 1, 2)]
        lines.append(
            f"| {i} | {_point_text(r['values'])} | {r['final']:.3f} | "
            f"{mean_sd([x['val'][OBJECTIVE] for x in runs])} | "
            f"{mean_sd([x['test'][OBJECTIVE] for x in runs])} | "
            f"{mean_sd([x['test']['expression_hidden.f1_at_threshold'] for x in runs])} | "
            f"{mean_sd([x['test']['sections.mean_auprc_lift'] for x in runs])} | "
            f"{mean_sd([x['test']['latent.active_units'] for x in runs])} |"
        )
    lines += [
        "",
        "### How early an epoch predicts the final score (Spearman over the grid)",
        "",
        "| epoch | " + " | ".join(str(k + 1) for k in range(args.epochs)) + " |",
        "|---|" + "---:|" * args.epochs,
        "| rank correlation with the final objective | "
        + " | ".join(f"{v:.2f}" for v in rho)
        + " |",
        "",
        "TPE + median pruning replayed with a longer warm-up (`n_warmup_steps`: epochs reported "
        "before a trial can be pruned; the project uses "
        f"{_project_warmup()}):",
        "",
        "| n_warmup_steps | share of the grid's epochs to reach its best, median | reached "
        "| best at the budget, median |",
        "|---:|---:|---:|---:|",
    ]
    for w, traces in warmups.items():
        reached = [reach(t, grid_best) for t in traces]
        shares = [(r / budget) if r is not None else float("inf") for r in reached]
        median_share = statistics.median(shares)
        lines.append(
            f"| {w} | {_share(median_share)} | "
            f"{sum(r is not None for r in reached)}/{len(traces)} | "
            f"{statistics.median(t[-1][1] for t in traces):.4f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        key = f"{BLOCK}/quick" if args.quick else BLOCK
        _records.write_block(key, text, args.results)
        print(f"wrote block {key!r} of {args.results}")
    return 0


def _share(share: float) -> str:
    return "not reached" if share == float("inf") else f"{100 * share:.0f} %"


def _point_text(values: dict[str, Any]) -> str:
    short = {
        "coding_size": "coding",
        "focal_gamma": "γ",
        "focal_alpha": "α",
        "kl_beta": "β",
        "dataset": "",
    }
    return ", ".join(f"{short.get(k, k)} {v}".strip() for k, v in sorted(values.items()))


def _project_warmup() -> str:
    from sweep.config import MEDIAN_WARMUP_SHARE

    return f"`MEDIAN_WARMUP_SHARE` = {MEDIAN_WARMUP_SHARE:g} of the trial's epochs"


if __name__ == "__main__":
    raise SystemExit(main())
