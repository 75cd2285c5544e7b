"""KerasTuner (RandomSearch, Hyperband) on NotesVAE vs sweep (TPE + median or Hyperband pruning).

On the bundled real data with the notes' space and one budget of training epochs
(``--trials`` x ``--max-epochs``):

* ``kt-random``: ``keras_tuner.RandomSearch(NotesVAE(...), max_trials=trials)``, each trial
  ``max_epochs`` epochs, in one process;
* ``kt-hyperband``: ``keras_tuner.Hyperband(NotesVAE(...), max_epochs=max_epochs, factor=3)``, in
  one process, stopped once it has spent the budget;
* ``sweep-median`` / ``sweep-hyperband``: a sweep study (SQLite, one worker, a child process per
  trial) of ``trials`` trials with TPE and median or Hyperband pruning (epochs = ``max_epochs``).

Each method runs in its own process. Reported: the best label-hidden expression AUROC
(``expression_hidden.auroc``, validation split) against the epochs spent; wall time; the peak
resident memory of the tuning process (for sweep, the worker's own process and, separately, the
largest trial process); and the best configuration of each method confirmed by retraining it
with ``--confirm-seeds`` other seeds (mean and spread of the same metric, validation and test
splits), since one lucky seed can win a search. ``--quick`` runs a few trials of 1-2 epochs, to
check the script, and says so in its block of RESULTS.md (written through :mod:`_records`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = _records.REPO
RESULTS = _records.RESULTS
METRIC = "expression_hidden.auroc"
METHODS = ("kt-random", "kt-hyperband", "sweep-median", "sweep-hyperband")


def _peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def _write_json(path: str | Path, value: Any) -> None:
    """Write ``value`` as JSON atomically (a reader never sees half a file)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)


def _notes_vae(args: argparse.Namespace, log: list[dict[str, Any]]) -> Any:
    """A NotesVAE whose ``fit`` logs the epochs it spent and the metric it reached.

    The log so far is written to ``args.out`` after every trial, so a tuning process killed
    for its memory still leaves its trials behind.
    """
    from sweep.train.kerastuner import NotesVAE

    budget = args.trials * args.max_epochs

    class CountingNotesVAE(NotesVAE):  # type: ignore[misc]
        def fit(self, hp: Any, model: Any, *a: Any, **kw: Any) -> dict[str, float]:
            import keras_tuner

            spent = sum(r["epochs"] for r in log)
            if spent >= budget:
                raise keras_tuner.errors.FatalError("epoch budget spent")
            epochs = int(kw.get("epochs", 1)) - int(kw.get("initial_epoch") or 0)
            metrics = super().fit(hp, model, *a, **kw)
            log.append(
                {
                    "epochs": max(epochs, 1),
                    "value": metrics.get(METRIC),
                    "params": self.params(hp).to_dict(),
                }
            )
            _write_json(args.out, {"runs": log, "stopped": "", "partial": True})
            return metrics

    return CountingNotesVAE(space=args.space, data=args.data)


def run_keras_tuner(method: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import keras_tuner

    log: list[dict[str, Any]] = []
    hypermodel = _notes_vae(args, log)
    common = {
        "objective": hypermodel.objective,
        "directory": str(workdir / method),
        "project_name": "notes",
        "seed": args.seed,
        "overwrite": True,
    }
    if method == "kt-random":
        tuner: Any = keras_tuner.RandomSearch(hypermodel, max_trials=args.trials, **common)
    else:
        tuner = keras_tuner.Hyperband(hypermodel, max_epochs=args.max_epochs, factor=3, **common)
    stopped = ""
    try:
        tuner.search(epochs=args.max_epochs, verbose=0)
    except keras_tuner.errors.FatalError as e:
        stopped = str(e)
    return {"runs": log, "stopped": stopped}


def run_sweep(method: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import optuna

    from sweep.config import RunOptions
    from sweep.config import StudySettings
    from sweep.run.launch import LaunchRequest
    from sweep.run.launch import create_study
    from sweep.run.launch import run_workers

    url = f"sqlite:///{workdir / (method + '.db')}"
    request = LaunchRequest(
        storage_url=url,
        study_name=method,
        space=args.space,
        data_path=args.data,
        settings=StudySettings(
            n_trials=args.trials,
            max_seeds=1,  # one fit per trial, as KerasTuner
            sampler="tpe",
            pruner=method.removeprefix("sweep-"),
            seed=args.seed,
            max_consecutive_failures=max(args.trials, 5),
        ),
        overrides={"epochs": args.max_epochs},
        baseline="none",
    )
    name = create_study(request)
    run_workers(url, name, RunOptions())
    study = optuna.load_study(study_name=name, storage=url)
    runs = []
    for t in sorted(study.get_trials(), key=lambda t: t.datetime_complete or t.datetime_start):
        epochs = t.user_attrs.get("epochs_run") or len(t.intermediate_values)
        value = t.value if t.state.name == "COMPLETE" else None
        runs.append(
            {
                "epochs": int(epochs or 0),
                "value": value,
                "params": t.user_attrs.get("params_full"),
                "state": t.state.name,
            }
        )
    return {"runs": runs, "stopped": ""}


def run_method(method: str, args: argparse.Namespace) -> int:
    """Child-process entry: run one method, write its JSON to ``args.out``."""
    workdir = Path(tempfile.mkdtemp(prefix=f"kt_vs_sweep_{method}_"))
    started = time.perf_counter()
    try:
        if method.startswith("kt-"):
            result = run_keras_tuner(method, args, workdir)
        else:
            result = run_sweep(method, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.update(
        method=method,
        seconds=time.perf_counter() - started,
        peak_self_mib=_peak_mib(resource.RUSAGE_SELF),
        peak_children_mib=_peak_mib(resource.RUSAGE_CHILDREN),
    )
    Path(args.out).write_text(json.dumps(result))
    return 0


def run_guarded(
    method: str, command: list[str], env: dict[str, str], out: Path, limit_gib: float
) -> dict[str, Any]:
    """Run one method's process; kill it if its own RSS passes ``limit_gib``.

    A killed (or crashed) method keeps the trials it logged, with the reason in ``stopped``,
    its wall time and the largest RSS sampled (every second) as its peak.
    """
    import psutil

    started = time.perf_counter()
    child = subprocess.Popen(command, env=env)
    watched = psutil.Process(child.pid)
    peak, stopped = 0.0, ""
    while child.poll() is None:
        try:
            rss = watched.memory_info().rss / 2**20
        except psutil.Error:
            rss = 0.0
        peak = max(peak, rss)
        if rss > limit_gib * 1024:
            child.kill()
            stopped = f"killed: the tuning process passed {limit_gib:g} GiB RSS"
        time.sleep(1.0)
    if child.returncode == 0 and not stopped:
        return dict(json.loads(out.read_text()))
    partial = json.loads(out.read_text()) if out.exists() else {"runs": []}
    done = len(partial.get("runs") or [])
    return {
        **partial,
        "method": method,
        "stopped": f"{stopped or f'exited with code {child.returncode}'} after {done} trials",
        "seconds": time.perf_counter() - started,
        "peak_self_mib": peak,
        "peak_children_mib": 0.0,
    }


def confirm(params: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Retrain ``params`` with other seeds (full epochs); the metric on validation and test.

    Each seed is one ``sweep trial --score-test`` in a fresh process, as a researcher runs it
    (TensorFlow does not give back a model's memory within a process).
    """
    val, test = [], []
    with tempfile.TemporaryDirectory(prefix="kt_vs_sweep_confirm_") as tmp:
        params_file = Path(tmp) / "params.json"
        params_file.write_text(json.dumps(params))
        for seed in range(1, args.confirm_seeds + 1):
            command = [
                sys.executable, "-m", "sweep", "--quiet", "trial", "--params", str(params_file),
                "--seed", str(seed), "--epochs", str(args.max_epochs), "--score-test", "--json",
            ]  # fmt: skip
            if args.data:
                command += ["--data", args.data]
            done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp)
            result = json.loads(done.stdout)
            val.append(float(result["metrics"][METRIC]))
            test.append(float(result.get("test_metrics", {}).get(f"test.{METRIC}", float("nan"))))
    return {"val": val, "test": test}


def _curve(runs: list[dict[str, Any]]) -> list[tuple[int, float | None]]:
    spent, best, out = 0, None, []
    for r in runs:
        spent += r["epochs"]
        if r["value"] is not None and (best is None or r["value"] > best):
            best = r["value"]
        out.append((spent, best))
    return out


def _best_params(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [r for r in runs if r["value"] is not None and r.get("params")]
    return max(done, key=lambda r: r["value"])["params"] if done else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f} (n={len(values)})"


def markdown(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    budget = args.trials * args.max_epochs
    mode = "QUICK MODE (a script check, not a result)" if args.quick else "full run"
    lines = [
        f"### KerasTuner vs sweep on NotesVAE: {mode}",
        "",
        _records.provenance(
            _records.command_line("kerastuner_vs_sweep.py", args.argv),
            args.load,
            started=args.started_at,
            seconds=args.seconds,
            extra_versions={"keras-tuner": _records.package_version("keras-tuner")},
        ),
        f"Data: {args.data or 'the bundled K562 data'}; space `{args.space}`; budget "
        f"{args.trials} trials x {args.max_epochs} epochs = {budget} epochs; seed {args.seed}; "
        f"best configurations confirmed with {args.confirm_seeds} other seed(s).",
        "",
        f"| method | trials | epochs spent | best {METRIC} (search) | confirmed, validation "
        "| confirmed, test | wall time | peak RSS, tuning process | peak RSS, largest trial "
        "process |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        curve = _curve(r["runs"])
        spent, best = curve[-1] if curve else (0, None)
        c = r.get("confirmed") or {}
        child = f"{r['peak_children_mib']:.0f} MiB" if r["method"].startswith("sweep") else "-"
        lines.append(
            f"| {r['method']} | {len(r['runs'])} | {spent} | {_fmt(best)} | "
            f"{_spread(c.get('val', []))} | {_spread(c.get('test', []))} | "
            f"{r['seconds']:.0f} s | {r['peak_self_mib']:.0f} MiB | {child} |"
        )
    lines += ["", "Best so far against epochs spent (epochs: best):", ""]
    for r in results:
        points = ", ".join(f"{e}: {_fmt(b)}" for e, b in _curve(r["runs"]))
        lines.append(f"- {r['method']}: {points or '-'}")
    lines += [
        "",
        "- KerasTuner trains in the tuning process itself; sweep's worker process never "
        "imports TensorFlow, and each trial's TensorFlow lives in its own process (the last "
        "column: the largest of them).",
        "- Hyperband (KerasTuner) is stopped once it has spent the epoch budget; the sweep "
        "methods run their trials and prune, so they may spend less.",
        f"- A method's tuning process is killed past {args.memory_limit_gib:g} GiB RSS (sampled "
        "every second; the machine has no room for more beside other work); it keeps the "
        "trials it finished, and its peak is the largest sample.",
        "- Confirmation: each seed is a `sweep trial --score-test` in a fresh process.",
    ]
    if any(r.get("stopped") for r in results):
        lines.append(
            "- Stopped early: "
            + ", ".join(f"{r['method']} ({r['stopped']})" for r in results if r.get("stopped"))
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data file (default: the bundled data)")
    parser.add_argument("--space", default="notes")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--confirm-seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--quick", action="store_true", help="3 trials of 2 epochs, 1 seed")
    parser.add_argument(
        "--memory-limit-gib",
        type=float,
        default=12.0,
        help="kill a method's tuning process past this RSS (its trials so far are kept)",
    )
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--run-method", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.quick:
        args.trials, args.max_epochs, args.confirm_seeds = 3, 2, 1
    if args.run_method:
        return run_method(args.run_method, args)
    args.started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    args.load = _records.LoadMonitor()
    args.load.__enter__()
    results = []
    with tempfile.TemporaryDirectory(prefix="kt_vs_sweep_") as tmp:
        for method in args.methods.split(","):
            out = Path(tmp) / f"{method}.json"
            command = [
                sys.executable,
                __file__,
                *args.argv,
                "--run-method",
                method,
                "--out",
                str(out),
            ]
            env = {**os.environ, "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}"}
            print(f"running {method} ...", flush=True)
            results.append(run_guarded(method, command, env, out, args.memory_limit_gib))
    for r in results:
        best = _best_params(r["runs"])
        r["confirmed"] = confirm(best, args) if best else None
        print(r["method"], "confirmed", r["confirmed"], flush=True)
    args.load.__exit__(None, None, None)
    args.seconds = time.perf_counter() - started
    text = markdown(results, args)
    print(text)
    if not args.no_append:
        key = "kerastuner_vs_sweep" + ("/quick" if args.quick else "")
        _records.write_block(key, text, RESULTS)
        print(f"wrote block {key!r} of {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
