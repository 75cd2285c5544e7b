"""Per-trial figures (`sweep show`), the study report (`sweep report`) and `sweep dashboard`.

One tiny real study (two Keras trials of the tiny space on synthetic data, SQLite) is shared by
the module. The report and the dashboard are checked in headless Chromium (Debian's
``chromium``; ``.ci/run`` installs it): a screenshot that is not blank, the best-trials table
and the figures in the DOM, the study listed by the dashboard's page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

from sweep import figure_data
from sweep.config import HEADLINE_ATTRS
from sweep.config import STUDY_ATTR
from sweep.present.dashboard import live_sqlite_warning
from sweep.store.read import list_trials
from sweep.store.read import trial_by_number
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.cli import sweep_argv
from tests.support.cli import sweep_env
from tests.support.postgres import fresh_postgres_database

STUDY = "pics"
TRIAL_FIGURES = {"losses", "kl_per_dim", "latent_hist", "latent_qq", "reconstruction"}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, synthetic_npz: Path) -> dict[str, Any]:
    """Two real trials of the tiny space (1 epoch each) in a SQLite study."""
    where = tmp_path_factory.mktemp("present")
    url = f"sqlite:///{where / 'study.db'}"
    run_sweep(
        "launch", "--space", str(TINY_SPACE), "--data", str(synthetic_npz), "--study", STUDY,
        "--n-trials", "2", "--set", "epochs=1", "--seed", "1",
        storage=url, check=True,
    )  # fmt: skip
    return {"url": url, "dir": where, "data": synthetic_npz}


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed under CI: .ci/run must install it")
    pytest.skip("the browser checks need Debian's chromium (apt-get install chromium)")


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120, check=True)


def _valid_png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_trials_store_their_figure_sample_and_headline_metrics(study: dict[str, Any]) -> None:
    trial = trial_by_number(study["url"], STUDY, 0)
    sample = figure_data.decode(trial[figure_data.ATTR])
    assert sample is not None
    assert len(json.dumps(trial[figure_data.ATTR])) < 60_000  # small enough for any backend
    assert sample["sections"] == ["DNA_methylation", "H3K9me3", "H3K27me3", "expressed"]
    coding = trial["params_full"]["coding_size"]
    rows = sample["z_mean"].shape[0]
    assert 0 < rows <= figure_data.SAMPLE_ROWS
    assert sample["z_mean"].shape == sample["z_log_var"].shape == (rows, min(coding, 8))
    assert sorted(sample["dims"].tolist()) == sorted(set(sample["dims"].tolist()))
    assert sample["actual_count"].shape == sample["predicted_count"].shape == (rows, 4)
    assert sample["section_width"].tolist() == [4000, 4000, 4000, 1]
    # The histograms count every position of the sample: ones and zeros together.
    totals = sample["prob_hist_ones"].sum(axis=1) + sample["prob_hist_zeros"].sum(axis=1)
    assert totals.tolist() == [rows * w for w in (4000, 4000, 4000, 1)]
    assert np.allclose(sample["prob_hist_ones"].sum(axis=1), sample["actual_count"].sum(axis=0))
    for attr, metric in HEADLINE_ATTRS.items():
        if trial["metrics"].get(metric) is not None:
            assert trial["user_attrs"][attr] == pytest.approx(trial["metrics"][metric])
    loaded = optuna.load_study(study_name=STUDY, storage=study["url"])
    assert loaded.metric_names == ["expression.auroc"]


def test_show_prints_the_table_and_writes_valid_figures(study: dict[str, Any]) -> None:
    out = study["dir"] / "show-1"
    done = run_sweep("show", STUDY, "1", "--out", str(out), storage=study["url"], check=True)
    assert "study pics, trial #1: COMPLETE" in done.stdout
    assert "expression.auroc (max)" in done.stdout and "Section H3K27me3" in done.stdout
    assert "flags:" in done.stdout and "encoder_units" in done.stdout
    assert {p.stem for p in out.glob("*.png")} == TRIAL_FIGURES
    for png in out.glob("*.png"):
        width, height = _valid_png(png)
        assert width > 300 and height > 200

    before = _snapshot(out)
    again = run_sweep("show", STUDY, "1", "--out", str(out), storage=study["url"])
    assert again.returncode != 0 and "--force" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert _snapshot(out) == before  # nothing written
    forced = run_sweep("show", STUDY, "1", "--out", str(out), "--force", storage=study["url"])
    assert forced.returncode == 0

    missing = study["dir"] / "show-9"
    unknown = run_sweep("show", STUDY, "9", "--out", str(missing), storage=study["url"])
    assert unknown.returncode != 0 and "has no trial 9 (it has trials 0-1)" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1 and not missing.exists()


def test_the_report_opens_from_disk_in_a_browser(study: dict[str, Any]) -> None:
    out = study["dir"] / "report"
    done = run_sweep(
        "report", STUDY, "--out", str(out), storage=study["url"], report_heavy_imports=True
    )
    assert done.returncode == 0, done.stderr
    assert "IMPORTED" not in done.stderr  # the report never loads TensorFlow or Keras
    index = out / "index.html"
    assert done.stdout.strip() == str(index)
    page = index.read_text()
    # Every image is a local file that exists and is a valid PNG; nothing is fetched.
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 8
    assert not re.search(r'(src|href)="(https?:)?//', page)
    for src in sources:
        _valid_png(out / src)
    assert {p.name for p in (out / "figures").glob("*.png")} == {Path(s).name for s in sources}
    # The best-trials table: a column per COMPLETE trial (two, best first), then the
    # supervised reference fitted at launch.
    table = re.search(r'<table id="best-trials">(.*?)</table>', page, re.S)
    assert table is not None
    header = re.findall(r"<th>([^<]*)</th>", table.group(1).split("</thead>")[0])
    numbers = [t["number"] for t in list_trials(study["url"], STUDY, ["COMPLETE"])]
    assert header[0] == "trial" and header[-1] == "reference (logistic, 100-bp bins)"
    assert sorted(header[1:-1]) == sorted(f"#{n}" for n in numbers)
    assert 'id="confirmed"' in page and "Balanced vs original" in page

    shot = study["dir"] / "report.png"
    _browser("--window-size=1280,2400", f"--screenshot={shot}", index.as_uri())
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 10  # not a blank page
    dom = _browser("--dump-dom", index.as_uri()).stdout
    assert '<table id="best-trials">' in dom
    assert len(re.findall(r"<img ", dom)) >= 4

    before = _snapshot(out)
    again = run_sweep("report", STUDY, "--out", str(out), storage=study["url"])
    assert again.returncode != 0 and len(again.stderr.strip().splitlines()) == 1
    assert _snapshot(out) == before


def test_the_report_reads_through_one_connection(
    study: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sweep report` opens one engine and one database connection (it opened 8 before)."""
    import sqlalchemy
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    from sweep.present.report import write_report

    engines: list[Any] = []
    real_create_engine = sqlalchemy.create_engine

    def counting_create_engine(*args: Any, **kwargs: Any) -> Any:
        engine = real_create_engine(*args, **kwargs)
        engines.append(engine)
        return engine

    connections: list[Any] = []
    checkouts: list[Any] = []

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        connections.append(dbapi_connection)

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checkouts.append(dbapi_connection)

    monkeypatch.setattr(sqlalchemy, "create_engine", counting_create_engine)
    event.listen(Pool, "connect", on_connect)
    event.listen(Pool, "checkout", on_checkout)
    try:
        index = write_report(study["url"], STUDY, tmp_path / "report")
    finally:
        event.remove(Pool, "connect", on_connect)
        event.remove(Pool, "checkout", on_checkout)
    assert index.is_file() and "<img " in index.read_text()
    assert len(engines) == 1, engines
    assert len(connections) == 1 and len(checkouts) == 1, (connections, checkouts)


def test_report_bad_input_writes_nothing(study: dict[str, Any]) -> None:
    out = study["dir"] / "nothing"
    done = run_sweep("report", "no-such-study", "--out", str(out), storage=study["url"])
    assert done.returncode == 1 and "no study named 'no-such-study'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_study_without_complete_trials_gets_a_page(study: dict[str, Any]) -> None:
    run_sweep(
        "launch", "--space", str(TINY_SPACE), "--data", str(study["data"]), "--study", "empty",
        "--n-trials", "2", "--no-run", storage=study["url"], check=True,
    )  # fmt: skip
    out = study["dir"] / "empty-report"
    done = run_sweep("report", "empty", "--out", str(out), storage=study["url"], check=True)
    page = Path(done.stdout.strip()).read_text()
    assert 'id="no-complete"' in page and "No COMPLETE trial yet" in page
    assert "<img " not in page


def test_postgres_one_trial_study_report_and_show(study: dict[str, Any]) -> None:
    """The figure sample travels in PostgreSQL too; a one-trial study still gets its pages."""
    source = optuna.load_study(study_name=STUDY, storage=study["url"])
    trial = next(t for t in source.trials if t.state.name == "COMPLETE")
    with fresh_postgres_database() as url:
        target = optuna.create_study(study_name=STUDY, storage=url, direction="maximize")
        target.set_user_attr(STUDY_ATTR, source.user_attrs[STUDY_ATTR])
        target.add_trial(
            optuna.trial.create_trial(
                params=trial.params,
                distributions=trial.distributions,
                value=trial.value,
                user_attrs=trial.user_attrs,
            )
        )
        password = str(make_url(url).password)
        out = study["dir"] / "pg-show"
        shown = run_sweep("show", STUDY, "0", "--out", str(out), storage=url, check=True)
        assert {p.stem for p in out.glob("*.png")} == TRIAL_FIGURES
        report = study["dir"] / "pg-report"
        done = run_sweep("report", STUDY, "--out", str(report), storage=url, check=True)
        page = (report / "index.html").read_text()
        for text in (shown.stdout, shown.stderr, done.stdout, done.stderr, page):
            assert password not in text
        assert "***@" in page  # the storage, masked
        assert "Parameter importances: not shown: the study has 1 COMPLETE trial, too few" in page
        assert '<table id="best-trials">' in page
        for png in (report / "figures").glob("*.png"):
            _valid_png(png)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dashboard(study: dict[str, Any]) -> Iterator[int]:
    port = _free_port()
    process = subprocess.Popen(
        sweep_argv("dashboard", STUDY, "--port", str(port)),
        env=sweep_env(study["url"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the dashboard did not answer within 90 s")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def test_the_dashboard_lists_the_study(dashboard: int) -> None:
    url = f"http://127.0.0.1:{dashboard}"
    with urllib.request.urlopen(f"{url}/api/studies", timeout=10) as response:
        studies = json.load(response)["study_summaries"]
    assert STUDY in [s["study_name"] for s in studies]
    dom = _browser("--virtual-time-budget=15000", "--dump-dom", f"{url}/dashboard/").stdout
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)\b.*?</\1>", "", dom, flags=re.S))
    assert re.search(rf"\b{STUDY}\b", text), text[:2000]


def test_the_dashboard_refuses_a_port_in_use(study: dict[str, Any]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_sweep("dashboard", STUDY, "--port", str(port), storage=study["url"])
    assert done.returncode != 0 and f"port {port} on 127.0.0.1 is in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_live_sqlite_study_gets_a_warning(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=10, grace_period=60)
    live = optuna.create_study(study_name="live", storage=storage)
    trial = live.ask()
    assert live_sqlite_warning(url, ["live"]) is None  # no heartbeat yet: not a worker's trial
    storage.record_heartbeat(trial._trial_id)
    warning = live_sqlite_warning(url, ["live"])
    assert warning is not None
    assert "live #0" in warning and "database is locked" in warning and "PostgreSQL" in warning
    live.tell(trial, 1.0)
    assert live_sqlite_warning(url, ["live"]) is None


def test_a_hypermodel_study_report_shows_only_what_applies(
    tmp_path: Path, synthetic_npz: Path
) -> None:
    """A KerasTuner study (real tiny Keras trials): its own history curves, no VAE panels."""
    url = f"sqlite:///{tmp_path / 'hm.db'}"
    tiny = Path(__file__).resolve().parents[1] / "support" / "hypermodels" / "tiny.py"
    run_sweep(
        "launch", "--hypermodel", f"{tiny}:build_model", "--data", str(synthetic_npz),
        "--study", "hm", "--set", "epochs=2", "--set", "batch_size=64", "--sampler", "random",
        "--n-trials", "2", storage=url, check=True,
    )  # fmt: skip
    out = tmp_path / "report"
    done = run_sweep("report", "hm", "--out", str(out), storage=url, report_heavy_imports=True)
    assert done.returncode == 0, done.stderr
    assert "IMPORTED" not in done.stderr
    page = (out / "index.html").read_text()
    for vae_only in (
        "total loss (recon. + kl_weight x KL)",
        "used dataset",
        'id="rate-distortion"',
        'id="balanced"',
        'id="collapse"',
        "Collapse flags",
        "kl_per_dim",
        "reconstruction.png",
        "data SHA-256",
        "notes&#x27; table",
        "<th>baseline</th>",
    ):
        assert vae_only not in page, vae_only
    assert 'id="histories"' in page and "hypermodel" in page
    assert "data passed to fit" in page
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert "history_across_trials.png" in figures
    assert any(name.endswith("-history.png") for name in figures), figures
    assert not any("losses" in name or "kl_per_dim" in name for name in figures), figures
    for src in re.findall(r'<img src="([^"]+)"', page):
        _valid_png(out / src)
    table = re.search(r'<table id="best-trials">(.*?)</table>', page, re.S)
    assert table is not None and "val_loss" in table.group(1)  # the hypermodel's own metrics
    assert "Collapse" not in table.group(1)
    # One file: the same sections, the figures inline.
    one = tmp_path / "hm.html"
    assert run_sweep("report", "hm", "--out", str(one), storage=url).returncode == 0
    inline = one.read_text()
    assert re.findall(r'<section id="([^"]+)"', inline) == re.findall(
        r'<section id="([^"]+)"', page
    )
    assert 'id="curves"' in inline and 'id="histories"' in inline
    assert inline.count('<img src="data:image/png;base64,') == page.count("<img ") >= 3

    shown = run_sweep("show", "hm", "0", "--out", str(tmp_path / "show"), storage=url)
    assert shown.returncode == 0, shown.stderr
    assert "flags:" not in shown.stdout and "val_loss" in shown.stdout
    assert "history.png" in shown.stdout and "losses" not in shown.stdout
