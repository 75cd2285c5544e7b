"""Fault 2: SIGINT and SIGTERM to `sweep launch` (one worker in-process, or two processes).

SIGINT goes to the whole process group (what Ctrl-C in a terminal does); SIGTERM goes to the
launching process alone (what ``kill``, systemd or ``docker stop`` do). Either way every worker
stops, every trial in flight is recorded (FAIL with the reason, or finished), no process is left
behind, and ``sweep resume`` completes the budget.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.support.faults import FAST_HEARTBEAT
from tests.support.faults import TINY_SPACE
from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import check_sweep
from tests.support.faults import descendants
from tests.support.faults import fault_seed
from tests.support.faults import run_sweep
from tests.support.faults import wait_gone
from tests.support.faults import wait_until

BUDGET = 3
CASES = [
    # (workers, signal, sent to, backend)
    (1, signal.SIGTERM, "parent", "sqlite"),
    (1, signal.SIGINT, "group", "postgres"),
    (2, signal.SIGINT, "group", "sqlite"),
    (2, signal.SIGTERM, "parent", "postgres"),
]


@pytest.mark.faults
@pytest.mark.parametrize(
    ("workers", "signum", "target", "fault_storage"),
    CASES,
    indirect=["fault_storage"],
    ids=[f"{w}workers-{s.name}-{t}-{b}" for w, s, t, b in CASES],
)
def test_signal_stops_launch_cleanly_and_resume_finishes(
    workers: int,
    signum: signal.Signals,
    target: str,
    fault_storage: str,
    procs: Processes,
    synthetic_npz: Path,
) -> None:
    url = fault_storage
    seed = fault_seed(f"{signum.name} to launch ({workers} workers)")
    rng = random.Random(seed)
    launch = procs.start(
        url,
        "launch",
        "--space",
        str(TINY_SPACE),
        "--data",
        str(synthetic_npz),
        "--study",
        "sig",
        "--n-trials",
        str(BUDGET),
        "--set",
        "epochs=1",
        "--sampler",
        "random",
        "--workers",
        str(workers),
        *FAST_HEARTBEAT,
    )
    reader = wait_until(
        lambda: _reader(url) if launch.poll() is None else launch.poll(), 60, "the study"
    )
    assert isinstance(reader, StudyReader), procs.output(launch)
    wait_until(
        lambda: reader.counts()["RUNNING"] >= workers or launch.poll() is not None,
        timeout=120,
        what=f"{workers} trials in flight",
    )
    assert launch.poll() is None, procs.output(launch)
    time.sleep(rng.uniform(0.3, 3.0))
    family = descendants(launch.pid)
    in_flight = [t.number for t in reader.trials() if t.state.name == "RUNNING"]
    if target == "group":
        os.killpg(launch.pid, signum)
    else:
        os.kill(launch.pid, signum)
    code, output = procs.finish(launch, timeout=120)
    left = wait_gone(family, timeout=15)
    assert not left, f"processes left running after {signum.name}: {left}\n{output[-2000:]}"
    assert code == 130, f"exit code {code}:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"Interrupted by {signum.name}") and "sweep resume" in last, last
    trials = reader.trials()
    assert not [t.number for t in trials if t.state.name == "RUNNING"], (
        f"trials left RUNNING after {signum.name}: {output[-2000:]}"
    )
    recorded = []
    for number in in_flight:
        trial = trials[number]
        if trial.state.name == "FAIL":
            reason = trial.user_attrs.get("fail_reason", "")
            assert reason == f"interrupted by {signum.name}", f"trial {number}: {reason!r}"
        else:
            assert trial.state.name in ("COMPLETE", "PRUNED"), trial.state.name
        recorded.append(f"#{number} {trial.state.name}")
    resumed = run_sweep(url, "resume", "sig", timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    figures = check_sweep(reader.trials(), BUDGET)
    reader.close()
    print(
        f"[faults] {signum.name} to launch {target} ({workers} workers, "
        f"{url.split(':')[0]}): in flight {', '.join(recorded)}; exit {code}; after resume "
        f"{figures.line()}",
        flush=True,
    )


def _reader(url: str) -> StudyReader | None:
    try:
        return StudyReader(url, "sig")
    except Exception:  # the study is not created yet
        return None
