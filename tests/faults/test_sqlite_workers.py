"""Fault 6: four local workers on one SQLite file, 40 trials, no "database is locked"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.faults import FAST_HEARTBEAT
from tests.support.faults import TINY_SPACE
from tests.support.faults import Processes
from tests.support.faults import StudyReader
from tests.support.faults import check_sweep

BUDGET = 40
WORKERS = 4


@pytest.mark.faults
def test_four_workers_on_one_sqlite_file(
    sqlite_url: str, procs: Processes, synthetic_npz: Path
) -> None:
    launch = procs.start(
        sqlite_url,
        "launch",
        "--space",
        str(TINY_SPACE),
        "--data",
        str(synthetic_npz),
        "--study",
        "many",
        "--n-trials",
        str(BUDGET),
        "--set",
        "epochs=1",
        "--sampler",
        "random",
        "--pruner",
        "none",
        "--workers",
        str(WORKERS),
        *FAST_HEARTBEAT,
    )
    code, output = procs.finish(launch, timeout=900)
    assert code == 0, output[-4000:]
    assert "database is locked" not in output.lower(), output[-4000:]
    assert "retrying in" not in output, "a storage call needed a retry:\n" + output[-4000:]
    reader = StudyReader(sqlite_url, "many")
    trials = reader.trials()
    reader.close()
    figures = check_sweep(trials, BUDGET)
    assert figures.states == {"COMPLETE": BUDGET}, figures.line()
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == WORKERS, f"trials ran on {len(workers)} workers, not {WORKERS}"
    print(
        f"[faults] {WORKERS} workers on one SQLite file: {figures.line()}; trials per worker "
        f"{sorted(sum(t.user_attrs['worker'] == w for t in trials) for w in workers)}; "
        "'database is locked' 0",
        flush=True,
    )
