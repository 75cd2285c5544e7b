"""Fault 1: workers killed with SIGKILL in the middle of trials, at random points, repeatedly.

Within one sweep: start a worker, wait until it runs a trial, wait a random time, SIGKILL it (the
worker parent alone, so its trial process must die by PR_SET_PDEATHSIG, or its whole process
group), start the next one... then let a final worker finish the budget. The seed is printed;
``SWEEP_FAULT_SEED=N`` replays the same kill points.
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.faults import GRACE_S
from tests.support.faults import MAX_RETRY
from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import check_sweep
from tests.support.faults import create_study
from tests.support.faults import descendants
from tests.support.faults import fault_seed
from tests.support.faults import retries_of
from tests.support.faults import wait_gone
from tests.support.faults import wait_until

KILLS_PER_BACKEND = 6
BUDGET = 5


@dataclass
class Kill:
    index: int
    target: str  # "parent" or "group"
    delay_s: float
    trial: int
    at: float  # time.time() of the kill
    mid_trial: bool = False


@pytest.mark.faults
@pytest.mark.parametrize("fault_storage", ["sqlite", "postgres"], indirect=True)
def test_sigkill_at_random_points_loses_no_trial(
    fault_storage: str, procs: Processes, synthetic_npz: Path
) -> None:
    url = fault_storage
    backend = url.split(":", 1)[0].split("+")[0]
    seed = fault_seed(f"SIGKILL {backend}")
    rng = random.Random(f"{seed}-{backend}")
    create_study(url, "kills", synthetic_npz, BUDGET, "--sampler", "random")
    reader = StudyReader(url, "kills")
    kills: list[Kill] = []
    for index in range(KILLS_PER_BACKEND):
        worker = procs.start(url, "worker", "kills")
        running = wait_until(
            lambda w=worker: reader.running_for(w.pid) or w.poll() is not None,
            timeout=120,
            what=f"worker {index} to start a trial",
        )
        if worker.poll() is not None:  # budget already met by trials that finished before kills
            break
        delay = rng.uniform(0.2, 5.0)
        target = rng.choice(["parent", "group"])
        time.sleep(delay)
        children = descendants(worker.pid)
        if target == "parent":
            os.kill(worker.pid, signal.SIGKILL)
        else:
            os.killpg(worker.pid, signal.SIGKILL)
        kill = Kill(index, target, delay, running[0].number, time.time())
        worker.wait(timeout=30)
        survivors = wait_gone(children, timeout=10)
        assert not survivors, f"trial processes outlived their killed worker: {survivors}"
        trial = reader.trials()[kill.trial]
        kill.mid_trial = trial.state.name == "RUNNING"
        kills.append(kill)
    mid = [k for k in kills if k.mid_trial]
    assert len(mid) >= KILLS_PER_BACKEND - 2, f"too few kills landed mid-trial: {kills}"
    # The last victim must go stale before the final worker looks, else it would stay RUNNING
    # once the budget is met.
    time.sleep(GRACE_S + 1)
    final = procs.start(url, "worker", "kills")
    code, output = procs.finish(final, timeout=400)
    assert code == 0, output[-3000:]
    assert "database is locked" not in output
    trials = reader.trials()
    figures = check_sweep(trials, BUDGET, stale_fail_only=True)
    latencies = []
    for kill in mid:
        victim = trials[kill.trial]
        assert victim.state.name == "FAIL", f"killed trial {kill.trial} is {victim.state.name}"
        history = victim.system_attrs.get("retry_history") or []
        retries = retries_of(trials, kill.trial)
        assert retries or len(history) >= MAX_RETRY, f"killed trial {kill.trial} was not retried"
        for retry in retries:
            assert retry.params == victim.params, "a retry must re-run the same parameters"
            assert retry.system_attrs["failed_trial"] == (history or [kill.trial])[0]
        completed_at: datetime = victim.datetime_complete
        latencies.append(completed_at.timestamp() - kill.at)
    reader.close()
    kinds = ", ".join(f"{k.target}@{k.delay_s:.1f}s" for k in kills)
    print(
        f"[faults] SIGKILL {backend}: seed {seed}; kills {len(kills)} ({len(mid)} mid-trial; "
        f"{kinds}); {figures.line()}; kill-to-FAIL latency max {max(latencies):.1f} s "
        f"(grace {GRACE_S} s; marked by a live worker's stale-trial watcher)",
        flush=True,
    )
