"""How many workers one PostgreSQL serves: N = 1, 4, 16, 64 workers through the real code path.

Run by hand (not a test)::

    .venv/bin/python benchmarks/db_scale.py --postgres "$SWEEP_TEST_POSTGRES_URL"

For each N it creates a fresh database on the server (dropped afterwards), creates a study with
:func:`sweep.run.launch.create_study` (the tiny space, median pruner, a budget of N x
``--trials-per-worker`` trials) and starts N worker processes. Each worker is the product's
:func:`sweep.run.worker.run_worker`: real :func:`sweep.store.rdb.open_storage` with Optuna
heartbeats and reconnect retries, the real budget lock (:class:`~sweep.run.worker.BudgetClaim`,
a PostgreSQL advisory lock), the stale-trial watcher, :class:`sweep.run.objective.Objective`
suggesting parameters, reporting every epoch to the pruner, recording the user attributes and
telling Optuna. Only the training step is a stand-in, and only inside this benchmark: the
worker's trial process (``SparePool.run``, and ``run_in_child``) is replaced by
:func:`sleeping_trial`, which sleeps
``--trial-seconds`` in ``--epochs`` steps, hands each epoch's objective to the pruner and returns
a result shaped like the engine's (30+ metrics, per-epoch history, 50-float diagnostics). The
workers never import TensorFlow (each checks ``sys.modules`` at the end). Each worker checks
its data file and split (a child process) before the start signal, then skips that check.

Measured, per N:

* claims per second: trials created / wall time from the start signal to the last worker's exit;
* budget-lock wait p50/p99: how long each acquisition of the budget lock waited;
* storage time per trial: the main thread's storage calls (claim, params, reports, attributes,
  tell, the claim loop's counting), budget-lock wait excluded;
* open connections: the peak of ``pg_stat_activity`` for the study's database (client
  backends, sampled every 0.2 s), next to the server's ``max_connections``;
* heartbeat writes per second (Optuna's heartbeat thread, every ``--heartbeat-interval`` s);
* CPU: every local PostgreSQL process's CPU time over the run (exited backends included, via
  the postmaster's reaped-children time in ``/proc``) and the workers' own, per trial;
* errors: storage calls that raised, warnings the workers logged (retries, lost heartbeats),
  FAIL trials and workers that exited with an error.

Then checks that the budget is exact (COMPLETE + PRUNED == budget, nothing RUNNING) and that no
trial number repeats, and models claims per second against workers past the measured N from
those per-claim costs (:func:`claim_model`). Prints a markdown section and writes it as the
``db_scale`` block of benchmarks/RESULTS.md (``--no-write`` only prints).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections import defaultdict
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import _pooler  # benchmarks/, beside this script
import _records

REPO = Path(__file__).resolve().parent.parent
BLOCK = "db_scale"
TINY = REPO / "search_spaces" / "tiny.yaml"
STUDY = "db-scale"


# --- the worker process -------------------------------------------------------------------------


class WorkerStats:
    """What one worker measures about itself (written as JSON at its end)."""

    def __init__(self) -> None:
        self.lock_waits: list[float] = []
        self.lock_wait_spans: list[tuple[float, float]] = []  # wall clock, for the peak waiters
        # trial id -> [created, first parameter write started, ended] (wall clock): while a
        # trial is between the first and the last, other samplers cannot see its parameters
        self.param_windows: dict[int, list[float]] = {}
        self.lock_holds: list[float] = []
        self.main_storage_s = 0.0
        self.main_calls: Counter[str] = Counter()
        self.main_times: dict[str, float] = defaultdict(float)
        self.side_storage_s = 0.0
        self.side_calls: Counter[str] = Counter()
        self.heartbeats = 0
        self.call_errors: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.trials: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.local = threading.local()  # budget-lock wait of this thread, running total

    def to_json(self) -> dict[str, Any]:
        return {
            "lock_waits": self.lock_waits,
            "lock_wait_spans": self.lock_wait_spans,
            "param_windows": [w for w in self.param_windows.values() if len(w) == 3],
            "lock_holds": self.lock_holds,
            "main_storage_s": self.main_storage_s,
            "main_calls": dict(self.main_calls),
            "main_times": dict(self.main_times),
            "side_storage_s": self.side_storage_s,
            "side_calls": dict(self.side_calls),
            "heartbeats": self.heartbeats,
            "call_errors": dict(self.call_errors),
            "warnings": dict(self.warnings),
            "trials": self.trials,
        }


def timed_storage_class(base: type, stats: WorkerStats) -> type:
    """``base`` (the worker's storage class) with every public call timed into ``stats``."""
    from sweep.store._optuna_schema import RETRIED_METHODS

    depth = threading.local()

    def wrap(name: str) -> Any:
        method = getattr(base, name)

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            outermost = getattr(depth, "n", 0) == 0  # public calls nest private ones
            depth.n = getattr(depth, "n", 0) + 1
            waited = getattr(stats.local, "waited", 0.0)
            started, started_wall = time.perf_counter(), time.time()
            try:
                result = method(self, *args, **kwargs)
            except Exception as e:
                # _NoSlot: the claim's answer "budget met" or "every slot running", not an error.
                if outermost and type(e).__name__ != "_NoSlot":
                    with stats.lock:
                        stats.call_errors[f"{name}: {type(e).__name__}: {_first_line(e)}"] += 1
                raise
            finally:
                depth.n -= 1
            if outermost:
                # A trial's creation takes the budget lock inside the call: not storage time.
                took = time.perf_counter() - started
                took -= getattr(stats.local, "waited", 0.0) - waited
                with stats.lock:
                    if threading.current_thread() is threading.main_thread():
                        stats.main_storage_s += took
                        stats.main_calls[name] += 1
                        stats.main_times[name] += took
                    else:
                        stats.side_storage_s += took
                        stats.side_calls[name] += 1
                    if name == "record_heartbeat":
                        stats.heartbeats += 1
                    if name == "_create_new_trial":  # returns the new FrozenTrial
                        stats.param_windows[result._trial_id] = [time.time()]
                    window = stats.param_windows.get(args[0]) if args else None
                    if name.endswith("set_trial_param") and window and len(window) == 1:
                        window += [started_wall, time.time()]
            return result

        return timed

    names = [n for n in RETRIED_METHODS if hasattr(base, n)]
    return type("TimedStorage", (base,), {n: wrap(n) for n in names})


def timed_budget_lock(original: Any, stats: WorkerStats) -> Any:
    """``sweep.store.lock.budget_lock`` recording its wait and hold times."""

    @contextlib.contextmanager
    def budget_lock(storage: Any, study_name: str) -> Iterator[Any]:
        asked, asked_wall = time.perf_counter(), time.time()
        with original(storage, study_name) as conn:
            got = time.perf_counter()
            stats.lock_waits.append(got - asked)
            stats.lock_wait_spans.append((asked_wall, time.time()))
            stats.local.waited = getattr(stats.local, "waited", 0.0) + got - asked
            try:
                yield conn
            finally:
                stats.lock_holds.append(time.perf_counter() - got)

    return budget_lock


def sleeping_trial(trial_seconds: float, metric_names: list[str], stats: WorkerStats) -> Any:
    """A ``run_in_child`` (and ``SparePool.run``) stand-in: sleep per epoch, report it, return an
    engine-shaped result."""

    def run_in_child(
        request: Any,
        *,
        on_epoch: Any = None,
        env: Mapping[str, str] | None = None,
        on_ask: Any = None,
    ) -> Any:
        from sweep.run.protocol import TrialOutcome

        started = time.time()
        params = request.params
        epochs = int(params.get("epochs", 2))
        # A value fixed by the parameters, so the median pruner has something to compare.
        digest = zlib.crc32(json.dumps(params, sort_keys=True).encode())
        quality = 0.55 + 0.4 * ((digest % 1000) / 1000)
        history: dict[str, list[float]] = defaultdict(list)
        try:
            for epoch in range(epochs):
                time.sleep(trial_seconds / epochs)
                value = quality * (epoch + 1) / epochs
                values = {m: value for m in request.epoch_metrics}
                for curve in ("loss", "reconstruction_loss", "kl_loss", "learning_rate"):
                    history[curve].append(1.0 / (epoch + 1))
                history["objective"].append(value)
                if on_epoch is not None:
                    on_epoch(epoch, values)
        finally:
            stats.trials.append((started, time.time()))
        metrics = {m: quality for m in metric_names}
        return TrialOutcome(
            metrics=metrics,
            history=dict(history),
            epochs_run=epochs,
            seconds=trial_seconds,
            extra={
                "diagnostics": {"kl_per_dim": [0.01 * i for i in range(50)], "latent_std": 1.0},
                "flags": [],
                "elbo_beta": 1.0,
            },
        )

    return run_in_child


class _CountWarnings:
    """A logging handler counting warnings by message (numbers stripped)."""

    def __init__(self, stats: WorkerStats) -> None:
        import logging

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                text = "".join("#" if c.isdigit() else c for c in record.getMessage())
                with stats.lock:
                    stats.warnings[f"{record.levelname}: {text[:160]}"] += 1

        self.handler = Handler(level=logging.WARNING)


def worker_main(args: argparse.Namespace) -> int:
    """One worker process: the product's ``run_worker`` with timing and a sleeping trial."""
    import logging

    import sweep.run.objective as objective_module
    import sweep.run.worker as worker_module
    import sweep.store.rdb as rdb_module
    from sweep.run.isolation import SparePool
    from sweep.run.worker import WorkerSettings
    from sweep.run.worker import run_worker

    rundir = Path(args.dir)
    stats = WorkerStats()
    os.environ[rdb_module.IDLE_CONNECTIONS_ENV] = str(args.idle_connections)  # the product's
    timed = timed_storage_class(rdb_module._reconnecting_storage_class(), stats)
    rdb_module._reconnecting_storage_class = lambda: timed  # type: ignore[assignment]
    worker_module.budget_lock = timed_budget_lock(worker_module.budget_lock, stats)  # type: ignore[assignment]
    metric_names = json.loads((rundir / "metrics.json").read_text())
    trial = sleeping_trial(args.trial_seconds, metric_names, stats)
    objective_module.run_in_child = trial  # type: ignore[assignment]

    def pool_run(self: Any, request: Any, **kwargs: Any) -> Any:
        return trial(request, **kwargs)

    SparePool.run = pool_run  # type: ignore[method-assign]
    # The worker's data and split checks (the split runs in a child process) are start-up, not
    # storage: done before the start signal, then skipped inside run_worker.
    from sweep.store.rdb import open_storage
    from sweep.store.study import load_config

    plain = open_storage(os.environ["SWEEP_STORAGE"])
    config = load_config(plain, args.study)
    plain.engine.dispose()
    worker_module.check_split(config, worker_module.check_data_file(config, args.data))
    worker_module.check_split = lambda *a, **k: None  # type: ignore[assignment]
    logging.getLogger("sweep").addHandler(_CountWarnings(stats).handler)
    logging.getLogger("sweep").setLevel(logging.WARNING)

    (rundir / f"ready-{args.index}").touch()
    go = rundir / "go"
    while not go.exists():
        time.sleep(0.05)
    started = time.time()
    cpu_started = time.process_time()
    outcome: dict[str, Any] = {}
    code = 0
    try:
        summary = run_worker(
            WorkerSettings(
                study_name=args.study,
                storage_url=os.environ["SWEEP_STORAGE"],
                data_path=args.data,
                worker_index=args.index,
                timeout_s=args.max_seconds,
                spare=False,  # the stand-in trial needs no trial process
            )
        )
        outcome = {"ran": summary.ran, "stopped_because": summary.stopped_because}
    except BaseException as e:  # noqa: BLE001 - reported, and the exit status says so
        outcome = {"error": f"{type(e).__name__}: {_first_line(e)}"}
        code = 1
    result = {
        **stats.to_json(),
        **outcome,
        "index": args.index,
        "started": started,
        "ended": time.time(),
        "cpu_s": time.process_time() - cpu_started,
        "tensorflow_imported": "tensorflow" in sys.modules or "keras" in sys.modules,
    }
    (rundir / f"worker-{args.index}.json").write_text(json.dumps(result))
    return code


# --- the parent ---------------------------------------------------------------------------------


class ConnectionMonitor:
    """Peak client connections in ``pg_stat_activity``: one database's, and the server's."""

    def __init__(self, admin: Any, database: str, interval_s: float = 0.2) -> None:
        self.admin = admin
        self.database = database
        self.interval_s = interval_s
        self.peak_db = 0
        self.peak_server = 0
        self.peak_by_state: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ConnectionMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT datname, coalesce(state, ''), coalesce(wait_event, ''), count(*) "
            "FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2, 3"
        )
        with self.admin.connect() as conn:
            while not self._stop.wait(self.interval_s):
                try:
                    rows = conn.execute(query).all()
                    conn.commit()
                except Exception as e:  # noqa: BLE001 - counted; keep sampling
                    self.errors[_first_line(e)] += 1
                    continue
                server = sum(r[3] for r in rows)
                mine = [r for r in rows if r[0] == self.database]
                by_state: Counter[str] = Counter()
                for _, state, _, n in mine:
                    by_state[state] += n
                self.peak_server = max(self.peak_server, server)
                self.peak_db = max(self.peak_db, sum(by_state.values()))
                for state, n in by_state.items():
                    self.peak_by_state[state] = max(self.peak_by_state[state], n)


def postgres_cpu_seconds() -> float | None:
    """CPU seconds used so far by this machine's PostgreSQL processes (``None``: none here).

    The postmaster's own time plus its reaped children's (``cutime``/``cstime``: every backend
    that exited, as each storage call's connection does), plus the live processes' time.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    found = False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        if comm != "postgres":
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        found = True
    return total / tick if found else None


def server_facts(admin: Any) -> dict[str, Any]:
    from sqlalchemy import text

    with admin.connect() as conn:
        return {
            "max_connections": int(conn.execute(text("SHOW max_connections")).scalar_one()),
            "reserved": int(
                conn.execute(text("SHOW superuser_reserved_connections")).scalar_one()
            ),
            "version": str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0],
            "others": int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend'"
                    )
                ).scalar_one()
            ),
        }


def run_one(n: int, args: argparse.Namespace, admin: Any, data: Path, tmp: Path) -> dict[str, Any]:
    """N workers on a fresh database; returns the aggregated measurements."""
    import optuna
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from sweep.config import StudySettings
    from sweep.run.launch import LaunchRequest
    from sweep.run.launch import create_study

    database = f"sweep_dbscale_{uuid.uuid4().hex[:8]}_n{n}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = make_url(args.postgres).set(database=database).render_as_string(hide_password=False)
    rundir = tmp / f"n{n}"
    rundir.mkdir()
    (rundir / "metrics.json").write_text(json.dumps(args.metric_names))
    budget = n * args.trials_per_worker
    try:
        name = create_study(
            LaunchRequest(
                storage_url=url,
                study_name=STUDY,
                space=str(TINY),
                data_path=str(data),
                settings=StudySettings(
                    n_trials=budget,
                    pruner="median",
                    max_seeds=1,  # claims per trial, as before racing
                    heartbeat_interval_s=args.heartbeat_interval,
                    grace_period_s=max(60, 2 * args.heartbeat_interval + 1),
                ),
                overrides={"epochs": args.epochs},
            )
        )
        worker_url = (
            make_url(args.pooled_url).set(database=database).render_as_string(hide_password=False)
            if args.pooled_url
            else url
        )
        env = {**os.environ, "SWEEP_STORAGE": worker_url, "PYTHONPATH": str(REPO)}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--study", name]
        command += ["--data", str(data), "--dir", str(rundir)]
        command += ["--trial-seconds", str(args.trial_seconds)]
        command += ["--max-seconds", str(args.max_seconds)]
        command += ["--idle-connections", str(args.idle_connections)]
        processes = [
            subprocess.Popen([*command, "--index", str(i)], env=env, stderr=subprocess.PIPE)
            for i in range(n)
        ]
        deadline = time.monotonic() + 600
        while sum((rundir / f"ready-{i}").exists() for i in range(n)) < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                break
            time.sleep(0.1)
        with ConnectionMonitor(admin, database) as connections:
            started = time.time()
            server_cpu_started = postgres_cpu_seconds()
            (rundir / "go").touch()
            stderr_tails = []
            codes = []
            for p in processes:
                try:
                    _, err = p.communicate(timeout=args.max_seconds + 300)
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                codes.append(p.returncode)
                if p.returncode:
                    stderr_tails.append(err.decode(errors="replace").strip()[-300:])
            ended = time.time()
            server_cpu_ended = postgres_cpu_seconds()
        server_cpu = (
            server_cpu_ended - server_cpu_started
            if server_cpu_ended is not None and server_cpu_started is not None
            else math.nan
        )
        storage = optuna.storages.RDBStorage(url)
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        storage.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": database},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
    workers = []
    for i in range(n):
        path = rundir / f"worker-{i}.json"
        workers.append(json.loads(path.read_text()) if path.exists() else {"missing": True})
    row = aggregate(n, budget, workers, trials, codes, stderr_tails, connections, ended - started)
    row["server_cpu_s"] = server_cpu
    row["cpu_ms_per_trial"] = 1000 * (server_cpu + row["workers_cpu_s"]) / max(row["trials"], 1)
    row["server_cpu_ms_per_trial"] = 1000 * server_cpu / max(row["trials"], 1)
    row["server_cpu_share"] = server_cpu / ((os.cpu_count() or 1) * row["wall_s"])
    return row


def aggregate(
    n: int,
    budget: int,
    workers: list[dict[str, Any]],
    trials: list[Any],
    codes: list[int],
    stderr_tails: list[str],
    connections: ConnectionMonitor,
    wall_s: float,
) -> dict[str, Any]:
    states = Counter(t.state.name for t in trials)
    numbers = [t.number for t in trials]
    waits = sorted(w for r in workers for w in r.get("lock_waits", []))
    holds = sorted(h for r in workers for h in r.get("lock_holds", []))
    ran = sum(len(r.get("trials", [])) for r in workers)
    main_s = sum(r.get("main_storage_s", 0.0) for r in workers)
    main_calls = sum(sum(r.get("main_calls", {}).values()) for r in workers)
    errors: Counter[str] = Counter()
    for r in workers:
        errors.update(r.get("call_errors", {}))
        errors.update(r.get("warnings", {}))
        if "error" in r:
            errors[f"worker: {r['error']}"] += 1
        if r.get("missing"):
            errors["worker wrote no record"] += 1
    finished = states["COMPLETE"] + states["PRUNED"]
    by_method: dict[str, float] = defaultdict(float)
    for r in workers:
        for method, seconds in r.get("main_times", {}).items():
            by_method[method] += seconds
    slowest = sorted(by_method.items(), key=lambda kv: -kv[1])[:6]
    return {
        "top_methods_ms_per_trial": {k: round(1000 * v / max(ran, 1), 1) for k, v in slowest},
        "n": n,
        "budget": budget,
        "wall_s": wall_s,
        "trials": len(trials),
        "states": dict(states),
        "claims_per_s": len(trials) / wall_s,
        "lock_acquisitions": len(waits),
        "lock_wait_p50_ms": 1000 * _quantile(waits, 0.5),
        "lock_wait_p99_ms": 1000 * _quantile(waits, 0.99),
        "lock_wait_max_ms": 1000 * (waits[-1] if waits else math.nan),
        "lock_hold_p50_ms": 1000 * _quantile(holds, 0.5),
        "lock_hold_mean_ms": 1000 * statistics.mean(holds) if holds else math.nan,
        "workers_cpu_s": sum(r.get("cpu_s", 0.0) for r in workers),
        "storage_ms_per_trial": 1000 * main_s / max(ran, 1),
        "storage_calls_per_trial": main_calls / max(ran, 1),
        "side_storage_s": sum(r.get("side_storage_s", 0.0) for r in workers),
        "heartbeats": sum(r.get("heartbeats", 0) for r in workers),
        "heartbeats_per_s": sum(r.get("heartbeats", 0) for r in workers) / wall_s,
        "peak_connections": connections.peak_db,
        "peak_server_connections": connections.peak_server,
        "peak_by_state": dict(connections.peak_by_state),
        "unseen_params": _unseen_params(
            [tuple(w) for r in workers for w in r.get("param_windows", [])]
        ),
        "peak_lock_waiters": _peak_overlap(
            [tuple(span) for r in workers for span in r.get("lock_wait_spans", [])]
        ),
        "busy_share": ran * workers_trial_seconds(workers) / (n * wall_s) if ran else 0.0,
        "errors": dict(errors),
        "error_count": sum(errors.values()) + states["FAIL"] + sum(1 for c in codes if c),
        "failed_workers": sum(1 for c in codes if c),
        "stderr_tails": stderr_tails[:3],
        "tensorflow_imported": any(r.get("tensorflow_imported") for r in workers),
        "budget_exact": finished == budget and states["RUNNING"] == 0,
        "duplicates": len(numbers) - len(set(numbers)),
    }


def workers_trial_seconds(workers: list[dict[str, Any]]) -> float:
    spans = [b - a for r in workers for a, b in r.get("trials", [])]
    return statistics.mean(spans) if spans else 0.0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    index = min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))
    return values[index]


def _fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``a + b x`` (``b`` = 0 with a single point), both kept >= 0."""
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if not points:
        return math.nan, 0.0
    if len(points) == 1:
        return points[0][1], 0.0
    mx = statistics.mean(x for x, _ in points)
    my = statistics.mean(y for _, y in points)
    var = sum((x - mx) ** 2 for x, _ in points)
    slope = max(0.0, sum((x - mx) * (y - my) for x, y in points) / var) if var else 0.0
    return max(0.0, my - slope * mx), slope


def claim_model(
    rows: list[dict[str, Any]], args: argparse.Namespace, server: dict[str, Any]
) -> dict[str, Any]:
    """Claims per second against workers, from the measured per-claim costs.

    Three ceilings, each a line fitted over the measured N (costs grow with N: every sampler
    reads the running trials, and contention stretches the lock hold):

    * demand: N workers / (trial time + storage time per trial): what the workers ask for;
    * the lock: 1 / mean lock hold (one claim at a time holds it);
    * the CPU: cores / CPU per trial (workers' and PostgreSQL's processes together, on this
      machine's cores, which the server shares with the workers).

    The modelled rate is the lowest of the three; connections are a fourth wall, at
    (``max_connections`` - reserved - others) / peak connections per worker.
    """
    cores = os.cpu_count() or 1
    ns = [float(r["n"]) for r in rows]
    storage = _fit(ns, [r["storage_ms_per_trial"] / 1000 for r in rows])
    hold = _fit(ns, [r["lock_hold_mean_ms"] / 1000 for r in rows])
    cpu = _fit(ns, [r["cpu_ms_per_trial"] / 1000 for r in rows])
    room = server["max_connections"] - server["reserved"] - server["others"]
    # The largest N whose peak stayed below the server's limit (a capped peak says too little).
    uncapped = [r for r in rows if r["peak_server_connections"] < room] or rows
    largest = max(uncapped, key=lambda r: r["n"])
    per_worker = largest["peak_connections"] / largest["n"]
    connection_wall = int(room / per_worker) if per_worker else 0

    def at(n: float) -> dict[str, float]:
        demand = n / (args.trial_seconds + storage[0] + storage[1] * n)
        lock = 1 / (hold[0] + hold[1] * n) if hold[0] + hold[1] * n > 0 else math.inf
        cpu_bound = cores / (cpu[0] + cpu[1] * n) if cpu[0] + cpu[1] * n > 0 else math.inf
        bounds = {"demand": demand, "lock": lock, "CPU": cpu_bound}
        wall = min(bounds, key=lambda k: bounds[k])
        return {**bounds, "rate": bounds[wall], "wall": wall}  # type: ignore[dict-item]

    measured = [int(r["n"]) for r in rows]
    extra = [n for n in (128, 256, 512, 1024) if n > max(measured)]
    return {
        "connections_from_n": largest["n"],
        "cores": cores,
        "fits": {"storage": storage, "hold": hold, "cpu": cpu},
        "per_worker_connections": per_worker,
        "connection_wall": connection_wall,
        "rows": [(n, at(n), n in measured) for n in measured + extra],
    }


def render_model(model: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    by_n = {r["n"]: r for r in rows}
    fits = model["fits"]
    lines = [
        "",
        "Model: claims/s against workers from the measured per-claim costs (each cost a "
        "least-squares line over the measured N: storage per trial "
        f"{1000 * fits['storage'][0]:.0f} + {1000 * fits['storage'][1]:.1f} N ms, lock hold "
        f"{1000 * fits['hold'][0]:.1f} + {1000 * fits['hold'][1]:.2f} N ms, CPU per trial "
        f"(workers + server) {1000 * fits['cpu'][0]:.0f} + {1000 * fits['cpu'][1]:.1f} N ms on "
        f"{model['cores']} cores). Demand = N / (trial + storage time); lock = 1 / hold; CPU = "
        "cores / CPU per trial; the modelled rate is the lowest. Measured claims/s include the "
        "start and the last polls (each worker runs only a few trials), so they sit below the "
        "steady-state model.",
        "",
        "| workers | demand (claims/s) | lock ceiling | CPU ceiling | modelled claims/s "
        "| wall | measured claims/s |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for n, m, was_measured in model["rows"]:
        got = f"{by_n[n]['claims_per_s']:.2f}" if was_measured else "-"
        lines.append(
            f"| {n} | {m['demand']:.1f} | {m['lock']:.1f} | {m['CPU']:.1f} | {m['rate']:.1f} "
            f"| {m['wall']} | {got} |"
        )
    lines.append(
        f"- Connections: {model['per_worker_connections']:.2f} per worker at the peak (N="
        f"{model['connections_from_n']}, the largest N below the server's limit), so the "
        f"server's free connections run out near {model['connection_wall']} workers."
    )
    return lines


def _code_version(override: str = "") -> str:
    """``commit abc1234`` of the tree the workers ran (``+ uncommitted changes`` if dirty)."""
    if override:
        return override

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "sweep")
    return f"commit {commit}" + (" + uncommitted changes to sweep/" if dirty else "")


def _product_idle_connections() -> int:
    from sweep.store import rdb

    return int(getattr(rdb, "POSTGRES_IDLE_CONNECTIONS", 0))


def _unseen_params(windows: list[tuple[float, ...]]) -> dict[str, float]:
    """How many other trials' parameters each trial's sampler could not see, mean and max.

    A trial's sampler reads the study before its first parameter is written (at the latest at
    ``first_write_started``); another trial created before that moment whose first parameter was
    not yet written then is invisible to it (constant liar needs the parameters).
    """
    counts = [
        sum(1 for other in windows if other is not own and other[0] < own[1] < other[2])
        for own in windows
    ]
    if not counts:
        return {"mean": math.nan, "max": 0, "share": math.nan}
    return {
        "mean": statistics.fmean(counts),
        "max": max(counts),
        "share": sum(1 for c in counts if c) / len(counts),
    }


def _peak_overlap(spans: list[tuple[float, ...]]) -> int:
    """The most intervals ``(start, end)`` open at one instant."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def _pgbouncer_version() -> str:
    """``pgbouncer --version``'s number, or ``?``."""
    try:
        out = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    first = out.split()
    return first[1] if len(first) > 1 else "?"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(lines)[:300] if lines else type(error).__name__


def render(
    rows: list[dict[str, Any]],
    server: dict[str, Any],
    args: argparse.Namespace,
    load: _records.LoadMonitor,
    started_at: datetime.datetime,
    seconds: float,
) -> str:
    argv = ['--postgres "$SWEEP_TEST_POSTGRES_URL"']
    defaults = {
        "workers": "1,4,16,64",
        "trials_per_worker": 3,
        "trial_seconds": 2.0,
        "epochs": 4,
        "heartbeat_interval": 1,
        "idle_connections": 1 if args.pooler else _product_idle_connections(),
        "pooler": 0,
    }
    for key, default in defaults.items():
        value = getattr(args, key)
        if value != default:
            argv.append(f"--{key.replace('_', '-')} {value}")
    if args.label:
        argv.append(f"--label {shlex.quote(args.label)}")
    command = " ".join([".venv/bin/python benchmarks/db_scale.py", *argv])
    heading = "## 64 workers on one PostgreSQL"
    lines = [
        f"### {heading[3:]}: {args.label}" if args.label else heading,
        "",
        _records.provenance(
            command,
            load,
            started=started_at,
            seconds=seconds,
            extra_versions={
                "PostgreSQL": server["version"],
                "SQLAlchemy": _records.package_version("sqlalchemy"),
                "psycopg": _records.package_version("psycopg"),
            },
        ),
        f"Code: {_code_version(args.code_version)}.  \n"
        f"Server: `max_connections` = {server['max_connections']} "
        f"({server['reserved']} reserved for superusers); {server['others']} client "
        "connections were open before the run (other users of the server). Each N: a fresh "
        f"database, the tiny space, median pruner, budget N x {args.trials_per_worker} trials, "
        f"N worker processes (`run_worker`, real storage, heartbeats every "
        f"{args.heartbeat_interval} s, budget lock, stale-trial watcher, "
        f"{args.idle_connections} idle PostgreSQL connection(s) kept per worker process"
        + (
            f", through PgBouncer {_pgbouncer_version()} in transaction mode with "
            f"{args.pooler} server connections, `docker/pooler.sh`); "
            if args.pooler
            else "); "
        )
        + "the training step is "
        f"a {args.trial_seconds:g} s sleep in {args.epochs} epochs, each reported to the pruner "
        "(a stand-in inside this benchmark only; workers never import TensorFlow). Each "
        "worker checks its data file and split before the start signal (start-up, not "
        "claims). No run with realistic (30 s and longer) trials here: the sleep stands for "
        "them, and fewer claims per second would only ease every ceiling below.",
        "",
        "| workers | trials | wall (s) | claims/s | lock wait p50 / p99 (ms) | lock hold p50 (ms) "
        "| storage per trial (ms) | calls per trial | peak connections (db / server) "
        "| server CPU (s, share of cores) | CPU per trial (ms, workers + server) "
        "| heartbeats/s | workers busy | errors | budget exact, no duplicates |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ok = r["budget_exact"] and r["duplicates"] == 0 and not r["tensorflow_imported"]
        states = ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))
        lines.append(
            f"| {r['n']} | {r['trials']} ({states}) | {r['wall_s']:.1f} | "
            f"{r['claims_per_s']:.2f} | {r['lock_wait_p50_ms']:.0f} / "
            f"{r['lock_wait_p99_ms']:.0f} | {r['lock_hold_p50_ms']:.0f} | "
            f"{r['storage_ms_per_trial']:.0f} | {r['storage_calls_per_trial']:.0f} | "
            f"{r['peak_connections']} / {r['peak_server_connections']} | "
            f"{r['server_cpu_s']:.1f} ({100 * r['server_cpu_share']:.0f} %) | "
            f"{r['cpu_ms_per_trial']:.0f} ({r['server_cpu_ms_per_trial']:.0f} server) | "
            f"{r['heartbeats_per_s']:.1f} | {100 * r['busy_share']:.0f} % | "
            f"{r['error_count']} | {'yes' if ok else 'NO'} |"
        )
    lines += [
        "",
        "Columns: claims/s = trials created / wall time from the start signal to the last "
        "worker's exit (start-up and the final polls included); lock wait = time to acquire "
        "the budget lock, over every acquisition (a worker also takes it to find the budget "
        "met or all slots running, and now and then to queue lost retries); lock hold = from "
        "taking the lock to releasing it (count trials + create the next); storage per "
        "trial = the worker main thread's storage calls per trial, lock wait excluded "
        "(heartbeats and the stale-trial watcher run in side threads); peak connections = "
        "client backends in `pg_stat_activity`, for the study's database and for the whole "
        "server, sampled every 0.2 s; server CPU = CPU time of every PostgreSQL process on "
        "this machine from the start signal to the last worker's exit (exited backends "
        "included), and its share of all cores over that wall time; CPU per trial = (the "
        "workers' own CPU time from the start signal + server CPU) / trials; workers busy = "
        "time inside the (sleeping) training step / (N x wall).",
    ]
    lines += ["", "Main-thread storage time per trial by call (ms), the four largest:", ""]
    for r in rows:
        top = list(r["top_methods_ms_per_trial"].items())[:4]
        lines.append(f"- N={r['n']}: " + ", ".join(f"`{k}` {v:.0f}" for k, v in top))
    lines.append(
        "- the sampler's view (it runs outside the lock): other trials whose parameters a "
        "trial's sampler could not see, because they were created but had not written their "
        "first parameter when it read the study: "
        + ", ".join(
            f"N={r['n']}: mean {r['unseen_params']['mean']:.2f}, max "
            f"{r['unseen_params']['max']} ({100 * r['unseen_params']['share']:.0f} % of trials "
            "missed at least one)"
            for r in rows
        )
    )
    lines.append(
        "- peak budget-lock waiters (workers waiting at once, from their wait times): "
        + ", ".join(f"N={r['n']}: {r['peak_lock_waiters']}" for r in rows)
        + "; peak connections of the study's database by state: "
        + "; ".join(
            f"N={r['n']}: " + ", ".join(f"{k or '?'} {v}" for k, v in r["peak_by_state"].items())
            for r in rows
        )
    )
    if len(rows) > 1:
        lines += render_model(claim_model(rows, args, server), rows)
    problems = [r for r in rows if r["errors"] or r["stderr_tails"]]
    if problems:
        lines += ["", "Errors by kind (count):", ""]
        for r in problems:
            for text, count in sorted(r["errors"].items(), key=lambda kv: -kv[1])[:6]:
                lines.append(f"- N={r['n']}: {count} x `{text.replace('`', '')[:300]}`")
            for tail in r["stderr_tails"]:
                last = tail.splitlines()[-1] if tail else ""
                lines.append(f"- N={r['n']}: a worker exited with an error: `{last[:200]}`")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("SWEEP_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", default="1,4,16,64", help="comma-separated N values")
    parser.add_argument("--trials-per-worker", type=int, default=3)
    parser.add_argument("--trial-seconds", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--heartbeat-interval", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=600.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--label",
        default="",
        help="write the block db_scale/LABEL instead of db_scale (e.g. a run before a fix)",
    )
    parser.add_argument("--no-write", action="store_true", help="only print the section")
    parser.add_argument("--code-version", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--idle-connections",
        type=int,
        default=None,
        help="SWEEP_DB_IDLE_CONNECTIONS in the workers (default: the product's; 1 with --pooler)",
    )
    parser.add_argument(
        "--pooler",
        type=int,
        default=0,
        metavar="SERVER_CONNECTIONS",
        help="workers connect through PgBouncer in transaction mode (docker/pooler.sh) with this "
        "many server connections, keeping 1 idle connection each; 0: straight to the server",
    )
    parser.add_argument("--results", type=Path, default=_records.RESULTS, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--study", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.idle_connections is None:
        from sweep.store import rdb

        default = getattr(rdb, "POSTGRES_IDLE_CONNECTIONS", 0)
        args.idle_connections = 1 if args.pooler else default
    if args.worker:
        return worker_main(args)
    if not args.postgres:
        parser.error("needs --postgres or $SWEEP_TEST_POSTGRES_URL")

    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from sweep.log import quiet_optuna
    from sweep.names import metric_names
    from sweep.train.data import load_dataset
    from sweep.train.synth import write_synthetic

    quiet_optuna()
    started_at = datetime.datetime.now().astimezone()
    started = time.perf_counter()
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    server = server_facts(admin)
    print(f"server: {server}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sweep-dbscale-") as tmp_name:
        tmp = Path(tmp_name)
        data = write_synthetic(tmp / "synthetic.npz", 200, seed=0)
        args.metric_names = metric_names([s.name for s in load_dataset(data).sections])
        with contextlib.ExitStack() as stack:
            args.pooled_url = (
                stack.enter_context(
                    _pooler.pgbouncer(args.postgres, server_connections=args.pooler)
                )
                if args.pooler
                else ""
            )
            load = stack.enter_context(_records.LoadMonitor())
            for n in [int(x) for x in args.workers.split(",") if x.strip()]:
                row = run_one(n, args, admin, data, tmp)
                printable = {k: v for k, v in row.items() if k != "stderr_tails"}
                print(json.dumps(printable, default=str), flush=True)
                rows.append(row)
    admin.dispose()
    text = render(rows, server, args, load, started_at, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        key = f"{BLOCK}/{args.label}" if args.label else BLOCK
        _records.write_block(key, text, args.results)
        print(f"wrote block {key!r} of {args.results}")
    bad = [r["n"] for r in rows if not r["budget_exact"] or r["duplicates"]]
    if bad:
        print(f"budget not exact or duplicate trial numbers at N = {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
