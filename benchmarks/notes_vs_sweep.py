"""B1, the notes against the sweep: the notes' baseline, the best of `notes` and of `notes_wide`.

Run by hand (not a test); long on a CPU, so every step is resumable (a killed run continues
where it stopped when run again with the same arguments):

    .venv/bin/python benchmarks/notes_vs_sweep.py          # 40 trials x 10 epochs, 3 seeds
    .venv/bin/python benchmarks/notes_vs_sweep.py --trials 12 --epochs 4   # shorter (stated)
    .venv/bin/python benchmarks/notes_vs_sweep.py --workers 2   # two local workers
    .venv/bin/python benchmarks/notes_vs_sweep.py --quick  # a smoke run

Everything goes through the CLI a researcher uses, on the bundled K562 data with the default
split, into a SQLite file (``--storage`` for another): for each of the two spaces, ``sweep
launch --space S --n-trials N`` (trial 0 is the notes' baseline, and the supervised reference is
fitted at launch), then ``sweep confirm --top 1 --seeds S`` (the best trial and the baseline,
re-run with fresh seeds and scored on validation and on the untouched test split; the reference
is scored on test). The table is read back with :func:`sweep.present.confirmed.
confirmed_with_reference` and written as the ``notes_vs_sweep`` block of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parent.parent
BLOCK = "notes_vs_sweep"
SPACES = ("notes", "notes_wide")
OBJECTIVE = "expression_hidden.auroc"
#: (metric, label) in the table, test split, mean ± sd over seeds.
COLUMNS = (
    ("expression_hidden.auroc", "label-hidden AUROC"),
    ("expression_hidden.f1", "F1 at 0.5"),
    ("expression_hidden.f1_at_threshold", "F1 at the chosen threshold"),
    ("expression.accuracy", "accuracy"),
    ("sections.mean_auprc_lift", "section AUPRC lift"),
    ("latent.active_units", "active units"),
)


def sweep_cli(*args: str, storage: str) -> None:
    """Run ``sweep ARGS`` in a fresh process, the way a researcher does."""
    env = {**os.environ, "SWEEP_STORAGE": storage}
    command = [sys.executable, "-m", "sweep", "--quiet", *args]
    print("$ sweep " + " ".join(args), flush=True)
    subprocess.run(command, check=True, env=env, cwd=REPO)


def study_exists(storage: str, name: str) -> bool:
    from sweep.errors import StorageError
    from sweep.store.read import list_studies

    try:
        return any(s["name"] == name for s in list_studies(storage))
    except StorageError:  # no database yet (a SQLite file that does not exist)
        return False


def run_space(space: str, args: argparse.Namespace) -> str:
    """Sweep ``space`` to its budget and confirm its best; return the study name."""
    name = f"b1-{space}-n{args.trials}-e{args.epochs}"
    if not study_exists(args.storage, name):
        sweep_cli(
            "launch", "--space", space, "--study", name, "--n-trials", str(args.trials),
            "--set", f"epochs={args.epochs}", "--seed", str(args.seed), "--no-run",
            storage=args.storage,
        )  # fmt: skip
    workers = ("--workers", str(args.workers))
    sweep_cli("resume", name, *workers, storage=args.storage)
    sweep_cli(
        "confirm", name, "--top", "1", "--seeds", str(args.seeds), *workers, storage=args.storage
    )
    return name


def cell(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    if stat.get("sd") is None:
        return f"{stat['mean']:.3f}"
    return f"{stat['mean']:.3f} ± {stat['sd']:.3f}"


def render(
    summaries: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    load: _records.LoadMonitor,
    started_at: datetime.datetime,
    seconds: float,
) -> str:
    argv = list(sys.argv[1:])
    lines = [
        "## B1: the notes against the sweep" + (" (quick smoke run)" if args.quick else ""),
        "",
        _records.provenance(
            _records.command_line("notes_vs_sweep.py", argv),
            load,
            started=started_at,
            seconds=seconds,
        ),
        f"Bundled K562 data, default split (test held out). Each space: `sweep launch` "
        f"({args.trials} trials, **{args.epochs} epochs** per trial, {args.workers} local "
        "worker(s)"
        + (", the notes ran 10" if args.epochs != 10 else "")
        + f"; trial 0 = the notes' baseline), then `sweep confirm --top 1 --seeds {args.seeds}`: "
        "the best trial by validation and the baseline re-run with fresh seeds, scored on the "
        "test split nobody tuned on. Cells: **test**, mean ± sd over seeds (the reference is "
        "deterministic: one fit).",
        "",
        "| configuration | val label-hidden AUROC | "
        + " | ".join(f"test {label}" for _, label in COLUMNS)
        + " |",
        "|---|---:|" + "---:|" * len(COLUMNS),
    ]
    reference_row = None
    verdicts = []
    for space, summary in summaries.items():
        for trial in summary["trials"]:
            if trial["baseline"] and space != SPACES[0]:
                continue  # the same configuration as in the first space's study
            label = (
                f"the notes' baseline (#{trial['number']})"
                if trial["baseline"]
                else f"best of `{space}` (#{trial['number']})"
            )
            lines.append(
                f"| {label} | {cell(trial['val'].get(OBJECTIVE))} | "
                + " | ".join(cell(trial["test"].get(m)) for m, _ in COLUMNS)
                + " |"
            )
            gain = (trial.get("gain") or {}).get(OBJECTIVE, {}).get("test")
            if gain and gain.get("mean") is not None:
                se = gain.get("se") or 0.0
                verdicts.append(
                    f"- best of `{space}` vs the baseline, test {OBJECTIVE}: "
                    f"{gain['mean']:+.3f} ± {se:.3f} (standard error): "
                    + (
                        "larger than the spread (|gain| > 2 SE)"
                        if abs(gain["mean"]) > 2 * se
                        else "within the spread"
                    )
                )
        reference = summary.get("reference")
        if reference and reference_row is None:
            reference_row = reference
    if reference_row:
        val = reference_row.get("val") or {}
        test = reference_row.get("test") or {}

        def one(metrics: dict[str, Any], m: str) -> str:
            value = metrics.get(m)
            return f"{value:.3f}" if isinstance(value, int | float) else "-"

        lines.append(
            f"| supervised {reference_row['label']} | {one(val, OBJECTIVE)} | "
            + " | ".join(one(test, m) for m, _ in COLUMNS)
            + " |"
        )
        best_wide = next(
            (t for t in summaries.get("notes_wide", {}).get("trials", []) if not t["baseline"]),
            None,
        )
        ref_test = test.get(OBJECTIVE)
        if best_wide and isinstance(ref_test, int | float):
            wide = best_wide["test"].get(OBJECTIVE) or {}
            if wide.get("mean") is not None:
                verdicts.append(
                    f"- target, confirmed best of `notes_wide` at or above the supervised "
                    f"reference on test: {wide['mean']:.3f} vs {ref_test:.3f}: "
                    + ("**met**" if wide["mean"] >= ref_test else "**not met**")
                )
    lines += ["", *verdicts]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--workers", type=int, default=1, help="local workers (sweep and confirm)")
    parser.add_argument("--quick", action="store_true", help="3 trials x 1 epoch, 2 seeds")
    parser.add_argument("--storage", default=None, help="default: benchmarks/.cache/b1.db")
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.epochs, args.seeds = 3, 1, 2
    if args.storage is None:
        cache = REPO / "benchmarks" / ".cache"
        cache.mkdir(parents=True, exist_ok=True)
        args.storage = f"sqlite:///{cache / 'b1.db'}"

    from sweep.present.confirmed import confirmed_with_reference

    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    summaries: dict[str, dict[str, Any]] = {}
    with _records.LoadMonitor() as load:
        for space in SPACES:
            name = run_space(space, args)
            summary = confirmed_with_reference(args.storage, name)
            if summary is None:
                print(f"study {name} has no confirmation runs", file=sys.stderr)
                return 1
            summaries[space] = summary
    text = render(summaries, args, load, started_at, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        key = f"{BLOCK}/quick" if args.quick else BLOCK
        _records.write_block(key, text, args.results)
        print(f"wrote block {key!r} of {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
