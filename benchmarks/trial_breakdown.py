"""Where a trial's wall time goes, with and without the warm spare process.

Run by hand (not a test):

    .venv/bin/python benchmarks/trial_breakdown.py --postgres "$SWEEP_TEST_POSTGRES_URL"
    .venv/bin/python benchmarks/trial_breakdown.py --quick      # 2 epochs, 1,000 synthetic rows
    # the 10,000-row file with fewer epochs, on SQLite only (a shorter run on 2 cores):
    .venv/bin/python benchmarks/trial_breakdown.py --synthetic-epochs 2 --synthetic-sqlite-only

For each storage (SQLite, PostgreSQL when given), each data file (the bundled K562 data and a
10,000-row synthetic file) and the spare off then on, a real ``sweep launch`` (one worker) runs
a few trials of the default trial (every hyperparameter at the notes' defaults, the pruner's
per-epoch scoring on). Every trial records its stage times (the trial user attribute
``timing``: the child's clock readings and the objective's); the table gives each stage's
share of a trial's cycle at steady state (from one trial's start to the next's, the first trial
left out). Start-up stages count only as far as the trial waited for them: a ready spare hides
them. Writes the ``trial_breakdown`` block of benchmarks/RESULTS.md (``--no-write``: print).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parent.parent
BLOCK = "trial_breakdown"
#: The default trial: every hyperparameter at its TrialParams default (one point, searched).
DEFAULT_SPACE = (
    "objective: {metric: expression_hidden.auroc, direction: maximize}\n"
    "search:\n  seed: {type: categorical, choices: [0]}\n"
)
#: ``--tiny`` (smoke runs): the same, with a toy network.
TINY_FIXED = "fixed:\n  encoder_units: [32, 16]\n  coding_size: 4\n"
#: (label, stage keys in ``timing``): the rows of the table, in the order a trial runs.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("process start + imports", ("process_start", "imports")),
    ("data load + validation + split", ("data_load",)),
    ("balance", ("balance",)),
    ("model build + first-step tracing", ("build", "first_step")),
    ("training", ("training",)),
    ("per-epoch scoring", ("epoch_scoring",)),
    ("final metrics + diagnostics", ("final_metrics", "samples")),
    ("storage writes (trial attributes)", ("storage_writes",)),
    ("artifact writes", ("artifact_writes",)),
)
STARTUP = ("process_start", "imports", "data_load")


def stage_seconds(timing: dict[str, float]) -> dict[str, float]:
    """Seconds per table row for one trial; start-up scaled to what the trial waited for."""
    startup = sum(float(timing.get(k, 0.0)) for k in STARTUP)
    exposed = float(timing.get("startup_exposed", startup))
    factor = min(1.0, exposed / startup) if startup > 0 else 0.0
    rows = {}
    for label, keys in STAGES:
        value = sum(float(timing.get(k, 0.0)) for k in keys)
        rows[label] = value * factor if set(keys) <= set(STARTUP) else value
    return rows


def run_case(
    url: str, data: Path, epochs: int, trials: int, spare: bool, tmp: Path, tiny: bool = False
) -> dict[str, Any]:
    """One ``sweep launch`` of ``trials`` default trials; the steady-state breakdown."""
    import optuna

    space = tmp / "default_trial.yaml"
    space.write_text(DEFAULT_SPACE + (TINY_FIXED if tiny else ""))
    study = f"bd-{time.time_ns()}"
    command = [
        sys.executable, "-m", "sweep", "-q", "launch", "--space", str(space), "--data", str(data),
        "--study", study, "--n-trials", str(trials), "--set", f"epochs={epochs}",
        "--baseline", "none", "--max-seeds", "1", "--storage", url,
    ]  # fmt: skip
    if not spare:
        command.append("--no-spare")
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - started
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loaded = optuna.load_study(study_name=study, storage=url)
    done = sorted((t for t in loaded.trials if t.state.name == "COMPLETE"), key=lambda t: t.number)
    starts = [t.datetime_start.timestamp() for t in done]
    # Steady state: the cycles of trials 2..n-1 (start to the next start); the first trial
    # starts cold, the last has no next start.
    cycles = [b - a for a, b in zip(starts[1:], starts[2:], strict=False)]
    steady = done[1:-1]
    if not cycles:  # fewer than 3 trials: the last trial alone, start to complete
        steady = done[-1:]
        cycles = [(done[-1].datetime_complete - done[-1].datetime_start).total_seconds()]
    rows: dict[str, list[float]] = {label: [] for label, _ in STAGES}
    for trial in steady:
        for label, value in stage_seconds(trial.user_attrs.get("timing") or {}).items():
            rows[label].append(value)
    return {
        "cycle": statistics.mean(cycles),
        "first": (done[0].datetime_complete - done[0].datetime_start).total_seconds(),
        "rows": {label: statistics.mean(values) for label, values in rows.items()},
        "wall": wall,
        "trials": len(done),
        "idle": statistics.mean(
            float((t.user_attrs.get("timing") or {}).get("spare_idle", 0.0)) for t in steady
        ),
    }


def table(cases: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """A markdown table: one column per case, seconds and share of the cycle per stage."""
    header = "| stage | " + " | ".join(label for label, _ in cases) + " |"
    lines = [header, "| --- |" + " --- |" * len(cases)]
    for label, _ in STAGES:
        cells = []
        for _, case in cases:
            value = case["rows"][label]
            cells.append(f"{value:.2f} s ({100 * value / case['cycle']:.1f} %)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    other = []
    non_training = []
    for _, case in cases:
        rest = case["cycle"] - sum(case["rows"].values())
        other.append(f"{rest:.2f} s ({100 * rest / case['cycle']:.1f} %)")
        share = 1 - case["rows"]["training"] / case["cycle"]
        non_training.append(f"**{100 * share:.1f} %**")
    lines.append("| between trials, pipes, exit (the rest) | " + " | ".join(other) + " |")
    lines.append(
        "| trial cycle (start to next start) | "
        + " | ".join(f"{c['cycle']:.2f} s" for _, c in cases)
        + " |"
    )
    lines.append("| non-training share | " + " | ".join(non_training) + " |")
    lines.append(
        "| first trial (no spare ready yet) | "
        + " | ".join(f"{c['first']:.2f} s" for _, c in cases)
        + " |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("SWEEP_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 epochs, 1,000 synthetic rows (SQLite only for the synthetic file)",
    )
    parser.add_argument("--trials", type=int, default=4, help="trials per case (at least 3)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 10; quick 2)")
    parser.add_argument("--bundled-only", action="store_true", help="skip the synthetic file")
    parser.add_argument(
        "--synthetic-epochs", type=int, default=None, help="epochs on the synthetic file"
    )
    parser.add_argument(
        "--synthetic-sqlite-only", action="store_true", help="the synthetic file on SQLite only"
    )
    parser.add_argument("--tiny", action="store_true", help="a toy network (smoke runs)")
    parser.add_argument("--block", default=BLOCK, help="the RESULTS.md block to write")
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from sweep.store.rdb import open_storage
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.synth import write_synthetic

    epochs = args.epochs or (2 if args.quick else 10)
    rows = 1000 if args.quick else 10000
    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    load = _records.LoadMonitor()
    load.__enter__()
    tmp = Path(tempfile.mkdtemp(prefix="sweep-breakdown-"))
    datasets = [("bundled K562", Path(BUNDLED_DATA))]
    if not args.bundled_only:
        synthetic = write_synthetic(tmp / "synthetic.npz", rows, seed=0)
        datasets.append((f"synthetic {rows:,} rows", synthetic))
    storages = [("SQLite", f"sqlite:///{tmp / 'bench.db'}")]
    open_storage(storages[0][1], create=True)
    if args.postgres:
        storages.append(("PostgreSQL", args.postgres))
    sections = []
    epochs_of: dict[str, int] = {}
    for data_label, data in datasets:
        cases = []
        synthetic = data_label.startswith("synthetic")
        sqlite_only = synthetic and (args.quick or args.synthetic_sqlite_only)
        data_epochs = (args.synthetic_epochs or epochs) if synthetic else epochs
        epochs_of[data_label] = data_epochs
        for storage_label, url in storages[:1] if sqlite_only else storages:
            for spare in (False, True):
                result = run_case(url, data, data_epochs, args.trials, spare, tmp, args.tiny)
                label = f"{storage_label}, spare {'on' if spare else 'off'}"
                cases.append((label, result))
                print(f"{data_label} / {label}: cycle {result['cycle']:.2f} s", flush=True)
        sections.append((data_label, cases))
    load.__exit__(None, None, None)
    argv = [a for a in _records.script_argv() if "postgres" not in a.lower()]
    if args.postgres:
        argv.insert(0, '--postgres "$SWEEP_TEST_POSTGRES_URL"')
    command = " ".join([".venv/bin/python benchmarks/trial_breakdown.py", *argv])
    lines = [
        "## Where a trial's time goes (trial breakdown, spare off and on)",
        "",
        _records.provenance(
            command, load, started=started_at, seconds=time.perf_counter() - started
        ),
        f"The default trial (notes' defaults{', toy network' if args.tiny else ''}, epochs as "
        "each table says, pruner's per-epoch scoring on), "
        f"{args.trials} trials per column with one worker (`sweep launch`); steady state: "
        "trials 2 to n-1 (the first starts cold, the last has no next start). Seconds per "
        "trial and share of the trial cycle (one trial's start to the next's). Start-up counts "
        "only as long as the trial waited for it: with the spare "
        "on, the next trial's process imports TensorFlow and loads the data while this one "
        "trains (on this CPU the two compete for the same cores). Stage times come from each "
        "trial's `timing` attribute.",
        "",
    ]
    for data_label, cases in sections:
        lines += [f"**{data_label}, {epochs_of[data_label]} epochs**", "", *table(cases), ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        _records.write_block(args.block, text, args.results)
        print(f"wrote block {args.block!r} of {args.results}")


if __name__ == "__main__":
    main()
