"""Fault 7: a worker's resident memory over 50 tiny trials grows by less than 10 %.

Trials run in fresh child processes, so this measures the worker parent: Optuna, SQLAlchemy,
the heartbeat thread and whatever the parent keeps per trial. RSS is read from ``psutil`` as the
worker logs each finished trial.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import psutil
import pytest

from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import check_sweep
from tests.support.faults import create_study

BUDGET = 50
EARLY = 5
MAX_GROWTH = 0.10
_DONE = re.compile(r"trial \d+ \w+.*\| (\d+)/(\d+) done")


@pytest.mark.faults
def test_worker_memory_is_flat_over_50_trials(
    sqlite_url: str, procs: Processes, synthetic_npz: Path
) -> None:
    create_study(
        sqlite_url, "memory", synthetic_npz, BUDGET, "--sampler", "random", "--pruner", "none"
    )
    worker = procs.start(sqlite_url, "worker", "memory")
    process = psutil.Process(worker.pid)
    rss_after: dict[int, int] = {}
    last_rss = 0
    seen = 0
    deadline = time.monotonic() + 900
    while worker.poll() is None and time.monotonic() < deadline:
        try:
            last_rss = process.memory_info().rss
        except psutil.NoSuchProcess:
            break
        lines = procs.output(worker).splitlines()
        for line in lines[seen:]:
            match = _DONE.search(line)
            if match:
                rss_after.setdefault(int(match.group(1)), last_rss)
        seen = len(lines)
        time.sleep(0.05)
    code, output = procs.finish(worker, timeout=60)
    assert code == 0, output[-3000:]
    for line in output.splitlines()[seen:]:  # lines printed after the last sample
        match = _DONE.search(line)
        if match:
            rss_after.setdefault(int(match.group(1)), last_rss)
    reader = StudyReader(sqlite_url, "memory")
    figures = check_sweep(reader.trials(), BUDGET)
    reader.close()
    assert EARLY in rss_after and BUDGET in rss_after, sorted(rss_after)
    early, late = rss_after[EARLY], rss_after[BUDGET]
    growth = late / early - 1.0
    peak = max(rss_after.values())
    print(
        f"[faults] worker RSS after trial {EARLY}: {early / 2**20:.1f} MiB, after trial "
        f"{BUDGET}: {late / 2**20:.1f} MiB, growth {growth:+.1%} (peak {peak / 2**20:.1f} MiB; "
        f"limit +{MAX_GROWTH:.0%}); {figures.line()}",
        flush=True,
    )
    assert growth < MAX_GROWTH
