"""Benchmark: ``sweep.load_trials`` on a study of 10,000 COMPLETE trials (SQLite, PostgreSQL).

Run by hand, not a test::

    .venv/bin/python benchmarks/load_trials_speed.py                   # SQLite only
    SWEEP_TEST_POSTGRES_URL=postgresql+psycopg://user:pw@host/db \\
        .venv/bin/python benchmarks/load_trials_speed.py               # SQLite and PostgreSQL

The study is written cheaply through Optuna (``study.add_trials``, no training): 4 searched
parameters and the user attributes a worker writes (``params_full``, ``metrics`` with 30
scalars, ``flags``, ``seconds``, ``history``). Each run times ``sweep.load_trials`` (median of
``--repeat`` calls in this process, after one warm-up) against Optuna's own
``optuna.load_study(...).trials_dataframe()``, checks one row per trial, prints a markdown
table and, unless ``--no-append``, writes it as the ``load_trials_speed`` block of
``benchmarks/RESULTS.md`` (:mod:`_records`). PostgreSQL runs use a fresh database, dropped
afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _records  # benchmarks/, beside this script

REPO = Path(__file__).resolve().parent.parent
BLOCK = "load_trials_speed"
SECTION = "## sweep.load_trials on 10,000 trials"
POSTGRES_ENV = "SWEEP_TEST_POSTGRES_URL"
NAME = "bench-frames"


def write_study(url: str, n_trials: int) -> float:
    """Create the study with ``n_trials`` COMPLETE trials; return the seconds it took."""
    import optuna

    from sweep.config import study_config
    from sweep.params import TrialParams
    from sweep.space import load_space
    from sweep.store.rdb import open_storage
    from sweep.store.study import create_or_reuse_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    storage = open_storage(url, create=True)
    space = load_space(REPO / "search_spaces" / "tiny.yaml")
    create_or_reuse_study(storage, NAME, study_config(space, n_trials=n_trials))
    study = optuna.load_study(study_name=NAME, storage=storage)
    dists = {
        "coding_size": optuna.distributions.CategoricalDistribution([4, 8]),
        "focal_gamma": optuna.distributions.FloatDistribution(1.5, 2.0),
        "kl_beta": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
        "dataset": optuna.distributions.CategoricalDistribution(["original", "balanced"]),
    }
    rng = random.Random(0)
    batch = []
    for _ in range(n_trials):
        params = {
            "coding_size": rng.choice([4, 8]),
            "focal_gamma": rng.uniform(1.5, 2.0),
            "kl_beta": 10 ** rng.uniform(-4, -2),
            "dataset": rng.choice(["original", "balanced"]),
        }
        metrics = {f"section.s{i // 5}.m{i % 5}": rng.random() for i in range(30)}
        metrics["expression.auroc"] = rng.uniform(0.4, 0.9)
        attrs = {
            "params_full": TrialParams.from_dict(params).to_dict(),
            "metrics": metrics,
            "flags": [],
            "seconds": rng.uniform(10, 100),
            "history": {"loss": [rng.random() for _ in range(10)]},
        }
        batch.append(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                value=metrics["expression.auroc"],
                user_attrs=attrs,
            )
        )
        if len(batch) == 1000:
            study.add_trials(batch)
            batch = []
    study.add_trials(batch)
    return time.perf_counter() - started


def measure(url: str, n_trials: int, repeat: int) -> dict[str, Any]:
    import optuna

    import sweep

    write_s = write_study(url, n_trials)
    sweep.load_trials(NAME, storage=url)  # warm-up: imports and first connection
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        frame = sweep.load_trials(NAME, storage=url)
        times.append(time.perf_counter() - started)
    if len(frame) != n_trials:
        raise SystemExit(f"load_trials returned {len(frame)} rows, expected {n_trials}")
    started = time.perf_counter()
    optuna_frame = optuna.load_study(study_name=NAME, storage=url).trials_dataframe()
    optuna_s = time.perf_counter() - started
    return {
        "write_s": write_s,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "rows": len(frame),
        "columns": frame.shape[1],
        "optuna_s": optuna_s,
        "optuna_columns": optuna_frame.shape[1],
    }


@contextlib.contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        yield f"sqlite:///{tmp}/frames.db"


@contextlib.contextmanager
def postgres_url(base: str) -> Iterator[str]:
    from sqlalchemy import create_engine
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    url = make_url(base)
    name = f"sweep_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    started_at = datetime.datetime.now().astimezone()
    t0 = time.perf_counter()
    backends: list[tuple[str, Any]] = [("SQLite", sqlite_url())]
    if os.environ.get(POSTGRES_ENV):
        backends.append(("PostgreSQL", postgres_url(os.environ[POSTGRES_ENV])))
    rows = []
    with _records.LoadMonitor() as load:
        for label, manager in backends:
            with manager as url:
                result = measure(url, args.trials, args.repeat)
            rows.append((label, result))
            print(label, result, file=sys.stderr)
    lines = [
        "| storage | trials | columns | `sweep.load_trials` median (min) | Optuna "
        "`trials_dataframe()` | writing the study |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {r['rows']} | {r['columns']} | {r['median_s']:.2f} s "
            f"({r['min_s']:.2f} s) | {r['optuna_s']:.2f} s ({r['optuna_columns']} columns) "
            f"| {r['write_s']:.0f} s |"
        )
    text = (
        f"{SECTION}\n\n"
        + _records.provenance(
            _records.command_line("load_trials_speed.py", sys.argv[1:]),
            load,
            started=started_at,
            seconds=time.perf_counter() - t0,
        )
        + "\nOne row per trial with flat `param.*` and `metric.*` columns (31 metrics per "
        "trial), read with the SQL of `sweep.store.read`; Optuna's loads every trial object "
        f"(median of {args.repeat} calls after a warm-up; Optuna's once).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    print(text)
    if not args.no_append:
        _records.write_block(BLOCK, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
