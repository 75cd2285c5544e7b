"""Benchmark: ``sweep best`` against ``optuna best-trial`` on studies of 10,000 COMPLETE trials.

Run by hand, not a test::

    .venv/bin/python benchmarks/best_speed.py                      # SQLite only
    SWEEP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@host/db \\
        .venv/bin/python benchmarks/best_speed.py                  # SQLite and PostgreSQL

For each backend it builds one database holding three studies of ``--trials`` COMPLETE trials
(rows inserted directly into Optuna's tables, in one transaction, for a fast set-up):

* ``bench-metrics``: what a sweep worker writes: 5 searched params (2 categorical), user
  attributes ``metrics`` (30 scalar metrics in one JSON dict), ``params_full``, ``flags``,
  ``seconds``, ``elbo_beta``, ``epochs_run``, ``worker``, ``history`` (10 epochs x 4 curves) and
  ``diagnostics`` (50 floats).
* ``bench-attrs``: the same plus the 30 metrics again as 30 separate user attributes (the
  layout the issue compared against).
* ``bench-pareto``: like ``bench-metrics`` with two objectives (maximize, minimize).

Then it times each command as a subprocess (median wall time of ``--repeat`` runs) and its peak
RSS (``/usr/bin/time -v``'s maximum resident set size), checks that both tools name the same
best trial, prints a markdown table and, unless ``--no-append``, writes it as the ``best_speed``
block of ``benchmarks/RESULTS.md`` (replacing that block only; :mod:`_records`). PostgreSQL runs
use a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parent.parent
BLOCK = "best_speed"
VENV_BIN = Path(sys.executable).parent
RESULTS = _records.RESULTS
SECTION = "## sweep best on 10,000 trials"
TIME = "/usr/bin/time"
SECTIONS = ("H3K9me3", "H3K27ac")
FALLBACK = (
    "import sys\n"
    "from sweep.store.read import best_trials\n"
    "from sweep.present.formatting import render\n"
    "sys.stdout.write(render(best_trials(sys.argv[1], sys.argv[2]), 'json', kind='best'))\n"
)


def metric_names() -> list[str]:
    """The 30 scalar metrics of a trial, in the order sweep.train.metrics writes them."""
    names = [f"expression.{m}" for m in ("mse", "accuracy", "f1", "precision", "recall")]
    names += ["expression.auroc", "expression.auprc"]
    names += [f"expression_hidden.{m}" for m in ("mse", "accuracy", "f1", "precision")]
    names += ["expression_hidden.recall", "expression_hidden.auroc", "expression_hidden.auprc"]
    for section in SECTIONS:
        names += [
            f"section.{section}.{m}"
            for m in ("count_mse", "output_mse", "auprc", "predicted_rate", "actual_rate")
        ]
    names += ["sections.mean_output_mse", "sections.mean_count_mse"]
    names += ["latent.active_units", "latent.kl_mean", "collapse.n_flags", "collapse.any"]
    return names


def build_database(url: str, n_trials: int, seed: int = 0) -> float:
    """Create the three studies in ``url``; returns the set-up time in seconds."""
    import optuna
    from optuna.storages._rdb import models
    from optuna.trial import TrialState

    from sweep.config import STUDY_ATTR
    from sweep.config import study_config
    from sweep.space import load_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    space = load_space(REPO / "search_spaces" / "notes.yaml")
    distributions = space.distributions()
    dist_json = {
        name: optuna.distributions.distribution_to_json(d) for name, d in distributions.items()
    }
    storage = optuna.storages.RDBStorage(url)
    rng = random.Random(seed)
    names = metric_names()
    value_type = models.TrialValueModel.TrialValueType.FINITE
    t0 = datetime.datetime(2025, 1, 1)
    trial_id = 0
    with storage.engine.connect() as conn:
        max_id = conn.exec_driver_sql("SELECT MAX(trial_id) FROM trials").scalar()
        trial_id = int(max_id or 0)
    for study_name, variant, directions in (
        ("bench-metrics", "metrics", ["maximize"]),
        ("bench-attrs", "attrs", ["maximize"]),
        ("bench-pareto", "metrics", ["maximize", "minimize"]),
    ):
        optuna.create_study(storage=storage, study_name=study_name, directions=directions)
        study_id = storage.get_study_id_from_name(study_name)
        raw = space.to_json()
        if len(directions) == 2:
            raw["objective"] = [
                {"metric": "expression.f1", "direction": "maximize"},
                {"metric": "sections.mean_output_mse", "direction": "minimize"},
            ]
        config = study_config(
            raw,
            data_path="bench.npz",
            n_trials=n_trials,
            seed=seed,
            pruner="none",
            max_consecutive_failures=3,
        )
        storage.set_study_user_attr(study_id, STUDY_ATTR, config.to_json())
        trials, values, params, attrs = [], [], [], []
        for number in range(n_trials):
            trial_id += 1
            begin = t0 + datetime.timedelta(minutes=3 * number)
            trials.append(
                {
                    "trial_id": trial_id,
                    "number": number,
                    "study_id": study_id,
                    "state": TrialState.COMPLETE,
                    "datetime_start": begin,
                    "datetime_complete": begin + datetime.timedelta(seconds=170),
                }
            )
            sampled = {}
            for name, dist in distributions.items():
                internal = _sample(dist, rng)
                sampled[name] = dist.to_external_repr(internal)
                params.append(
                    {
                        "trial_id": trial_id,
                        "param_name": name,
                        "param_value": internal,
                        "distribution_json": dist_json[name],
                    }
                )
            metrics = {m: rng.random() for m in names}
            for objective, key in enumerate(
                ["expression.auroc"]
                if len(directions) == 1
                else [
                    "expression.f1",
                    "sections.mean_output_mse",
                ]
            ):
                values.append(
                    {
                        "trial_id": trial_id,
                        "objective": objective,
                        "value": metrics[key],
                        "value_type": value_type,
                    }
                )
            user = {
                "params_full": {**space.fixed, **sampled},
                "metrics": metrics,
                "flags": [],
                "seconds": 170.0,
                "elbo_beta": 12.0,
                "epochs_run": 10,
                "worker": "bench:1",
                "history": {
                    k: [rng.random() for _ in range(10)]
                    for k in ("loss", "val_loss", "kl", "objective")
                },
                "diagnostics": {"kl_per_dim": [rng.random() for _ in range(50)]},
            }
            if variant == "attrs":
                user.update(metrics)
            attrs += [
                {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                for k, v in user.items()
            ]
        with storage.engine.begin() as conn:
            for model, rows in (
                (models.TrialModel, trials),
                (models.TrialValueModel, values),
                (models.TrialParamModel, params),
                (models.TrialUserAttributeModel, attrs),
            ):
                for i in range(0, len(rows), 20000):
                    conn.execute(model.__table__.insert(), rows[i : i + 20000])
    if storage.engine.dialect.name == "postgresql":
        with storage.engine.begin() as conn:
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), "
                "(SELECT MAX(trial_id) FROM trials))"
            )
    storage.engine.dispose()
    return time.perf_counter() - start


def _sample(dist: Any, rng: random.Random) -> float:
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution
    from optuna.distributions import IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return float(rng.randrange(len(dist.choices)))
    if isinstance(dist, FloatDistribution):
        if dist.log:
            return math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))
        return rng.uniform(dist.low, dist.high)
    if isinstance(dist, IntDistribution):
        return float(rng.randrange(dist.low, dist.high + 1, dist.step))
    raise TypeError(f"unsupported distribution {dist!r}")


def measure(command: list[str], repeat: int) -> dict[str, Any]:
    """Median wall time and maximum peak RSS of ``command`` over ``repeat`` runs."""
    walls, rss_kb = [], []
    stdout = ""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        for _ in range(repeat):
            wrapped = (
                [TIME, "-v", "-o", str(rss_file), *command] if Path(TIME).exists() else command
            )
            begin = time.perf_counter()
            result = subprocess.run(
                wrapped, capture_output=True, text=True, timeout=600, cwd=REPO, check=False
            )
            walls.append(time.perf_counter() - begin)
            if result.returncode != 0:
                raise RuntimeError(
                    f"{_show(command)} failed ({result.returncode}): {result.stderr[-2000:]}"
                )
            stdout = result.stdout
            if Path(TIME).exists():
                match = re.search(
                    r"Maximum resident set size \(kbytes\): (\d+)", rss_file.read_text()
                )
                rss_kb.append(int(match.group(1)) if match else 0)
            else:  # the largest child so far: an upper bound for this one
                import resource

                rss_kb.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {
        "wall_s": statistics.median(walls),
        "walls": walls,
        "rss_mb": max(rss_kb) / 1024,
        "stdout": stdout,
    }


def sweep_command(url: str, name: str) -> tuple[list[str], bool]:
    """The ``sweep best`` command, or a ``python -c`` stand-in when the CLI is not ready."""
    cli = VENV_BIN / "sweep"
    if cli.exists():
        probe = subprocess.run(
            [str(cli), "best", "--help"], capture_output=True, text=True, cwd=REPO, check=False
        )
        if probe.returncode == 0 and "--format" in probe.stdout:
            return [str(cli), "best", name, "--storage", url, "--format", "json"], True
    return [sys.executable, "-c", FALLBACK, url, name], False


def optuna_command(url: str, name: str, multi: bool) -> list[str]:
    which = "best-trials" if multi else "best-trial"
    return [str(VENV_BIN / "optuna"), which, "--study-name", name, "--storage", url, "-f", "json"]


def _show(command: list[str]) -> str:
    from sweep.store.urls import mask_url

    shown = []
    for part in command:
        if "://" in part:
            part = mask_url(part)
        elif part == sys.executable or part.startswith(str(VENV_BIN)):
            part = ".venv/bin/" + Path(part).name
        shown.append(part if " " not in part and "\n" not in part else "'…'")
    return " ".join(shown)


def _best_numbers(stdout: str) -> list[int]:
    data = json.loads(stdout)
    data = data if isinstance(data, list) else [data]
    return [int(d["number"]) for d in data]


def run_backend(label: str, url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    print(f"[{label}] building {args.trials} trials x 3 studies ...", flush=True)
    setup_s = build_database(url, args.trials)
    print(f"[{label}] set-up took {setup_s:.1f} s", flush=True)
    rows = []
    for name, multi in (("bench-metrics", False), ("bench-attrs", False), ("bench-pareto", True)):
        sweep_cmd, real_cli = sweep_command(url, name)
        sweep = measure(sweep_cmd, args.repeat)
        ours = _best_numbers(sweep["stdout"])
        opt_cmd = optuna_command(url, name, multi)
        if args.skip_optuna:
            theirs, opt = None, None
        else:
            opt = measure(opt_cmd, args.optuna_repeat)
            theirs = _best_numbers(opt["stdout"])
        same = (
            None
            if theirs is None
            else (sorted(ours) == sorted(theirs) if multi else ours[0] == theirs[0])
        )
        print(
            f"[{label}] {name}: sweep {sweep['wall_s']:.2f} s {sweep['rss_mb']:.0f} MB"
            + ("" if opt is None else f"; optuna {opt['wall_s']:.2f} s {opt['rss_mb']:.0f} MB")
            + f"; same answer: {same}",
            flush=True,
        )
        rows.append(
            {
                "backend": label,
                "study": name,
                "sweep": sweep,
                "sweep_cmd": _show(sweep_cmd),
                "real_cli": real_cli,
                "optuna": opt,
                "optuna_cmd": _show(opt_cmd),
                "same": same,
                "n_best": len(ours),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, notes: list[str]) -> str:
    lines = [
        SECTION,
        "",
        _records.provenance(
            _records.command_line("best_speed.py", args.argv),
            args.load,
            command_note=" (PostgreSQL via `SWEEP_TEST_POSTGRES_URL`)",
            started=args.started_at,
            seconds=args.seconds,
            extra_versions={"SQLite": _sqlite_version()},
        ),
        f"Each study: {args.trials:,} COMPLETE trials; `bench-metrics` stores 30 metrics in one "
        "`metrics` JSON attribute plus the other sweep attributes (incl. a 10-epoch `history` "
        "and 50-float `diagnostics`); `bench-attrs` adds the 30 metrics as 30 separate user "
        "attributes; `bench-pareto` has 2 objectives. Wall time: median of "
        f"{args.repeat} runs for sweep, {args.optuna_repeat} for optuna, each a fresh process "
        "(interpreter start-up included). Peak RSS: `/usr/bin/time -v`, max over runs.",
        "",
        "| backend | study | command | wall (s) | peak RSS (MB) | best trials | same answer |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        tool = "sweep best" if r["real_cli"] else "sweep.store.read.best_trials (python -c)"
        lines.append(
            f"| {r['backend']} | {r['study']} | {tool} | {r['sweep']['wall_s']:.2f} | "
            f"{r['sweep']['rss_mb']:.0f} | {r['n_best']} | {_yes(r['same'])} |"
        )
        if r["optuna"] is not None:
            which = "optuna best-trials" if r["study"] == "bench-pareto" else "optuna best-trial"
            lines.append(
                f"| {r['backend']} | {r['study']} | {which} | {r['optuna']['wall_s']:.2f} | "
                f"{r['optuna']['rss_mb']:.0f} | | |"
            )
    lines += ["", "Exact commands (URLs masked):", ""]
    seen = set()
    for r in rows:
        for cmd in (r["sweep_cmd"], r["optuna_cmd"] if r["optuna"] else None):
            if cmd and cmd not in seen:
                seen.add(cmd)
                lines.append(f"- `{cmd}`")
    lines += [""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _yes(same: bool | None) -> str:
    return "-" if same is None else ("yes" if same else "NO")


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


def _postgres_database(base_url: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    base = make_url(base_url)
    name = f"sweep_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of sweep best (median)")
    parser.add_argument("--optuna-repeat", type=int, default=1, help="runs of the optuna CLI")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SWEEP_TEST_POSTGRES_URL"),
        help="server URL; a fresh database is created there and dropped (default: "
        "$SWEEP_TEST_POSTGRES_URL; PostgreSQL is skipped when unset)",
    )
    parser.add_argument("--skip-optuna", action="store_true")
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    args.load = _records.LoadMonitor()
    args.load.__enter__()
    notes = []
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="sweep_bench_"))
    try:
        rows += run_backend("SQLite", f"sqlite:///{workdir / 'bench.db'}", args)
        if args.postgres:
            url, drop = _postgres_database(args.postgres)
            try:
                rows += run_backend("PostgreSQL", url, args)
            finally:
                drop()
        else:
            notes.append("PostgreSQL skipped: no --postgres / $SWEEP_TEST_POSTGRES_URL.")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if not all(r["real_cli"] for r in rows):
        notes.append(
            "The `sweep` CLI was not ready (`sweep best --help` failed), so the sweep rows time "
            "`python -c` calling `sweep.store.read.best_trials` + "
            "`sweep.present.formatting.render(..., "
            "'json')` in a fresh interpreter: the same queries, without the CLI's own imports."
        )
    args.load.__exit__(None, None, None)
    args.seconds = time.perf_counter() - started
    text = markdown(rows, args, notes)
    print()
    print(text)
    if not args.no_append:
        _records.write_block(BLOCK, text, RESULTS)
        print(f"wrote block {BLOCK!r} of {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
