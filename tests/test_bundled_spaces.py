"""Every bundled space runs with the defaults: ``sweep launch --space S --n-trials 2 --set
epochs=1`` on the bundled data, and nothing else (a space of several objectives gets no pruner,
and the launch line says so)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweep.space import BUILTIN_SPACES_DIR
from tests.support.cli import run_sweep

SPACES = sorted(p.stem for p in BUILTIN_SPACES_DIR.glob("*.yaml"))


def test_the_bundled_spaces_are_the_ones_in_search_spaces() -> None:
    top = Path(__file__).resolve().parent.parent / "search_spaces"
    assert SPACES == sorted(p.stem for p in top.glob("*.yaml"))
    for name in SPACES:
        assert (top / f"{name}.yaml").read_text() == (
            BUILTIN_SPACES_DIR / f"{name}.yaml"
        ).read_text()


@pytest.mark.training
@pytest.mark.parametrize("space", SPACES)
def test_every_bundled_space_runs_with_the_defaults(tmp_path: Path, space: str) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    done = run_sweep(
        "launch", "--space", space, "--n-trials", "2", "--set", "epochs=1", storage=url
    )
    assert done.returncode == 0, done.stderr[-3000:]
    status = run_sweep("status", "notes", "--format", "json", storage=url)
    info = json.loads(status.stdout)
    assert info["finished"] == 2, info
    if len(info["objectives"]) > 1:
        assert "pruner none (several objectives)" in done.stderr
