"""Artifacts that travel: the resolver, ``sweep copy`` and ``sweep delete``, on real databases.

Studies are written through Optuna (:mod:`tests.support.study_writer`) with real artifact files
uploaded the way workers upload them; no training. The end-to-end check on a launched study
(moved, then exported) is in ``tests/run/test_travel.py``.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from sweep.params import TrialParams
from sweep.store.artifacts import locate
from sweep.store.artifacts import make_folder
from sweep.store.artifacts import new_location
from sweep.store.read import WEIGHTS_ATTR
from tests.support.cli import run_sweep
from tests.support.database import dump
from tests.support.study_writer import write_study


def _study_with_artifacts(
    url: str, name: str, root: Path | None = None, stored: str | None = None
) -> list[str]:
    """Study ``name``: three written trials, then two with an uploaded file each (one kept as
    weights) and intermediate values; returns the artifact ids. ``stored``: the study's
    ``artifacts_dir`` as an older version wrote it (default: what a launch stores now)."""
    import optuna
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts import upload_artifact

    stored = stored or new_location(url, name, str(root) if root else None)
    write_study(url, name, 3, artifacts_dir=stored)
    located = locate(url, stored)
    assert located is not None
    store = FileSystemArtifactStore(str(make_folder(located.folder)))
    study = optuna.load_study(study_name=name, storage=url)
    ids = []
    for value in (0.95, 0.3):
        trial = study.ask({"coding_size": optuna.distributions.CategoricalDistribution([4, 8])})
        trial.report(value / 2, 0)
        trial.set_user_attr("params_full", TrialParams.from_dict({"epochs": 2}).to_dict())
        source = located.folder.parent / f"upload-{trial.number}.bin"
        source.write_bytes(f"weights of {trial.number}".encode())
        artifact = upload_artifact(
            artifact_store=store, file_path=str(source), study_or_trial=trial
        )
        source.unlink()
        trial.set_user_attr(WEIGHTS_ATTR, artifact)
        study.tell(trial, value)
        ids.append(artifact)
    return ids


def test_a_new_study_stores_a_key_that_follows_its_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'sweep.db'}"
    (tmp_path / "a").mkdir()
    ids = _study_with_artifacts(url, "s")
    assert new_location(url, "s", None) == "s"  # relative: no absolute path in the database
    assert (tmp_path / "a" / "sweep.db.artifacts" / "s" / ids[0]).is_file()
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "a", moved)
    located = locate(f"sqlite:///{moved / 'sweep.db'}", "s")
    assert located is not None and located.exists
    assert located.folder == moved / "sweep.db.artifacts" / "s"
    shutil.move(moved / "sweep.db.artifacts", tmp_path / "arts")  # apart: --artifacts DIR
    url = f"sqlite:///{moved / 'sweep.db'}"
    for given in (tmp_path / "arts", tmp_path / "arts" / "s"):  # the root, or the folder itself
        located = locate(url, "s", str(given))
        assert located is not None and located.folder == tmp_path / "arts" / "s"


def test_backup_copy_points_at_its_own_folder(tmp_path: Path) -> None:
    """`sqlite3 sweep.db ".backup copy.db"`: the copy never reads or deletes the original's."""
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    ids = _study_with_artifacts(url, "s")
    with (
        sqlite3.connect(tmp_path / "sweep.db") as source,
        sqlite3.connect(tmp_path / "copy.db") as target,
    ):
        source.backup(target)
    copy_url = f"sqlite:///{tmp_path / 'copy.db'}"
    shown = run_sweep("show", "s", "3", "--out", str(tmp_path / "fig"), storage=copy_url)
    assert shown.returncode == 0, shown.stderr
    expected = tmp_path / "copy.db.artifacts" / "s"
    assert f"artifacts: not found (looked in '{expected}')" in shown.stdout
    gone = run_sweep("export", "s", "3", "--out", str(tmp_path / "x"), storage=copy_url)
    assert gone.returncode == 1 and len(gone.stderr.strip().splitlines()) == 1, gone.stderr
    assert f"looked in '{expected}'" in gone.stderr
    deleted = run_sweep("delete", "s", "--yes", storage=copy_url)
    assert deleted.returncode == 0, deleted.stderr
    assert all((tmp_path / "sweep.db.artifacts" / "s" / a).is_file() for a in ids)
    shutil.copytree(tmp_path / "sweep.db.artifacts", tmp_path / "copy.db.artifacts")
    shown = run_sweep("show", "s", "3", "--out", str(tmp_path / "fig2"), storage=url)
    assert "weights kept" in shown.stdout


def test_an_old_absolute_path_falls_back_beside_the_database(tmp_path: Path) -> None:
    """Studies made before the key stored ``/abs/sweep.db.artifacts`` (one shared folder)."""
    old = tmp_path / "old"
    old.mkdir()
    url = f"sqlite:///{old / 'sweep.db'}"
    ids = _study_with_artifacts(url, "s", root=tmp_path / "gone")  # an absolute location
    stored = str(tmp_path / "gone" / "s")
    shutil.move(tmp_path / "gone" / "s", old / "sweep.db.artifacts")  # the old flat layout
    located = locate(url, stored)
    assert located is not None and located.folder == old / "sweep.db.artifacts"
    assert (located.folder / ids[0]).is_file()
    shutil.rmtree(old / "sweep.db.artifacts")
    done = run_sweep("export", "s", "3", "--out", str(tmp_path / "x"), storage=url)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert f"looked in '{stored}', then '{old / 'sweep.db.artifacts' / 's'}'" in done.stderr


def test_backup_of_an_old_study_reads_but_never_deletes_the_original(tmp_path: Path) -> None:
    """An older study stored the absolute ``/.../sweep.db.artifacts`` (one folder per file)."""
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    ids = _study_with_artifacts(url, "s", stored=str(tmp_path / "sweep.db.artifacts"))
    with sqlite3.connect(tmp_path / "sweep.db") as source:
        with sqlite3.connect(tmp_path / "copy.db") as target:
            source.backup(target)
    copy_url = f"sqlite:///{tmp_path / 'copy.db'}"
    located = locate(copy_url, str(tmp_path / "sweep.db.artifacts"))
    assert located is not None and located.foreign  # still readable from the copy
    assert located.folder == tmp_path / "sweep.db.artifacts"
    assert located.writable == tmp_path / "copy.db.artifacts"  # a resumed copy writes there
    done = run_sweep("delete", "s", "--yes", storage=copy_url)
    assert done.returncode == 0 and "0 artifact files" in done.stdout, done.stderr
    assert all((tmp_path / "sweep.db.artifacts" / a).is_file() for a in ids)
    assert run_sweep("best", "s", storage=url).returncode == 0  # the original is whole


def _confirmation_runs(url: str, name: str, n: int = 2) -> None:
    """A companion study ``NAME.confirm`` with ``n`` finished runs, as ``sweep confirm`` makes."""
    import optuna

    companion = optuna.create_study(study_name=f"{name}.confirm", storage=url)
    for seed in range(n):
        companion.add_trial(
            optuna.trial.create_trial(value=0.5 + seed / 10, user_attrs={"confirm_seed": seed})
        )


def test_delete_removes_rows_and_artifacts_and_asks_first(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    ids = _study_with_artifacts(url, "gone")
    _confirmation_runs(url, "gone")
    _study_with_artifacts(url, "stays")
    _confirmation_runs(url, "stays", 1)
    before = dump(url)
    declined = run_sweep("delete", "gone", storage=url, input="n\n")
    assert declined.returncode == 1 and "nothing was deleted" in declined.stderr
    assert "5 trials and 2 artifact files" in declined.stderr  # the question
    assert "its 2 confirmation runs (gone.confirm)" in declined.stderr
    assert dump(url) == before
    done = run_sweep("delete", "gone", "--yes", storage=url)
    assert done.returncode == 0, done.stderr
    assert "5 trials, 2 artifact files, 2 confirmation runs" in done.stdout
    assert not (tmp_path / "sweep.db.artifacts" / "gone").exists()
    assert not any((tmp_path / "sweep.db.artifacts" / "stays" / a).exists() for a in ids)
    assert len(list((tmp_path / "sweep.db.artifacts" / "stays").iterdir())) == 2
    studies = run_sweep("studies", "--format", "csv", storage=url, check=True).stdout
    assert "stays" in studies and "gone" not in studies
    import optuna

    assert sorted(optuna.get_all_study_names(url)) == ["stays", "stays.confirm"]
    unknown = run_sweep("delete", "gone", "--yes", storage=url)
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1
    assert "no study named 'gone'" in unknown.stderr


def _best(url: str, name: str) -> str:
    return run_sweep("best", name, "--format", "json", storage=url, check=True).stdout


@pytest.mark.postgres
def test_copy_round_trip_sqlite_postgres_sqlite(tmp_path: Path, postgres_url: str) -> None:
    first = f"sqlite:///{tmp_path / 'one.db'}"
    last = f"sqlite:///{tmp_path / 'two.db'}"
    ids = _study_with_artifacts(first, "s")
    best = _best(first, "s")
    refused = run_sweep("copy", "s", "p", "--to-storage", postgres_url, storage=first)
    assert refused.returncode == 1 and "--to-artifacts" in refused.stderr
    pg_root = tmp_path / "pg-artifacts"
    to_pg = ("copy", "s", "p", "--to-storage", postgres_url, "--to-artifacts", str(pg_root))
    done = run_sweep(*to_pg, storage=first)
    assert done.returncode == 0, done.stderr
    assert "5 trials, 2 artifact files" in done.stdout
    assert all((pg_root / "p" / a).is_file() for a in ids)
    back = run_sweep("copy", "p", "b", "--to-storage", last, storage=postgres_url)
    assert back.returncode == 0, back.stderr
    assert _best(postgres_url, "p") == best.replace('"s"', '"p"')
    assert _best(last, "b") == best.replace('"s"', '"b"')
    assert all((tmp_path / "two.db.artifacts" / "b" / a).is_file() for a in ids)
    _same_trials(first, "s", last, "b")
    exported = run_sweep("show", "b", "3", "--out", str(tmp_path / "f"), storage=last)
    assert "weights kept" in exported.stdout, exported.stdout
    # the destination exists: one line, exit 1, nothing altered (rows nor files)
    before = dump(postgres_url)
    again = run_sweep(*to_pg, storage=first)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1
    assert "already exists" in again.stderr
    assert dump(postgres_url) == before
    assert sorted(p.name for p in (pg_root / "p").iterdir()) == sorted(ids)


def _same_trials(url: str, name: str, other_url: str, other: str) -> None:
    import optuna

    def rows(u: str, n: str) -> list[tuple[object, ...]]:
        trials = optuna.load_study(study_name=n, storage=u).get_trials()
        return [
            (t.number, t.state, t.values, t.params, t.user_attrs, t.intermediate_values)
            for t in trials
        ]

    assert rows(url, name) == rows(other_url, other)


def test_copy_within_one_file_gets_its_own_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    ids = _study_with_artifacts(url, "s")
    _confirmation_runs(url, "s")
    done = run_sweep("copy", "s", "t", storage=url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(", 2 confirmation runs")
    _same_trials(url, "s.confirm", url, "t.confirm")
    _confirmation_runs(url, "u")  # a stray companion: copying to "u" is refused, nothing made
    before = dump(url)
    clash = run_sweep("copy", "s", "u", storage=url)
    assert clash.returncode == 1 and "'u.confirm' already exists" in clash.stderr
    assert dump(url) == before and not (tmp_path / "sweep.db.artifacts" / "u").exists()
    assert all((tmp_path / "sweep.db.artifacts" / "t" / a).is_file() for a in ids)
    run_sweep("delete", "s", "--yes", storage=url, check=True)
    assert all((tmp_path / "sweep.db.artifacts" / "t" / a).is_file() for a in ids)
    assert _best(url, "t")
