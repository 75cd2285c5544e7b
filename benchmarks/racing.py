"""Racing: seed noise measured on the notes' grid, then single-seed TPE, 3-seed TPE and racing
replayed against it at equal total epochs.

Run by hand (not a test); every trained run is cached and the script resumes from the cache:

    .venv/bin/python benchmarks/racing.py                  # 24 points x 3 seeds x 3 epochs
    .venv/bin/python benchmarks/racing.py --epochs 1 --quick   # 6 points: a smoke run

Method:

1. **Measure.** Train every point of ``benchmarks/spaces/racing_grid.yaml`` (a stated 24-point
   subset of the notes' 96-point grid, so that 3 seeds per point fit on 2 cores) with the seeds
   a racing sweep uses: seed 0 (the study's) and :func:`sweep.seeds.race_seed` 1 and 2. Real
   trials on the bundled K562 data with the studies' default split, validation
   ``expression_hidden.auroc`` after every epoch (:func:`search_efficiency.train_point`). A
   point's *true* value is its mean over the 3 seeds; the grid's best is the best true value.
2. **Replay** at equal total epochs, ``--repeats`` sampler seeds each, with the project's own
   samplers, pruners and racing code:

   * *TPE + median, 1 seed*: every trial is the point's seed-0 run (what a sweep without racing
     sees); the pick is the best value seen.
   * *TPE + median, 3 seeds each*: every trial runs all 3 seeds and reports their mean curve;
     it costs 3 runs' epochs; the pick is the best mean.
   * *racing*: :func:`sweep.run.racing.queue_seeds` under the same loop a worker runs, with
     :func:`~sweep.run.racing.seed_mean_sampler` / ``seed_mean_pruner``; an extra seed is the
     point's measured run for that seed index; the pick is the best seed mean.

   The regret of a pick is the grid's best true value minus the pick's true value.
3. Writes the ``racing`` block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script
import search_efficiency as tabular  # the one tabular trainer and cache format

REPO = Path(__file__).resolve().parent.parent
BLOCK = "racing"
SPACE = REPO / "benchmarks" / "spaces" / "racing_grid.yaml"
MAX_SEEDS = 3
CLOSE = 0.01
RACING = f"racing (--max-seeds {MAX_SEEDS})"


def seeds() -> list[int]:
    from sweep.seeds import race_seed

    return [0] + [race_seed(i) for i in range(1, MAX_SEEDS)]


def measure(
    fixed: dict[str, Any],
    points: list[dict[str, Any]],
    epochs: int,
    cache: dict[tuple[str, int], dict[str, Any]],
    cache_path: Path,
    workers: int,
) -> None:
    """Train every (point, seed) not in the cache, ``workers`` fresh processes at a time."""
    todo = [(p, s) for s in seeds() for p in points if (tabular.point_key(p), s) not in cache]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = [
            (values, seed, pool.submit(tabular.train_point, fixed, values, epochs, seed))
            for values, seed in todo
        ]
        for i, (values, seed, future) in enumerate(futures, 1):
            row = {**future.result(), "epochs": epochs}
            cache[(tabular.point_key(values), seed)] = row
            with cache_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[{i}/{len(todo)}] seed {seed} {values}: {row['final']:.4f}", flush=True)


def replay_single(
    space: Any, table: dict[str, list[dict]], budget: int, seed: int, epochs: int, runs: int
) -> tuple[str, int]:
    """TPE + median over trials of ``runs`` seeds each (mean curve); the pick and epochs spent."""
    import optuna

    from sweep.config import study_config
    from sweep.run.sampling import make_pruner
    from sweep.run.sampling import make_sampler

    config = study_config(space, pruner="median", seed=seed, n_trials=10**6, max_seeds=1)
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler(config, 0), pruner=make_pruner(config)
    )
    spent, best, pick = 0, float("-inf"), ""
    while spent < budget:
        trial = study.ask()
        key = _key(space, trial)
        rows = table[key][:runs]
        pruned = False
        for epoch in range(epochs):
            spent += runs
            trial.report(statistics.fmean(r["curve"][epoch] for r in rows), epoch)
            if epoch + 1 < epochs and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        value = statistics.fmean(r["final"] for r in rows)
        study.tell(trial, value)
        if value > best:
            best, pick = value, key
    return pick, spent


def replay_racing(
    space: Any, table: dict[str, list[dict]], budget: int, seed: int, epochs: int
) -> tuple[str, int]:
    """Racing as a worker runs it (queue seeds, claim, run): the pick and the epochs spent."""
    import optuna

    from sweep.config import study_config
    from sweep.run.racing import incumbent
    from sweep.run.racing import queue_seeds
    from sweep.run.sampling import make_pruner
    from sweep.run.sampling import make_sampler
    from sweep.seeds import RACE_ATTR
    from sweep.seeds import SEED_INDEX_ATTR

    config = study_config(space, pruner="median", seed=seed, n_trials=10**6, max_seeds=MAX_SEEDS)
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler(config, 0), pruner=make_pruner(config)
    )
    spent = 0
    while spent < budget:
        queue_seeds(study, max_seeds=MAX_SEEDS)
        trial = study.ask()
        key = _key(space, trial)
        extra = RACE_ATTR in trial.user_attrs
        row = table[key][int(trial.user_attrs.get(SEED_INDEX_ATTR, 0)) if extra else 0]
        pruned = False
        for epoch, value in enumerate(row["curve"][:epochs]):
            spent += 1
            trial.report(value, epoch)
            if not extra and epoch + 1 < epochs and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, row["final"])
    best = incumbent(study)
    assert best is not None
    return _key(space, study.trials[best.number]), spent


def _key(space: Any, trial: Any) -> str:
    """The table key of a trial: suggested from the space (a new trial), else its params."""
    if hasattr(trial, "suggest_categorical"):
        space.suggest(trial)
    return tabular.point_key({n: trial.params[n] for n in space.search})


def real_run(budget_epochs: int, epochs: int, workdir: Path, repeats: int = 1) -> list[str]:
    """``sweep launch`` on the bundled data, racing and ``--max-seeds 1``, at the same
    ``--budget-epochs``, each followed by ``sweep confirm --top 1 --seeds 3``, once per sampler
    seed ``0..repeats-1``: table lines, then the median test score per method and the verdict."""
    import subprocess

    from sweep.present.confirmed import confirmed_results

    url = f"sqlite:///{workdir / 'real.db'}"
    metric = tabular.OBJECTIVE
    lines = [
        "",
        f"### Real runs: `sweep launch` at `--budget-epochs {budget_epochs}`, then "
        f"`sweep confirm --top 1 --seeds 3`, sampler seeds 0..{repeats - 1}",
        "",
        "| method | sampler seed | configurations | runs | epochs | pick | pick's seed mean "
        f"(validation) | confirmed test `{metric}` (3 fresh seeds) |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    methods = ((RACING, str(MAX_SEEDS)), ("one seed (--max-seeds 1)", "1"))
    tests: dict[str, list[float]] = {label: [] for label, _ in methods}
    for repeat in range(repeats):
        for label, seeds_flag in methods:
            study = f"real-{seeds_flag}-{repeat}"
            sweep = [sys.executable, "-m", "sweep", "-q"]
            common = ["--storage", url]
            subprocess.run(
                [*sweep, "launch", "--space", str(SPACE), "--study", study, "--n-trials", "1000",
                 "--budget-epochs", str(budget_epochs), "--max-seeds", seeds_flag, "--set",
                 f"epochs={epochs}", "--reference", "none", "--seed", str(repeat), *common],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            subprocess.run(
                [*sweep, "confirm", study, "--top", "1", "--seeds", "3", *common],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            best = json.loads(
                subprocess.run(
                    [*sweep, "best", study, "--top", "1", "--format", "json", *common],
                    check=True, capture_output=True, text=True,
                ).stdout
            )[0]  # fmt: skip
            trials = json.loads(
                subprocess.run(
                    [*sweep, "trials", study, "--format", "json", *common],
                    check=True, capture_output=True, text=True,
                ).stdout
            )  # fmt: skip
            configs = [t for t in trials if "race_of" not in (t.get("user_attrs") or {})]
            spent = sum(int(t.get("epochs_run") or 0) for t in trials)
            confirmed = confirmed_results(url, study) or {}
            row = next(r for r in confirmed["trials"] if r["number"] == best["number"])
            test = row["test"][metric]
            tests[label].append(float(test["mean"]))
            mean = best.get("value_mean", (best.get("values") or [None])[0])
            params = ", ".join(f"{k}={v}" for k, v in sorted(best["params"].items()))
            lines.append(
                f"| {label} | {repeat} | {len(configs)} | {len(trials)} | {spent} | "
                f"#{best['number']}: {params} | {mean:.3f} ({best.get('seeds', 1)} seed(s)) | "
                f"{test['mean']:.3f} ± {(test['sd'] or 0):.3f} |"
            )
    racing, single = (statistics.median(tests[label]) for label, _ in methods)
    wins = sum(r >= s for r, s in zip(tests[methods[0][0]], tests[methods[1][0]], strict=True))
    lines += [
        "",
        f"Median confirmed test `{metric}` of the pick over {repeats} sampler seed(s): racing "
        f"{racing:.3f}, one seed {single:.3f}; racing's pick at least as good in {wins} of "
        f"{repeats}. Goal (racing's confirmed pick at least as good on test): "
        f"{'met' if racing >= single else 'not met'} on the median.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20, help="sampler seeds per method")
    parser.add_argument(
        "--budget-share",
        type=float,
        nargs="+",
        default=[0.33, 0.5, 1.0],
        help="epoch budgets, each a share of one pass over the points at 3 seeds",
    )
    parser.add_argument("--workers", type=int, default=2, help="training processes at a time")
    parser.add_argument("--quick", action="store_true", help="6 points: a smoke run")
    parser.add_argument(
        "--cache", type=Path, default=REPO / "benchmarks" / ".cache" / "racing.jsonl"
    )
    parser.add_argument(
        "--real-budget-epochs",
        type=int,
        default=0,
        help="also run sweep launch (racing and --max-seeds 1) at this --budget-epochs, each "
        "confirmed on test; 0: skip",
    )
    parser.add_argument(
        "--real-repeats", type=int, default=1, help="real runs per method (sampler seeds 0..R-1)"
    )
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import optuna

    from sweep.space import load_space
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import file_sha256

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(SPACE).with_fixed({"epochs": args.epochs})
    if args.quick:  # 6 points: coding 150, gamma 1.5
        space = space.with_fixed({"coding_size": 150, "focal_gamma": 1.5})
        args.cache = args.cache.with_name(args.cache.stem + "-quick.jsonl")
    points = tabular.grid_points(space)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    cache = tabular.load_cache(args.cache, args.epochs)
    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    with _records.LoadMonitor() as load:
        measure(dict(space.fixed), points, args.epochs, cache, args.cache, args.workers)
        measured_s = time.perf_counter() - started
        table = {
            tabular.point_key(p): [cache[(tabular.point_key(p), s)] for s in seeds()]
            for p in points
        }
        truth = {k: statistics.fmean(r["final"] for r in rows) for k, rows in table.items()}
        best_true = max(truth.values())
        one_pass = len(points) * MAX_SEEDS * args.epochs
        budgets = {share: int(round(share * one_pass)) for share in args.budget_share}
        outcomes = {
            share: {
                "TPE + median, 1 seed": [
                    replay_single(space, table, budget, s, args.epochs, 1)
                    for s in range(args.repeats)
                ],
                f"TPE + median, {MAX_SEEDS} seeds each": [
                    replay_single(space, table, budget, s, args.epochs, MAX_SEEDS)
                    for s in range(args.repeats)
                ],
                RACING: [
                    replay_racing(space, table, budget, s, args.epochs)
                    for s in range(args.repeats)
                ],
            }
            for share, budget in budgets.items()
        }
        real_lines: list[str] = []
        if args.real_budget_epochs:  # inside the load monitor: the whole run's time and load
            import tempfile

            with tempfile.TemporaryDirectory(prefix="sweep-racing-") as workdir:
                real_lines = real_run(
                    args.real_budget_epochs, args.epochs, Path(workdir), args.real_repeats
                )
    seconds = time.perf_counter() - started

    sds = [statistics.stdev(r["final"] for r in rows) for rows in table.values()]
    pooled = statistics.fmean(sd**2 for sd in sds) ** 0.5
    single_best = max(table, key=lambda k: table[k][0]["final"])
    from scipy.stats import spearmanr

    rho = float(
        spearmanr([table[k][0]["final"] for k in table], [truth[k] for k in table]).statistic
    )
    lines = [
        "## Racing: seeds inside the search, replayed on measured seed noise"
        + (" (quick smoke run)" if args.quick else ""),
        "",
        _records.provenance(
            _records.command_line("racing.py", list(argv if argv is not None else sys.argv[1:])),
            load,
            started=started_at,
            seconds=seconds,
        ),
        f"Data: bundled K562 (`{BUNDLED_DATA.name}`, SHA-256 "
        f"{file_sha256(BUNDLED_DATA)[:12]}...), default split (test held out). Points: "
        f"{len(points)} of the notes' grid (`benchmarks/spaces/racing_grid.yaml`: coding "
        "{150, 500} x gamma {1.5, 2} x beta {1e-4, 1e-3, 1e-2} x {balanced, original}, alpha "
        f"0.25; a stated subset so that 3 seeds per point fit here), **{args.epochs} epochs** "
        f"(the notes ran 10), seeds {', '.join(map(str, seeds()))} (a racing sweep's seeds), "
        f"{len(points) * MAX_SEEDS} real runs ({measured_s / 60:.0f} min with the cache). "
        f"Objective: validation `{tabular.OBJECTIVE}`; a point's true value is its {MAX_SEEDS}-"
        "seed mean.",
        "",
        "### Seed noise",
        "",
        f"- seed-to-seed sd per point: median {statistics.median(sds):.3f}, max {max(sds):.3f}; "
        f"pooled {pooled:.3f}.",
        f"- grid's best true value {best_true:.3f}; the seed-0 best point's true value "
        f"{truth[single_best]:.3f} (seed 0 said {table[single_best][0]['final']:.3f}).",
        f"- Spearman rank correlation of seed 0 with the {MAX_SEEDS}-seed mean: {rho:.2f}.",
    ]
    verdicts = []
    for share, by_method in outcomes.items():
        lines += [
            "",
            f"### Replay at equal compute: {budgets[share]} epochs each ({share:g} x one pass "
            f"over the points at {MAX_SEEDS} seeds), {args.repeats} sampler seeds",
            "",
            "| method | regret of the pick, median (quartiles) | pick within "
            f"{CLOSE} of the best | epochs spent, median |",
            "|---|---|---:|---:|",
        ]
        medians = {}
        for label, results in by_method.items():
            regrets = sorted(best_true - truth[pick] for pick, _ in results)
            q = (
                statistics.quantiles(regrets, n=4, method="inclusive")
                if len(regrets) > 1
                else [regrets[0]] * 3
            )
            medians[label] = statistics.median(regrets)
            close = sum(r <= CLOSE for r in regrets)
            spent = statistics.median(s for _, s in results)
            lines.append(
                f"| {label} | {medians[label]:.4f} ({q[0]:.4f}–{q[2]:.4f}) | "
                f"{close}/{len(regrets)} | {spent:.0f} |"
            )
        single, racing = medians["TPE + median, 1 seed"], medians[RACING]
        met = racing <= single / 2 if single > 0 else racing == 0
        verdicts.append(
            f"{budgets[share]} epochs: {'met' if met else 'not met'} ({racing:.4f} against "
            f"{single:.4f})"
        )
    lines += [
        "",
        "Goal (racing's median regret at most half of single-seed TPE's, at equal epochs): "
        + "; ".join(verdicts)
        + ".",
    ]
    lines += real_lines
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        _records.write_block(BLOCK + ("/quick" if args.quick else ""), body, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
