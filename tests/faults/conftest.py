"""Fixtures of the fault suite: process bookkeeping and a shared synthetic data file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults import Processes


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Starts `sweep` processes; any still running at teardown is killed with its group."""
    processes = Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.cleanup()


@pytest.fixture
def fault_storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``sqlite`` or ``postgres`` by the test's ``backend`` parameter."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")
