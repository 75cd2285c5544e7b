"""Racing under SIGKILL: a worker killed while it runs an extra seed, then ``sweep resume``.

The killed seed goes stale, Optuna fails it and queues its retry under the same seed index, and
the resumed sweep runs it: every (configuration, seed index) ends COMPLETE exactly once, and the
budget counts configurations.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from sweep.seeds import RACE_ATTR
from sweep.seeds import SEED_INDEX_ATTR
from tests.support.faults import GRACE_S
from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import create_study
from tests.support.faults import descendants
from tests.support.faults import run_sweep
from tests.support.faults import wait_gone
from tests.support.faults import wait_until

BUDGET = 2


@pytest.mark.faults
@pytest.mark.parametrize("fault_storage", ["sqlite", "postgres"], indirect=True)
def test_a_seed_killed_mid_run_runs_exactly_once_after_resume(
    fault_storage: str, procs: Processes, synthetic_npz: Path
) -> None:
    url = fault_storage
    create_study(url, "race", synthetic_npz, BUDGET, "--max-seeds", "3", "--sampler", "random")
    reader = StudyReader(url, "race")
    worker = procs.start(url, "worker", "race")

    def running_seed() -> list:
        return [
            t for t in reader.trials() if t.state.name == "RUNNING" and RACE_ATTR in t.user_attrs
        ]

    victim = wait_until(
        lambda: running_seed() or worker.poll() is not None,
        timeout=300,
        what="the worker to run an extra seed",
    )
    assert worker.poll() is None, procs.output(worker)[-3000:]
    time.sleep(0.5)  # inside the seed's training
    children = descendants(worker.pid)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert not wait_gone(children, timeout=10)
    killed = victim[0]
    key = (killed.user_attrs[RACE_ATTR], killed.user_attrs[SEED_INDEX_ATTR])

    time.sleep(GRACE_S + 1)  # the killed seed goes stale
    done = run_sweep(url, "resume", "race", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    trials = reader.trials()
    assert trials[killed.number].state.name == "FAIL"
    configs = [t for t in trials if RACE_ATTR not in t.user_attrs]
    seeds = [t for t in trials if RACE_ATTR in t.user_attrs]
    assert Counter(t.state.name for t in configs) == {"COMPLETE": BUDGET}
    complete = Counter(
        (t.user_attrs[RACE_ATTR], t.user_attrs[SEED_INDEX_ATTR])
        for t in seeds
        if t.state.name == "COMPLETE"
    )
    assert complete[key] == 1, f"the killed seed {key} ran {complete[key]} times to completion"
    assert all(n == 1 for n in complete.values()), complete
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    reader.close()
