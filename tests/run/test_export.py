"""Export, kept weights, ``sweep trial --params/--from``, the notebook API and the live view.

One real tiny study (two trials of the tiny space, 1 epoch, ``--keep-weights 1``) on SQLite is
shared by the module; the PostgreSQL and ranking checks write their studies through Optuna
(:mod:`study_writer`), with real artifact files, no training.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sweep.store.lookup import WEIGHTS_ATTR
from sweep.store.lookup import weight_holders
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.database import dump
from tests.support.study_writer import write_study

NAME = "exp"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished two-trial study that kept the best trial's weights."""
    from sweep.train.synth import write_synthetic

    root = tmp_path_factory.mktemp("export")
    data = write_synthetic(root / "data.npz", 200, seed=0)
    url = f"sqlite:///{root / 'study.db'}"
    args = ("--space", str(TINY_SPACE), "--data", str(data), "--study", NAME, "--n-trials", "2")
    args += ("--set", "epochs=1", "--pruner", "none", "--keep-weights", "1")
    run_sweep("launch", *args, storage=url, check=True)
    from sweep.store.read import list_trials

    trials = list_trials(url, NAME)
    best = max(trials, key=lambda t: t["values"][0])
    return {"url": url, "root": root, "data": data, "trials": trials, "best": best}


def _artifacts(root: Path) -> Path:
    return Path(f"{root / 'study.db'}.artifacts") / NAME  # the study's own folder


def _kept(url: str, root: Path) -> set[int]:
    return {n for n, _, a in weight_holders(url, NAME) if (_artifacts(root) / a).exists()}


def test_keep_weights_keeps_exactly_the_best(study: dict[str, Any]) -> None:
    assert _kept(study["url"], study["root"]) == {study["best"]["number"]}


def test_export_round_trip_same_predictions(study: dict[str, Any], tmp_path: Path) -> None:
    import keras

    import sweep

    out = tmp_path / "best"
    done = run_sweep("export", NAME, "--out", str(out), storage=study["url"])
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "data.sha256",
        "export.json",
        "model.keras",
        "params.yaml",
    ]
    meta = json.loads((out / "export.json").read_text())
    best = study["best"]
    assert meta["trial"] == best["number"]
    from sweep.train.data import file_sha256

    assert meta["data_sha256"] == file_sha256(study["data"])
    assert (out / "data.sha256").read_text().split()[0] == meta["data_sha256"]
    assert yaml.safe_load((out / "params.yaml").read_text()) == best["params_full"]

    # The trial stored its first validation rows with their codes and reconstructions.
    samples_id = best["user_attrs"]["samples_artifact"]
    with np.load(_artifacts(study["root"]) / samples_id) as samples:
        x, z_mean, recon = samples["x"], samples["z_mean"], samples["reconstruction"]
    model = sweep.load_model(out)
    got_z, _ = model.encode(x)
    np.testing.assert_allclose(got_z, z_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.reconstruct(x), recon.astype(np.float32), atol=2e-3)
    plain = keras.saving.load_model(out / "model.keras", compile=False)  # the file alone
    np.testing.assert_allclose(plain.reconstruct(x), model.reconstruct(x), atol=1e-6)


def test_trial_params_file_reproduces_the_params(study: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "ex"
    run_sweep("export", NAME, "--out", str(out), storage=study["url"], check=True)
    done = run_sweep(
        "trial", "--params", str(out / "params.yaml"), "--data", str(study["data"]), "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["params"] == study["best"]["params_full"]


def test_trial_from_reruns_a_stored_trial(study: dict[str, Any]) -> None:
    other = next(t for t in study["trials"] if t["number"] != study["best"]["number"])
    spec = f"{NAME}:{other['number']}"
    done = run_sweep("trial", "--from", spec, "--json", storage=study["url"])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["params"] == other["params_full"]
    from sweep.train.data import load_dataset

    assert result["data"] == load_dataset(study["data"]).summary()  # the study's split


def test_export_bad_input_one_line_nothing_changed(study: dict[str, Any], tmp_path: Path) -> None:
    url = study["url"]
    other = next(t for t in study["trials"] if t["number"] != study["best"]["number"])
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep")
    before = dump(url)
    cases = [
        (["--trial", "99", "--out", str(tmp_path / "a")], "has no trial 99"),
        (["--trial", str(other["number"]), "--out", str(tmp_path / "b")], "sweep trial --from"),
        (["--out", str(existing)], "pass --force"),
    ]
    for args, needle in cases:
        done = run_sweep("export", NAME, *args, storage=url)
        assert done.returncode != 0
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert needle in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]  # no staging left over
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]
    done = run_sweep("export", NAME, "--out", str(existing), "--force", storage=url)
    assert done.returncode == 0, done.stderr
    assert not (existing / "mine.txt").exists() and (existing / "model.keras").is_file()
    assert dump(url) == before


def test_bad_keep_weights_one_line_nothing_written(tmp_path: Path, synthetic_npz: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    base = ("launch", "--data", str(synthetic_npz), "--study", "k", "--no-run")
    cases = [
        (("--space", str(TINY_SPACE), "--keep-weights", "-1"), "--keep-weights"),
        (("--space", "notes_pareto", "--pruner", "none", "--keep-weights", "1"), "one objective"),
    ]
    for args, needle in cases:
        done = run_sweep(*base, *args, storage=url)
        assert done.returncode != 0
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert needle in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_keep_if_best_ranks_and_prunes(tmp_path: Path) -> None:
    """Three finished trials hold weights; a better new trial keeps the two best of four."""
    import optuna
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts import upload_artifact

    from sweep.run.weights import keep_if_best

    url = f"sqlite:///{tmp_path / 's.db'}"
    store = FileSystemArtifactStore(str(tmp_path))
    write_study(url, "rank", 0)
    study = optuna.load_study(study_name="rank", storage=url)
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"weights")
    for value in (0.6, 0.8, 0.7):  # finished trials 0-2, each with weights
        trial = study.ask()
        artifact = upload_artifact(
            artifact_store=store, file_path=str(weights), study_or_trial=trial
        )
        trial.set_user_attr(WEIGHTS_ATTR, artifact)
        study.tell(trial, value)

    def holders() -> set[int]:
        return {n for n, _, a in weight_holders(url, "rank") if (tmp_path / a).exists()}

    def keep(value: float) -> tuple[bool, int]:
        trial = study.ask()
        kept = keep_if_best(
            trial,
            value=value,
            maximize=True,
            keep=2,
            weights_file=str(weights),
            store=store,
            storage_url=url,
        )
        study.tell(trial, value)
        return kept, trial.number

    assert keep(0.9) == (True, 3)
    assert holders() == {1, 3}  # 0.8 and 0.9: trials 0 and 2 lost theirs
    assert keep(0.5) == (False, 4)
    assert holders() == {1, 3}


def test_load_trials_one_row_per_trial_like_the_csv(storage_url: str) -> None:
    import sweep

    written = write_study(storage_url, "nb", 5)
    frame = sweep.load_trials("nb", storage=storage_url)
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    assert list(frame["state"]) == ["COMPLETE"] * 5
    csv = run_sweep("trials", "nb", "--format", "csv", storage=storage_url, check=True)
    assert list(frame.columns) == csv.stdout.splitlines()[0].split(",")
    assert "param.coding_size" in frame and "metric.expression.auroc" in frame
    assert not [c for c in frame.columns if c.startswith("confirmed.")]
    np.testing.assert_allclose(
        frame["metric.expression.auroc"], [w["metrics"]["expression.auroc"] for w in written]
    )
    np.testing.assert_allclose(frame["value"], frame["metric.expression.auroc"])  # as Optuna
    assert "value_0" not in frame
    assert {"load_trials", "load_history", "load_model"} <= set(dir(sweep))


def test_load_trials_confirmed_columns(tmp_path: Path) -> None:
    import optuna

    import sweep

    url = f"sqlite:///{tmp_path / 'c.db'}"
    write_study(url, "conf", 2)
    study = optuna.load_study(study_name="conf", storage=url)
    trial = study.ask()
    trial.set_user_attr("confirmed", {"expression.auroc": {"mean": 0.7, "std": 0.01}})
    study.tell(trial, 0.7)
    frame = sweep.load_trials("conf", storage=url)
    assert len(frame) == 3
    assert frame["confirmed.expression.auroc.mean"].tolist()[2] == 0.7
    assert np.isnan(frame["confirmed.expression.auroc.std"].tolist()[0])


def test_load_history(study: dict[str, Any]) -> None:
    import sweep

    number = study["best"]["number"]
    history = sweep.load_history(NAME, number, storage=study["url"])
    assert history.index.name == "epoch" and list(history.index) == [1]
    assert {"loss", "val_loss", "kl_loss", "val_reconstruction_loss"} <= set(history.columns)
    from sweep.errors import TrialNotFoundError

    with pytest.raises(TrialNotFoundError, match="no trial 7"):
        sweep.load_history(NAME, 7, storage=study["url"])


def test_watch_frame_shows_progress(tmp_path: Path, study: dict[str, Any]) -> None:
    from sweep.present.live import frame_text

    text = frame_text(study["url"], NAME)
    best = study["best"]
    assert "2/2" in text and f"(#{best['number']})" in text
    assert f"{best['values'][0]:.4g}" in text and "ETA" in text and "none" in text
    url = f"sqlite:///{tmp_path / 'live.db'}"
    write_study(url, "live", 2, running=1)
    text = frame_text(url, "live")
    assert "0/2" not in text and "2/2" in text  # the budget counts finished trials
    row = next(line for line in text.splitlines() if "#2" in line)
    assert "1/2" in row and "no heartbeat" in row  # epoch 1 of 2; written without heartbeats


def _wait_for_lines(path: Path, n: int, timeout_s: float) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines()
        if len(lines) >= n:
            return lines
        time.sleep(0.2)
    raise AssertionError(f"{path} has {path.read_text()!r}, not {n} lines, after {timeout_s} s")


def test_watch_into_a_file_writes_a_line_per_change_and_exits_when_finished(
    tmp_path: Path, study: dict[str, Any]
) -> None:
    import optuna

    from tests.support.cli import sweep_argv
    from tests.support.cli import sweep_env

    finished = run_sweep("status", NAME, "--watch", "--interval", "0.1", storage=study["url"])
    assert finished.returncode == 0, finished.stderr  # a finished study: one line, then exit
    (line,) = finished.stdout.splitlines()
    assert "2/2 finished" in line and "best so far" in line and "\x1b" not in line

    url = f"sqlite:///{tmp_path / 'live.db'}"
    write_study(url, "live", 2, running=1)
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            sweep_argv("status", "live", "--watch", "--interval", "0.2"),
            env=sweep_env(url),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = _wait_for_lines(log, 1, timeout_s=120)
        assert "RUNNING 1" in first[0] and process.poll() is None  # unchanged: no new line
        time.sleep(1.0)
        assert len(log.read_text().splitlines()) == 1
        live = optuna.load_study(study_name="live", storage=url)
        running = next(t for t in live.trials if t.state.name == "RUNNING")
        live.tell(running.number, 0.5)
        _, err = process.communicate(timeout=60)  # exits on its own once the study is finished
    assert process.returncode == 0, err
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and "RUNNING 0" in lines[1], lines


def test_watch_exits_cleanly_on_ctrl_c(tmp_path: Path, study: dict[str, Any]) -> None:
    done = run_sweep(
        "status", NAME, "--watch", "--count", "2", "--interval", "0.1", storage=study["url"]
    )
    assert done.returncode == 0, done.stderr
    assert "best so far" in done.stdout
    from tests.support.cli import sweep_argv
    from tests.support.cli import sweep_env

    url = f"sqlite:///{tmp_path / 'live.db'}"
    write_study(url, "live", 2, running=1)  # never finishes on its own
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            sweep_argv("status", "live", "--watch", "--interval", "5"),
            env=sweep_env(url),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_lines(log, 1, timeout_s=120)  # imported, first line written: between reads
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "best so far" in log.read_text() and err.strip() == ""
