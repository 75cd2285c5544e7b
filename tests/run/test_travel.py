"""A launched study travels: moved with its folder, it exports its best model there.

One real tiny launch with the defaults (``--keep-weights`` not given: the best trial's weights
are kept), then the whole folder moves to another directory, as a copy to another machine would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep


def test_a_moved_default_study_exports_its_best_model(tmp_path: Path, synthetic_npz: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data = shutil.copy(synthetic_npz, home / "data.npz")
    url = f"sqlite:///{home / 'sweep.db'}"
    args = ("--space", str(TINY_SPACE), "--data", str(data), "--study", "t", "--n-trials", "2")
    run_sweep("launch", *args, "--set", "epochs=1", storage=url, check=True)
    kept = list((home / "sweep.db.artifacts" / "t").iterdir())
    best = json.loads(run_sweep("best", "t", "--format", "json", storage=url, check=True).stdout)
    number = best[0]["number"]

    away = tmp_path / "machine-b" / "copy"
    away.parent.mkdir()
    shutil.move(home, away)
    moved = f"sqlite:///{away / 'sweep.db'}"
    out = tmp_path / "model"
    done = run_sweep("export", "t", str(number), "--out", str(out), storage=moved)
    assert done.returncode == 0, done.stderr
    assert (out / "model.keras").is_file()
    assert json.loads((out / "export.json").read_text())["trial"] == number
    # pruning kept the disk bounded: the best trial's weights and each trial's samples only
    assert len(kept) <= 3, kept


def test_keep_weights_defaults_to_one_where_it_can_work(
    tmp_path: Path, synthetic_npz: Path, postgres_url: str
) -> None:
    """1 on SQLite; 0 for several objectives and for PostgreSQL without --artifacts (no
    refusal: the user did not ask); ``--force-new``'s NAME-2 gets its own folder key."""
    from sweep.store.read import StudyReader

    base = ("launch", "--data", str(synthetic_npz), "--no-run", "--reference", "none")
    tiny = ("--space", str(TINY_SPACE), "--study", "one")
    sqlite = f"sqlite:///{tmp_path / 's.db'}"
    run_sweep(*base, *tiny, storage=sqlite, check=True)
    pareto = ("--space", "notes_pareto", "--set", "encoder_units=32-16", "--set", "coding_size=4")
    run_sweep(*base, *pareto, "--study", "one", "--force-new", storage=sqlite, check=True)
    run_sweep(*base, *tiny, storage=postgres_url, check=True)

    def stored(url: str, name: str) -> tuple[int, str | None]:
        with StudyReader(url) as reader:
            config = reader.config(name).config or {}
        return config["keep_weights"], config["artifacts_dir"]

    assert stored(sqlite, "one") == (1, "one")  # relative to s.db: s.db.artifacts/one
    assert stored(sqlite, "one-2") == (0, "one-2")
    assert stored(postgres_url, "one") == (0, None)
