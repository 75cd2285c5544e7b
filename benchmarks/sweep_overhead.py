"""Sweep bookkeeping and throughput: how much of a trial is spent talking to the study database.

Run by hand (not a test):

    .venv/bin/python benchmarks/sweep_overhead.py --postgres "$SWEEP_TEST_POSTGRES_URL"

1. Bookkeeping per trial, SQLite and PostgreSQL: a real worker (``run_worker``, real child
   processes, the tiny space, 1 epoch) runs a few trials; every storage call it makes (claiming
   under the budget lock, heartbeats aside, user attributes, per-epoch reports, tell) is timed
   by wrapping the storage class. The total per trial is compared with the training time of one
   default trial of the notes' model on the bundled data (measured here, in-process).
2. Trials per hour with 1 and 2 workers on PostgreSQL: ``sweep launch --workers K`` on the tiny
   space, wall clock from launch to the budget.

Prints a markdown section and writes it as the ``sweep_overhead`` block of
benchmarks/RESULTS.md (replacing only that block; ``--no-write`` only prints it).
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parent.parent
BLOCK = "sweep_overhead"
TINY = REPO / "search_spaces" / "tiny.yaml"


def timed_storage_class(totals: dict[str, float]) -> Any:
    """The worker's storage class with every public call timed into ``totals``."""
    import sweep.store.rdb as storage_module
    from sweep.store._optuna_schema import RETRIED_METHODS

    base = storage_module._reconnecting_storage_class()
    depth = threading.local()

    def wrap(name: str) -> Any:
        method = getattr(base, name)

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            outermost = getattr(depth, "n", 0) == 0  # public calls nest private ones
            depth.n = getattr(depth, "n", 0) + 1
            started = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                depth.n -= 1
                if outermost and name != "record_heartbeat":  # heartbeats run beside training
                    totals[name] += time.perf_counter() - started

        return timed

    names = [n for n in RETRIED_METHODS] + ["get_trial_param"]
    return type("TimedStorage", (base,), {n: wrap(n) for n in names if hasattr(base, n)})


def bookkeeping(url: str, data: Path, n_trials: int) -> dict[str, float]:
    import sweep.run.worker as worker_module
    import sweep.store.rdb as storage_module
    from sweep.config import StudySettings
    from sweep.run.launch import LaunchRequest
    from sweep.run.launch import create_study
    from sweep.run.worker import WorkerSettings
    from sweep.run.worker import run_worker

    totals: dict[str, float] = defaultdict(float)
    timed = timed_storage_class(totals)
    original_class = storage_module._reconnecting_storage_class
    original_lock = worker_module.budget_lock
    lock_time = {"s": 0.0}

    class TimedLock:
        def __init__(self, *args: Any) -> None:
            self.inner = original_lock(*args)

        def __enter__(self) -> None:
            started = time.perf_counter()
            self.inner.__enter__()
            lock_time["s"] += time.perf_counter() - started

        def __exit__(self, *exc: Any) -> None:
            started = time.perf_counter()
            self.inner.__exit__(*exc)
            lock_time["s"] += time.perf_counter() - started

    storage_module._reconnecting_storage_class = lambda: timed  # type: ignore[assignment]
    worker_module.budget_lock = TimedLock  # type: ignore[assignment]
    try:
        name = create_study(
            LaunchRequest(
                storage_url=url,
                study_name=f"bk-{time.time_ns()}",
                space=str(TINY),
                data_path=str(data),
                settings=StudySettings(n_trials=n_trials, pruner="median", max_seeds=1),
                overrides={"epochs": 1},
            )
        )
        totals.clear()
        started = time.perf_counter()
        summary = run_worker(WorkerSettings(study_name=name, storage_url=url))
        wall = time.perf_counter() - started
    finally:
        storage_module._reconnecting_storage_class = original_class
        worker_module.budget_lock = original_lock
    storage_s = sum(totals.values()) + lock_time["s"]
    return {
        "trials": summary.ran,
        "wall_s": wall,
        "bookkeeping_s": storage_s,
        "per_trial_ms": 1000 * storage_s / max(summary.ran, 1),
    }


def notes_trial_seconds() -> float:
    """Training + scoring time of one default trial (the notes' model) on the bundled data."""
    code = "from sweep.train.engine import run_trial; r = run_trial(); print('SECONDS', r.seconds)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("SECONDS"))
    return float(line.split()[1])


def throughput(url: str, data: Path, workers: int, n_trials: int) -> float:
    env = {**os.environ, "SWEEP_STORAGE": url}
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep",
            "-q",
            "launch",
            "--space",
            str(TINY),
            "--data",
            str(data),
            "--study",
            f"tp-{workers}-{time.time_ns()}",
            "--n-trials",
            str(n_trials),
            "--max-seeds",
            "1",
            "--workers",
            str(workers),
            "--set",
            "epochs=1",
            "--pruner",
            "none",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return 3600 * n_trials / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("SWEEP_TEST_POSTGRES_URL"))
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from sweep.train.synth import write_synthetic

    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    load = _records.LoadMonitor()
    load.__enter__()

    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    data = write_synthetic(tmp / "synthetic.npz", 240, seed=0)
    notes_s = notes_trial_seconds()
    rows = []
    storages = [("SQLite", f"sqlite:///{tmp / 'bench.db'}")]
    if args.postgres:
        storages.append(("PostgreSQL", args.postgres))
    for label, url in storages:
        if label == "SQLite":
            from sweep.store.rdb import open_storage

            open_storage(url, create=True)
        result = bookkeeping(url, data, args.trials)
        rows.append((label, result))
    workers_rows: list[tuple[int, float]] = []
    if args.postgres:
        workers_rows = [(w, throughput(args.postgres, data, w, 8)) for w in (1, 2)]
    load.__exit__(None, None, None)
    argv = ['--postgres "$SWEEP_TEST_POSTGRES_URL"'] if args.postgres else []
    if args.trials != 6:
        argv.append(f"--trials {args.trials}")
    command = " ".join([".venv/bin/python benchmarks/sweep_overhead.py", *argv])
    lines = [
        "## Sweep bookkeeping and throughput",
        "",
        _records.provenance(
            command, load, started=started_at, seconds=time.perf_counter() - started
        ),
        f"Training time of one default trial (notes' model, bundled K562 data, 10 epochs): "
        f"{notes_s:.1f} s. Storage time is every storage call a worker makes for one trial "
        "(claiming it under the budget lock, its parameters, per-epoch reports, the user "
        "attributes, tell), heartbeats excluded since they run beside training.",
        "",
        "| storage | trials | storage time per trial | share of a notes trial |",
        "| --- | --- | --- | --- |",
    ]
    for label, result in rows:
        share = result["per_trial_ms"] / 1000 / notes_s
        lines.append(
            f"| {label} | {result['trials']} | {result['per_trial_ms']:.0f} ms | "
            f"{100 * share:.2f} % |"
        )
    if workers_rows:
        lines += [
            "",
            "| workers (PostgreSQL, tiny space, 1 epoch) | trials per hour |",
            "| --- | --- |",
        ]
        for workers, per_hour in workers_rows:
            lines.append(f"| {workers} | {per_hour:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        _records.write_block(BLOCK, text, args.results)
        print(f"wrote block {BLOCK!r} of {args.results}")


if __name__ == "__main__":
    main()
