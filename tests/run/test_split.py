"""The held-out test split: its hash, stored with the study and checked by every worker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sweep.config import StudySettings
from sweep.errors import DataError
from sweep.run.launch import LaunchRequest
from sweep.run.launch import create_study
from sweep.run.worker import WorkerSettings
from sweep.run.worker import check_split
from sweep.run.worker import run_worker
from sweep.store.rdb import open_storage
from sweep.store.study import load_config
from sweep.store.study import save_config
from sweep.train.data import load_dataset
from sweep.train.data import split_digest
from sweep.train.data import write_npz
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep

SECTIONS = (("A", 12), ("expressed", 1))


def _file(path: Path, rows: int = 100, ones: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    X = (rng.random((rows, 13)) < 0.3).astype(np.uint8)
    X[:, -1] = 0
    X[rng.choice(rows, ones, replace=False), -1] = 1
    write_npz(path, X, SECTIONS)
    return path


def test_split_digest_is_the_row_indices() -> None:
    a = split_digest({"train": np.array([3, 1, 2]), "val": np.array([0]), "test": np.array([4])})
    b = split_digest({"test": np.array([4]), "val": np.array([0]), "train": np.array([1, 2, 3])})
    c = split_digest({"train": np.array([1, 2, 4]), "val": np.array([0]), "test": np.array([3])})
    assert a == b != c


def test_the_split_hash_depends_on_the_split_not_on_the_marks(tmp_path: Path) -> None:
    path = _file(tmp_path / "a.npz")
    base = load_dataset(path)
    assert base.test is not None and len(base.test) == 20  # the default 20 % test split
    X = np.load(path)["X"].copy()
    X[:, :-1] = 1 - X[:, :-1]  # every mark changed, labels kept: the same stratified split
    write_npz(tmp_path / "b.npz", X, SECTIONS)
    assert load_dataset(tmp_path / "b.npz").split_sha256 == base.split_sha256
    assert load_dataset(path, split_seed=1).split_sha256 != base.split_sha256
    assert load_dataset(path, test_fraction=0.1).split_sha256 != base.split_sha256
    assert base.summary()["split_sha256"] == base.split_sha256


def test_a_test_fraction_that_empties_a_class_is_one_line(tmp_path: Path) -> None:
    path = _file(tmp_path / "rare.npz", rows=60, ones=8)
    load_dataset(path)  # 8 positives: enough for 20 % validation and 20 % test
    with pytest.raises(DataError, match="test_fraction=0.1") as info:
        load_dataset(path, test_fraction=0.1)  # 10 % of 8 positives: under one row
    assert "\n" not in str(info.value)
    result = run_sweep("trial", "--data", str(path), "--test-fraction", "0.1", "--epochs", "1")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "test_fraction=0.1" in result.stderr


@pytest.mark.training  # the launch fits one batch first (preflight)
def test_workers_refuse_a_study_whose_split_differs(tmp_path: Path) -> None:
    path = _file(tmp_path / "d.npz")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    name = create_study(
        LaunchRequest(
            storage_url=url,
            study_name="s",
            space=str(TINY_SPACE),
            data_path=str(path),
            settings=StudySettings(n_trials=1, pruner="none"),
        )
    )
    storage = open_storage(url)
    config = load_config(storage, name)
    assert config.split_sha256 == load_dataset(path).split_sha256
    assert config.test_fraction == 0.2
    check_split(config, str(path))  # the same split: accepted

    other = "f" * 64
    save_config(storage, name, config.replace(split_sha256=other))
    with pytest.raises(DataError) as info:
        run_worker(WorkerSettings(study_name=name, storage_url=url, data_path=str(path)))
    message = str(info.value)
    assert "\n" not in message
    assert config.split_sha256[:16] in message and other[:16] in message
    import optuna

    assert optuna.load_study(study_name=name, storage=url).trials == []  # nothing ran


@pytest.mark.training  # the launch fits one batch first (preflight)
def test_launch_refuses_the_same_study_with_another_split(tmp_path: Path) -> None:
    from sweep.errors import StudyConflictError

    path = _file(tmp_path / "d.npz")
    url = f"sqlite:///{tmp_path / 'study.db'}"

    def launch(test_fraction: float) -> str:
        settings = StudySettings(n_trials=1, pruner="none", test_fraction=test_fraction)
        request = LaunchRequest(
            storage_url=url,
            study_name="s",
            space=str(TINY_SPACE),
            data_path=str(path),
            settings=settings,
        )
        return create_study(request)

    assert launch(0.2) == "s" and launch(0.2) == "s"  # the same split: continued
    with pytest.raises(StudyConflictError, match="different split"):
        launch(0.1)
