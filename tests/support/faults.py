"""Shared helpers of the fault suite: run real `sweep` processes and read their study back.

Every helper talks to real processes and real databases: workers are ``python -m sweep worker``
subprocesses, studies are read with Optuna's RDB storage, nothing is mocked. Command lines and
environments come from the one CLI helper module, ``tests/support/cli.py``.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import TypeVar

import psutil

from tests.support.cli import run_sweep as shared_run_sweep
from tests.support.cli import sweep_argv
from tests.support.cli import sweep_env

REPO = Path(__file__).resolve().parents[2]
TINY_SPACE = REPO / "search_spaces" / "tiny.yaml"
OBJECTIVE = "expression.auroc"
HEARTBEAT_S = 1
GRACE_S = 4
#: Heartbeat settings that keep stale-trial detection fast enough for tests.
FAST_HEARTBEAT = ("--heartbeat-interval", str(HEARTBEAT_S), "--grace-period", str(GRACE_S))
#: Optuna's RetryHeartbeatStaleTrialCallback retries a trial at most this often (sweep's default).
MAX_RETRY = 3
SEED_ENV = "SWEEP_FAULT_SEED"

T = TypeVar("T")


def fault_seed(label: str) -> int:
    """The seed of a randomised fault test: ``$SWEEP_FAULT_SEED`` or a fresh one (printed)."""
    text = os.environ.get(SEED_ENV)
    seed = int(text) if text else random.SystemRandom().randrange(1, 2**31)
    print(f"\n[faults] {label}: seed {seed} (replay with {SEED_ENV}={seed})", flush=True)
    return seed


def run_sweep(
    url: str, *args: str, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sweep ARGS`` as a real process (storage from the environment) and return the result.

    The fault suite's spelling of the one CLI helper, :func:`tests.support.cli.run_sweep`.
    """
    return shared_run_sweep(*args, storage=url, cwd=cwd, process=True, timeout=timeout)


def create_study(
    url: str,
    name: str,
    data: Path,
    n_trials: int,
    *extra: str,
    space: Path | str = TINY_SPACE,
) -> None:
    """``sweep launch --no-run``: create the study (tiny space, 1 epoch, fast heartbeat)."""
    result = run_sweep(
        url,
        "launch",
        "--no-run",
        "--space",
        str(space),
        "--data",
        str(data),
        "--study",
        name,
        "--n-trials",
        str(n_trials),
        "--set",
        "epochs=1",
        *FAST_HEARTBEAT,
        *extra,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == name


class Processes:
    """Starts `sweep` processes in their own process groups; kills what is left at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}

    def start(
        self,
        url: str,
        *args: str,
        preexec: Callable[[], None] | None = None,
        **extra_env: str,
    ) -> subprocess.Popen[bytes]:
        """Start ``sweep ARGS``; stdout and stderr go to one log file (see :meth:`output`)."""
        log = self.log_dir / f"sweep-{len(self.started)}.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                sweep_argv(*args),
                env=sweep_env(url, **extra_env),
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=preexec,
            )
        self.started.append(process)
        self.logs[process.pid] = log
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        """Everything the process printed so far."""
        return self.logs[process.pid].read_text(errors="replace")

    def finish(self, process: subprocess.Popen[bytes], timeout: float) -> tuple[int, str]:
        """Wait for the process; on timeout kill its group and fail with its output."""
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            raise AssertionError(
                f"`{' '.join(map(str, process.args))}` still ran after {timeout:.0f} s:\n"
                f"{self.output(process)[-3000:]}"
            ) from None
        return code, self.output(process)

    def cleanup(self) -> None:
        for process in self.started:
            if process.poll() is None:
                kill_group(process)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a process started with ``start_new_session``."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def descendants(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid`` (a worker's trial processes)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def wait_gone(processes: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Processes still alive (and not zombies) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.1)
    return [p for p in alive if _alive(p)]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(probe: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class StudyReader:
    """Reads a study's trials straight from its storage (reconnecting across outages)."""

    def __init__(self, url: str, name: str) -> None:
        import optuna

        from sweep.store.rdb import open_storage

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self.storage = open_storage(url)
        self.study_id = self.storage.get_study_id_from_name(name)
        self.name = name

    def trials(self) -> list[Any]:
        """Every trial (``FrozenTrial``), in number order."""
        trials = self.storage.get_all_trials(self.study_id, deepcopy=False)
        return sorted(trials, key=lambda t: t.number)

    def counts(self) -> Counter[str]:
        return Counter(t.state.name for t in self.trials())

    def running_for(self, pid: int) -> list[Any]:
        """RUNNING trials whose ``worker`` attribute names process ``pid``."""
        return [
            t
            for t in self.trials()
            if t.state.name == "RUNNING"
            and str(t.user_attrs.get("worker", "")).endswith(f":{pid}")
        ]

    def close(self) -> None:
        self.storage.remove_session()
        self.storage.engine.dispose()


@dataclass
class SweepFigures:
    """What a finished study holds, for the assertions and the printed report."""

    budget: int
    states: Counter[str] = field(default_factory=Counter)
    finished: int = 0
    duplicates: int = 0
    retried: int = 0
    lost: list[int] = field(default_factory=list)
    retry_exhausted: list[int] = field(default_factory=list)

    def line(self) -> str:
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.states.items()))
        return (
            f"budget {self.budget}, finished {self.finished} ({states}); FAIL trials retried "
            f"{self.retried}, lost {len(self.lost)}, retries exhausted "
            f"{len(self.retry_exhausted)}; duplicate numbers {self.duplicates}"
        )


def retries_of(trials: Sequence[Any], number: int) -> list[Any]:
    """Trials that re-run trial ``number`` (Optuna's ``retry_history`` ends with it)."""
    return [t for t in trials if (t.system_attrs.get("retry_history") or [None])[-1] == number]


def check_sweep(
    trials: Sequence[Any], budget: int, *, stale_fail_only: bool = False
) -> SweepFigures:
    """Assert a finished sweep's invariants and return its figures.

    * exactly ``budget`` finished trials (COMPLETE + PRUNED), no RUNNING trial left;
    * trial numbers unique and consecutive from 0;
    * every COMPLETE trial holds its metrics, the objective equal to its value, its parameters;
    * every FAIL trial either has a retry or states its reason (``fail_reason``); with
      ``stale_fail_only`` every FAIL must have a retry (or have used up Optuna's ``max_retry``).
    """
    figures = SweepFigures(budget=budget)
    numbers = [t.number for t in trials]
    figures.duplicates = len(numbers) - len(set(numbers))
    assert figures.duplicates == 0, f"duplicate trial numbers: {numbers}"
    assert sorted(numbers) == list(range(len(numbers))), f"gaps in trial numbers: {numbers}"
    figures.states = Counter(t.state.name for t in trials)
    figures.finished = figures.states["COMPLETE"] + figures.states["PRUNED"]
    assert figures.finished == budget, f"{figures.finished} finished trials, budget {budget}"
    assert figures.states["RUNNING"] == 0, "a RUNNING trial was left behind"
    for trial in trials:
        if trial.state.name == "COMPLETE":
            check_complete(trial)
        elif trial.state.name == "FAIL":
            history = trial.system_attrs.get("retry_history") or []
            if retries_of(trials, trial.number):
                figures.retried += 1
            elif len(history) >= MAX_RETRY:
                figures.retry_exhausted.append(trial.number)
            elif stale_fail_only or not trial.user_attrs.get("fail_reason"):
                figures.lost.append(trial.number)
    assert not figures.lost, f"FAIL trials neither retried nor explained: {figures.lost}"
    return figures


def check_complete(trial: Any) -> None:
    """A COMPLETE trial's record is intact: metrics, objective, parameters, history."""
    metrics = trial.user_attrs.get("metrics")
    assert isinstance(metrics, dict) and metrics, f"trial {trial.number} has no metrics"
    assert math.isfinite(trial.value), f"trial {trial.number} value {trial.value}"
    assert metrics.get(OBJECTIVE) == pytest_approx(trial.value), (
        f"trial {trial.number}: metric {OBJECTIVE}={metrics.get(OBJECTIVE)} != value {trial.value}"
    )
    assert {OBJECTIVE, "expression.f1", "latent.active_units"} <= set(metrics), (
        f"trial {trial.number} lacks metrics: {sorted(metrics)}"
    )
    params_full = trial.user_attrs.get("params_full")
    assert isinstance(params_full, dict) and params_full.get("epochs") == 1
    for name, value in trial.params.items():
        full = params_full.get(name)
        if isinstance(full, list):  # layer stacks are searched as labels like "32-16"
            full = "-".join(map(str, full))
        assert full == value, f"trial {trial.number}: params_full {name}={full!r} != {value!r}"
    assert trial.user_attrs.get("history"), f"trial {trial.number} has no history"
    assert trial.user_attrs.get("epochs_run") == 1


def pytest_approx(value: float) -> Any:
    import pytest

    return pytest.approx(value, rel=1e-9, abs=1e-12)
