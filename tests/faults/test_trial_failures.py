"""Faults 4 and 5: trials that fail for real (NaN loss, out of memory, a crashed trial process).

Each failure becomes a FAIL trial whose ``fail_reason`` says why, and the sweep goes on; N
consecutive failures (``--max-consecutive-failures``) stop it with a message naming the last
reason. Nothing is simulated: a learning rate of 1e12 really drives the loss to NaN, and a
200000-unit layer really exhausts a 4 GiB address-space limit inside TensorFlow.
"""

from __future__ import annotations

import os
import resource
import signal
from pathlib import Path

import pytest

from tests.support.faults import FAST_HEARTBEAT
from tests.support.faults import TINY_SPACE
from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import check_sweep
from tests.support.faults import create_study
from tests.support.faults import wait_until

MEMORY_LIMIT = 4 << 30  # bytes of address space: plenty for a worker, too few for 200000 units
DIVERGING_LR = 1.0e12


def _space(tmp_path: Path, search: str) -> Path:
    """The tiny space with extra searched names (YAML lines under ``search:``)."""
    text = TINY_SPACE.read_text()
    path = tmp_path / "space.yaml"
    path.write_text(text.replace("search:\n", f"search:\n{search}"))
    return path


def _launch(
    procs: Processes,
    url: str,
    space: Path,
    data: Path,
    budget: int,
    *extra: str,
    preexec: object = None,
) -> tuple[int, str]:
    process = procs.start(
        url,
        "launch",
        "--space",
        str(space),
        "--data",
        str(data),
        "--study",
        "fails",
        "--n-trials",
        str(budget),
        "--set",
        "epochs=1",
        "--sampler",
        "random",
        "--pruner",
        "none",
        *FAST_HEARTBEAT,
        *extra,
        preexec=preexec,  # type: ignore[arg-type]
    )
    return procs.finish(process, timeout=400)


@pytest.mark.faults
def test_nan_loss_fails_the_trial_and_the_sweep_goes_on(
    sqlite_url: str, procs: Processes, synthetic_npz: Path, tmp_path: Path
) -> None:
    space = _space(
        tmp_path, f"  learning_rate: {{type: categorical, choices: [0.001, {DIVERGING_LR}]}}\n"
    )
    code, output = _launch(
        procs,
        sqlite_url,
        space,
        synthetic_npz,
        3,
        "--seed",
        "5",
        "--max-consecutive-failures",
        "10",
    )
    assert code == 0, output[-3000:]
    reader = StudyReader(sqlite_url, "fails")
    trials = reader.trials()
    reader.close()
    figures = check_sweep(trials, 3)
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed, "seed 5 was chosen so that a diverging learning rate is drawn"
    for trial in failed:
        assert trial.params["learning_rate"] == DIVERGING_LR
        reason = trial.user_attrs["fail_reason"]
        assert reason.startswith("non-finite") and "loss" in reason and "nan" in reason, reason
        assert f"trial {trial.number} FAIL" in output and reason in output
    for trial in trials:
        if trial.state.name == "COMPLETE":
            assert trial.params["learning_rate"] == 0.001
    print(
        f"[faults] NaN loss: {len(failed)} FAIL ({failed[0].user_attrs['fail_reason']!r}); "
        f"{figures.line()}",
        flush=True,
    )


@pytest.mark.faults
@pytest.mark.parametrize("fault_storage", ["sqlite", "postgres"], indirect=True)
def test_consecutive_failures_stop_the_sweep_naming_the_last_reason(
    fault_storage: str, procs: Processes, synthetic_npz: Path
) -> None:
    code, output = _launch(
        procs,
        fault_storage,
        TINY_SPACE,
        synthetic_npz,
        4,
        "--set",
        f"learning_rate={DIVERGING_LR}",
        "--max-consecutive-failures",
        "2",
    )
    assert code == 1, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert "Traceback" not in output
    reader = StudyReader(fault_storage, "fails")
    trials = reader.trials()
    reader.close()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"], output[-3000:]
    reason = trials[-1].user_attrs["fail_reason"]
    assert reason.startswith("non-finite")
    assert last == (
        f"Error: stopped after 2 consecutive failed trials "
        f"(--max-consecutive-failures); last reason (trial 1): {reason}"
    ), last
    print(
        f"[faults] 2 consecutive NaN trials ({fault_storage.split(':')[0]}): exit {code}, "
        f"{last!r}",
        flush=True,
    )


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.faults
def test_out_of_memory_fails_the_trial_and_the_worker_goes_on(
    sqlite_url: str, procs: Processes, synthetic_npz: Path, tmp_path: Path
) -> None:
    space = _space(
        tmp_path, "  encoder_units: {type: categorical, choices: [200000-200000, 32-16]}\n"
    )
    space.write_text(space.read_text().replace("  encoder_units: [32, 16]\n", ""))
    code, output = _launch(
        procs,
        sqlite_url,
        space,
        synthetic_npz,
        2,
        "--seed",
        "0",
        "--max-consecutive-failures",
        "10",
        preexec=_limit_memory,
    )
    assert code == 0, output[-3000:]
    reader = StudyReader(sqlite_url, "fails")
    trials = reader.trials()
    reader.close()
    figures = check_sweep(trials, 2)
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed, "seed 0 was chosen so that the huge layer is drawn"
    for trial in failed:
        assert trial.params["encoder_units"] == "200000-200000"
        reason = trial.user_attrs["fail_reason"]
        assert reason.startswith("out of memory") and "alloc" in reason, reason
    for trial in trials:
        if trial.state.name == "COMPLETE":
            assert trial.params["encoder_units"] == "32-16"
    print(
        f"[faults] out of memory under RLIMIT_AS={MEMORY_LIMIT >> 30} GiB: {len(failed)} FAIL "
        f"({failed[0].user_attrs['fail_reason'][:90]!r}...); {figures.line()}",
        flush=True,
    )


@pytest.mark.faults
def test_crashed_trial_process_fails_the_trial_and_the_worker_goes_on(
    sqlite_url: str, procs: Processes, synthetic_npz: Path
) -> None:
    create_study(sqlite_url, "crash", synthetic_npz, 2, "--sampler", "random")
    reader = StudyReader(sqlite_url, "crash")
    worker = procs.start(sqlite_url, "worker", "crash")
    running = wait_until(lambda: reader.running_for(worker.pid), 120, "a trial in flight")
    import psutil

    child = wait_until(
        lambda: [
            p
            for p in psutil.Process(worker.pid).children()
            if "sweep.run._child" in " ".join(p.cmdline())
        ],
        60,
        "the trial process",
    )[0]
    os.kill(child.pid, signal.SIGKILL)
    code, output = procs.finish(worker, timeout=300)
    assert code == 0, output[-3000:]
    trials = reader.trials()
    reader.close()
    figures = check_sweep(trials, 2)
    crashed = trials[running[0].number]
    assert crashed.state.name == "FAIL"
    reason = crashed.user_attrs["fail_reason"]
    assert reason.startswith("trial process killed by SIGKILL"), reason
    print(f"[faults] trial process SIGKILLed: {reason!r}; {figures.line()}", flush=True)
