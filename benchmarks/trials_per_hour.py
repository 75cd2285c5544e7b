"""Trials per hour with 1 and 2 local workers, spare off and on; the spare's memory.

Run by hand (not a test):

    .venv/bin/python benchmarks/trials_per_hour.py            # 10 epochs, 6 trials per run
    .venv/bin/python benchmarks/trials_per_hour.py --quick    # 2 epochs, 4 trials per run

``sweep launch`` of the default space (``notes``, its baseline as trial 0) on the bundled data,
SQLite, for each of 1 and 2 workers with ``--no-spare`` and with the spare. Trials per hour are
counted two ways: over the whole run (study creation, split check and the first, cold, trial
included) and at steady state (from the K-th completed trial to the last, K = workers). Then
the spare's extra memory: a :class:`sweep.run.isolation.SparePool` is warmed on the bundled
data and the waiting spare's resident (RSS) and unique (USS) memory is read. Writes the
``trials_per_hour`` block of benchmarks/RESULTS.md (``--no-write``: print).
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

BLOCK = "trials_per_hour"


def run(tmp: Path, workers: int, spare: bool, trials: int, epochs: int) -> dict[str, Any]:
    """One ``sweep launch`` of the default space; its rates."""
    import optuna

    url = f"sqlite:///{tmp / f'tph-{workers}-{int(spare)}.db'}"
    command = [
        sys.executable, "-m", "sweep", "-q", "launch", "--study", "tph", "--n-trials",
        str(trials), "--workers", str(workers), "--set", f"epochs={epochs}", "--storage", url,
        "--max-seeds", "1",
    ]  # fmt: skip
    if not spare:
        command.append("--no-spare")
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp)
    wall = time.perf_counter() - started
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="tph", storage=url)
    done = sorted(
        t.datetime_complete.timestamp()
        for t in study.trials
        if t.state.name in ("COMPLETE", "PRUNED")
    )
    steady = None
    if len(done) > workers:
        steady = 3600 * (len(done) - workers) / (done[-1] - done[workers - 1])
    return {"trials": len(done), "wall": wall, "whole": 3600 * len(done) / wall, "steady": steady}


def spare_memory() -> dict[str, float]:
    """MiB of a warm, waiting spare on the bundled data (and of this benchmark, for scale)."""
    import psutil

    from sweep.run.isolation import SparePool
    from sweep.run.protocol import DataSplit
    from sweep.train.data import BUNDLED_DATA

    preload = DataSplit(str(BUNDLED_DATA), 0.2, 0.2, 0)
    with SparePool(preload) as pool:
        if not pool.warm_up(timeout_s=600) or pool.spare_pid is None:
            raise SystemExit("the spare did not get ready")
        info = psutil.Process(pool.spare_pid).memory_full_info()
    return {"rss": info.rss / 2**20, "uss": info.uss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs, 4 trials per run")
    parser.add_argument("--trials", type=int, default=None, help="trials per run")
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    epochs = 2 if args.quick else 10
    trials = args.trials or (4 if args.quick else 6)

    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    load = _records.LoadMonitor()
    load.__enter__()
    tmp = Path(tempfile.mkdtemp(prefix="sweep-tph-"))
    results = {}
    for workers in (1, 2):
        for spare in (False, True):
            results[(workers, spare)] = run(tmp, workers, spare, trials, epochs)
            print(f"workers {workers}, spare {spare}: {results[(workers, spare)]}", flush=True)
    memory = spare_memory()
    load.__exit__(None, None, None)
    command = " ".join([".venv/bin/python benchmarks/trials_per_hour.py", *_records.script_argv()])
    lines = [
        "## Trials per hour: local workers, warm spare off and on",
        "",
        _records.provenance(
            command, load, started=started_at, seconds=time.perf_counter() - started
        ),
        f"`sweep launch` of the default space (`notes`, baseline as trial 0) on the bundled "
        f"K562 data, SQLite, {epochs} epochs, {trials} trials per run. Whole run: from the "
        "command's start to its exit (study creation, split check and the cold first trial "
        "included). Steady state: from the K-th completed trial to the last (K = workers).",
        "",
        "| workers | spare | trials | whole run (trials/h) | steady state (trials/h) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (workers, spare), r in results.items():
        steady = f"{r['steady']:.0f}" if r["steady"] else "-"
        lines.append(
            f"| {workers} | {'on' if spare else 'off'} | {r['trials']} | {r['whole']:.0f} | "
            f"{steady} |"
        )
    lines.append("")
    for workers in (1, 2):
        off, on = results[(workers, False)], results[(workers, True)]
        if off["steady"] and on["steady"]:
            lines.append(
                f"Spare on / off, {workers} worker(s): {on['steady'] / off['steady']:.2f}x at "
                f"steady state, {on['whole'] / off['whole']:.2f}x over the whole run.  "
            )
    lines += [
        "",
        f"The waiting spare (TensorFlow imported, bundled data loaded): RSS "
        f"{memory['rss']:.0f} MiB, of which {memory['uss']:.0f} MiB unique to it (USS). That "
        "is the extra memory per worker; `--no-spare` saves it.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        _records.write_block(BLOCK, text, args.results)
        print(f"wrote block {BLOCK!r} of {args.results}")


if __name__ == "__main__":
    main()
