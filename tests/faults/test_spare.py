"""Fault: the warm spare trial process (:class:`sweep.run.isolation.SparePool`) under kills.

A spare killed before its trial is replaced and no trial fails; a worker killed with SIGKILL
takes its spare with it (``PR_SET_PDEATHSIG``), so no trial process is left behind. SQLite only:
the spare does not touch the database.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import create_study
from tests.support.faults import descendants
from tests.support.faults import wait_gone
from tests.support.faults import wait_until


def _trial_processes(worker_pid: int) -> list[psutil.Process]:
    """The worker's trial processes (``python -m sweep.run._child``), oldest first."""
    found = []
    for process in descendants(worker_pid):
        try:
            if "sweep.run._child" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return sorted(found, key=lambda p: p.create_time())


def _with_spare(worker_pid: int) -> list[psutil.Process]:
    """Two trial processes: the one running a trial and its waiting spare (else empty)."""
    processes = _trial_processes(worker_pid)
    return processes if len(processes) >= 2 else []


@pytest.mark.faults
def test_a_spare_killed_before_use_is_replaced(procs: Processes, synthetic_npz: Path) -> None:
    url = f"sqlite:///{procs.log_dir / 'study.db'}"
    create_study(url, "spare", synthetic_npz, 3)
    worker = procs.start(url, "worker", "spare")
    running, spare = wait_until(
        lambda: _with_spare(worker.pid), timeout=180, what="a trial and its spare"
    )[:2]
    spare.kill()  # SIGKILL while it imports TensorFlow or waits for its request
    code, output = procs.finish(worker, timeout=400)
    assert code == 0, output[-3000:]
    assert "spare trial process" in output  # it noticed and started afresh
    reader = StudyReader(url, "spare")
    states = [t.state.name for t in reader.trials()]
    reader.close()
    assert states == ["COMPLETE"] * 3, output[-3000:]


@pytest.mark.faults
def test_a_killed_worker_leaves_no_spare(procs: Processes, synthetic_npz: Path) -> None:
    url = f"sqlite:///{procs.log_dir / 'study.db'}"
    create_study(url, "orphans", synthetic_npz, 3)
    worker = procs.start(url, "worker", "orphans")
    children = wait_until(
        lambda: _with_spare(worker.pid), timeout=180, what="a trial and its spare"
    )
    os.kill(worker.pid, signal.SIGKILL)  # the worker alone: no clean-up code runs
    worker.wait(timeout=30)
    survivors = wait_gone(children, timeout=10)
    assert not survivors, f"trial processes outlived their killed worker: {survivors}"
