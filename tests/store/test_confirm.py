"""``sweep confirm``: the best trials and the baseline re-run with fresh seeds, val and test.

The main studies here are real studies made by ``sweep launch --no-run``; their COMPLETE trials
are added with known values (their training is not what is tested), while every confirmation
run is a real trial on real data in a real database, run by real workers.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sqlite3
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweep.present.confirmed import confirmed_results
from sweep.present.confirmed import confirmed_with_reference
from sweep.store.confirm import JOB_ATTR
from sweep.store.confirm import companion_name
from sweep.store.rdb import open_storage
from sweep.store.study import load_config
from tests.support.cli import run_sweep

METRIC = "expression.auroc"
#: A tiny space with the notes' baseline (its searched values lie inside the space).
BASELINE_SPACE = """\
objective: {metric: expression.auroc, direction: maximize}
baseline: notes
search:
  focal_gamma: {type: float, low: 1.5, high: 2.0}
  kl_beta: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  dataset: {type: categorical, choices: [original, balanced]}
fixed:
  coding_size: 4
  encoder_units: [32, 16]
  epochs: 1
  batch_size: 32
  reduce_lr_on_plateau: false
"""


def launch(url: str, data: Path, space: Path, name: str = "t", *extra: str) -> None:
    done = run_sweep(
        "launch", "--no-run", "--space", str(space), "--data", str(data), "--study", name,
        "--n-trials", "10", "--pruner", "none", *extra, storage=url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def add_complete(url: str, name: str, values: list[float]) -> list[int]:
    """Add COMPLETE trials with objective ``values`` (and their full parameters)."""
    storage = open_storage(url)
    space = load_config(storage, name).search_space
    study = optuna.load_study(study_name=name, storage=storage)
    distributions = space.distributions()
    numbers = []
    for i, value in enumerate(values):
        chosen = {
            "focal_gamma": 1.5 + 0.1 * i,
            "kl_beta": 1e-3,
            "dataset": "original",
            **({"coding_size": 4} if "coding_size" in distributions else {}),
        }
        chosen = {k: v for k, v in chosen.items() if k in distributions}
        full = space.suggest(optuna.trial.FixedTrial(chosen)).to_dict()
        study.add_trial(
            optuna.trial.create_trial(
                params=chosen,
                distributions={k: distributions[k] for k in chosen},
                value=value,
                user_attrs={"params_full": full, "metrics": {METRIC: value}},
            )
        )
        numbers.append(study.trials[-1].number)
    storage.engine.dispose()
    return numbers


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def snapshot(url: str, name: str) -> list[tuple[Any, ...]]:
    """What a sampler of study ``name`` sees: every trial's number, state, params and values."""
    return [(t.number, t.state.name, t.params, t.values) for t in trials_of(url, name)]


@pytest.fixture(scope="module")
def confirmed(tmp_path_factory: pytest.TempPathFactory, synthetic_npz: Path) -> dict[str, Any]:
    """A study with the baseline (trial 0, never run) and trials #1 (0.7) and #2 (0.9),
    confirmed with ``--top 1 --seeds 2`` by two workers."""
    folder = tmp_path_factory.mktemp("confirm")
    space = folder / "space.yaml"
    space.write_text(BASELINE_SPACE)
    url = f"sqlite:///{folder / 'study.db'}"
    launch(url, synthetic_npz, space)
    assert add_complete(url, "t", [0.7, 0.9]) == [1, 2]
    before = snapshot(url, "t")
    done = run_sweep(
        "confirm", "t", "--top", "1", "--seeds", "2", "--workers", "2", storage=url, process=True
    )
    assert done.returncode == 0, done.stderr
    return {"url": url, "before": before, "stdout": done.stdout, "folder": folder, **vars(done)}


def test_confirm_writes_sweep_lines_only(confirmed: dict[str, Any]) -> None:
    """Optuna's own log lines (``[I ...] A new study created in RDB``) stay out of the output."""
    output = confirmed["stdout"] + confirmed["stderr"]
    assert "confirm" in output
    assert "A new study created" not in output and "[I " not in output, output[-2000:]
    assert "\x1b[" not in output


def test_each_trial_and_seed_runs_exactly_once_with_val_and_test(
    confirmed: dict[str, Any],
) -> None:
    url = confirmed["url"]
    trials = trials_of(url, companion_name("t"))
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    keys = [t.user_attrs[JOB_ATTR] for t in complete]
    assert sorted(keys) == ["0:0", "0:1", "2:0", "2:1"]  # top 1 (#2) + the baseline (#0)
    assert len(trials) == 4
    main = {t.number: t for t in trials_of(url, "t")}
    for t in complete:
        source = int(t.user_attrs["confirm_source"])
        seed = 1000 + int(t.user_attrs[JOB_ATTR].split(":")[1])
        assert t.user_attrs["confirm_seed"] == seed
        assert t.user_attrs["params_full"]["seed"] == seed
        if source == 2:
            expected = {**main[2].user_attrs["params_full"], "seed": seed}
            assert t.user_attrs["params_full"] == expected
        else:  # the notes' searched values, with the study's fixed ones
            assert t.user_attrs["confirm_baseline"] == "notes"
            assert t.user_attrs["params_full"]["focal_gamma"] == 2.0
            assert t.user_attrs["params_full"]["dataset"] == "balanced"
        assert math.isfinite(t.user_attrs["metrics"][METRIC])
        assert t.value == t.user_attrs["metrics"][METRIC]
        assert math.isfinite(t.user_attrs["test_metrics"][f"test.{METRIC}"])
        assert "test.expression_hidden.threshold" in t.user_attrs["test_metrics"]
    assert "2/2" in confirmed["stdout"] and "test gain vs #0" in confirmed["stdout"]


def test_mean_and_sd_match_the_stored_seeds(confirmed: dict[str, Any]) -> None:
    url = confirmed["url"]
    summary = confirmed_results(url, "t")
    assert summary is not None and summary["complete"] == 4 and summary["jobs"] == 4
    assert summary["seeds"] == [1000, 1001] and summary["baseline"] == 0
    runs: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for t in trials_of(url, companion_name("t")):
        runs.setdefault(int(t.user_attrs["confirm_source"]), []).append(t)
    rows = {r["number"]: r for r in summary["trials"]}
    assert set(rows) == {0, 2}
    for number, row in rows.items():
        ordered = sorted(runs[number], key=lambda t: t.user_attrs["confirm_seed"])
        val = [t.user_attrs["metrics"][METRIC] for t in ordered]
        test = [t.user_attrs["test_metrics"][f"test.{METRIC}"] for t in ordered]
        assert row["val"][METRIC]["values"] == val
        assert row["val"][METRIC]["mean"] == pytest.approx(statistics.mean(val))
        assert row["val"][METRIC]["sd"] == pytest.approx(statistics.stdev(val))
        assert row["test"][METRIC]["mean"] == pytest.approx(statistics.mean(test))
        assert row["test"][METRIC]["sd"] == pytest.approx(statistics.stdev(test))
    a, b = rows[2]["test"][METRIC], rows[0]["test"][METRIC]
    gain = rows[2]["gain"][METRIC]["test"]
    assert gain["mean"] == pytest.approx(a["mean"] - b["mean"])
    assert gain["se"] == pytest.approx(math.sqrt(a["sd"] ** 2 / 2 + b["sd"] ** 2 / 2))
    assert gain["vs"] == 0 and rows[0]["gain"] is None


def test_the_main_study_and_its_sampler_never_see_confirm_runs(confirmed: dict[str, Any]) -> None:
    url = confirmed["url"]
    assert snapshot(url, "t") == confirmed["before"]
    assert len(trials_of(url, "t")) == 3
    studies = run_sweep("studies", "--format", "json", storage=url)
    listed = {s["name"]: s for s in json.loads(studies.stdout)}
    assert listed["t"]["confirms"] is None and listed["t.confirm"]["confirms"] == "t"
    table = run_sweep("studies", storage=url).stdout
    assert "t.confirm (confirm runs)" in table
    status = run_sweep("status", "t", storage=url).stdout
    assert "confirm: 4/4 runs complete" in status


def _cell(stat: dict[str, Any]) -> str:
    return f"{stat['mean']:.4g} ± {stat['sd']:.4g}"


def test_best_shows_and_ranks_by_the_confirmed_columns(confirmed: dict[str, Any]) -> None:
    url = confirmed["url"]
    summary = confirmed_results(url, "t")
    assert summary is not None
    rows = {r["number"]: r for r in summary["trials"]}
    table = run_sweep("best", "t", storage=url)
    assert table.returncode == 0, table.stderr
    text = table.stdout
    assert "Confirmed (mean ± sd over seeds)" in text
    for number in (0, 2):
        cell = (
            f"val {_cell(rows[number]['val'][METRIC])}, test {_cell(rows[number]['test'][METRIC])}"
        )
        assert f"{cell} (2 seeds)" in text
    assert "test gain" in text and "vs #0" in text
    ranked = sorted(rows, key=lambda n: -rows[n]["val"][METRIC]["mean"])
    by = run_sweep("best", "t", "--by", "confirmed", "--format", "json", storage=url)
    assert by.returncode == 0, by.stderr
    listed = json.loads(by.stdout)
    assert [r["number"] for r in listed] == ranked
    assert listed[0]["confirmed"]["val"][METRIC]["mean"] == rows[ranked[0]]["val"][METRIC]["mean"]
    said = run_sweep("best", "t", "--by", "confirmed", storage=url).stdout
    assert said.startswith(f"ranked by the confirmed validation mean of {METRIC}")
    sheet = run_sweep("best", "t", "--format", "csv", storage=url).stdout
    by_number = {r["number"]: r for r in csv.DictReader(io.StringIO(sheet))}
    column = f"confirmed.test.{METRIC}.mean"
    assert float(by_number["2"][column]) == pytest.approx(rows[2]["test"][METRIC]["mean"])
    assert float(by_number["2"][f"confirmed.test_gain.{METRIC}.mean"]) == pytest.approx(
        rows[2]["gain"][METRIC]["test"]["mean"]
    )


def test_confirm_again_adds_only_missing_runs(confirmed: dict[str, Any]) -> None:
    url = confirmed["url"]
    again = run_sweep("confirm", "t", "--top", "1", "--seeds", "2", storage=url)
    assert again.returncode == 0, again.stderr
    assert len(trials_of(url, companion_name("t"))) == 4  # nothing new ran
    for refused in (("resume", "t.confirm", "--n-trials", "9"), ("confirm", "t.confirm")):
        done = run_sweep(*refused, storage=url)
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "confirm" in done.stderr
    assert load_config(open_storage(url), companion_name("t")).n_trials == 4
    copy = confirmed["folder"] / "copy.db"
    # SQLite's backup API: a WAL-mode file's recent commits may still sit in study.db-wal.
    with contextlib.closing(sqlite3.connect(confirmed["folder"] / "study.db")) as source:
        with contextlib.closing(sqlite3.connect(copy)) as target:
            source.backup(target)
    url2 = f"sqlite:///{copy}"
    more = run_sweep("confirm", "t", "--top", "2", "--seeds", "3", "--no-run", storage=url2)
    assert more.returncode == 0, more.stderr
    summary = confirmed_results(url2, "t")
    assert summary is not None
    assert summary["jobs"] == 9 and summary["complete"] == 4  # 3 trials x 3 seeds
    assert {r["number"]: r["planned"] for r in summary["trials"]} == {2: 3, 0: 3, 1: 3}
    config = load_config(open_storage(url2), companion_name("t"))
    assert config.n_trials == 9 and config.pruner == "none"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("--top", "0"), 2, "--top"),
        (("--seeds", "0"), 2, "--seeds"),
        ((), 1, "no COMPLETE trial"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tmp_path: Path, synthetic_npz: Path, args: tuple[str, ...], code: int, says: str
) -> None:
    from tests.support.cli import TINY_SPACE

    url = f"sqlite:///{tmp_path / 'study.db'}"
    launch(url, synthetic_npz, TINY_SPACE)
    if args:
        add_complete(url, "t", [0.8])
    done = run_sweep("confirm", "t", *args, storage=url)
    assert done.returncode == code
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1
    names = [s.study_name for s in optuna.get_all_study_summaries(url)]
    assert names == ["t"]


def test_unknown_study(tmp_path: Path, synthetic_npz: Path) -> None:
    from tests.support.cli import TINY_SPACE

    url = f"sqlite:///{tmp_path / 'study.db'}"
    launch(url, synthetic_npz, TINY_SPACE)
    done = run_sweep("confirm", "nope", storage=url)
    assert done.returncode == 1 and "no study named 'nope'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["t"]
    by = run_sweep("best", "t", "--by", "confirmed", storage=url)
    assert by.returncode != 0 and "no complete confirmation run" in by.stderr


def test_launch_confirm_top_on_postgresql(postgres_url: str, synthetic_npz: Path) -> None:
    """`launch --confirm-top` confirms once the budget is spent, on PostgreSQL."""
    from tests.support.cli import TINY_SPACE

    done = run_sweep(
        "launch", "--space", str(TINY_SPACE), "--data", str(synthetic_npz), "--study", "t",
        "--n-trials", "1", "--pruner", "none", "--set", "epochs=1",
        "--confirm-top", "1", "--confirm-seeds", "1", storage=postgres_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (main,) = trials_of(postgres_url, "t")
    (run,) = trials_of(postgres_url, companion_name("t"))
    assert run.state.name == "COMPLETE" and run.user_attrs["confirm_source"] == main.number
    assert run.user_attrs["params_full"] == {**main.user_attrs["params_full"], "seed": 1000}
    assert f"test.{METRIC}" in run.user_attrs["test_metrics"]
    summary = confirmed_results(postgres_url, "t")
    assert summary is not None and summary["trials"][0]["val"][METRIC]["values"] == [run.value]
    assert "(1 seed)" in done.stdout  # best, printed after the confirmation


@pytest.mark.faults
def test_confirm_survives_kill_9_and_confirm_again(tmp_path: Path, synthetic_npz: Path) -> None:
    """SIGKILL the confirming process (worker and trial) mid-run; `confirm` again finishes the
    rest: every (trial, seed) exactly once COMPLETE, the killed run FAIL."""
    import os
    import signal
    import time

    from tests.support.cli import TINY_SPACE
    from tests.support.faults import FAST_HEARTBEAT
    from tests.support.faults import Processes
    from tests.support.faults import wait_until

    url = f"sqlite:///{tmp_path / 'study.db'}"
    launch(url, synthetic_npz, TINY_SPACE, "k", "--set", "epochs=1", *FAST_HEARTBEAT)
    sources = add_complete(url, "k", [0.7, 0.9])
    companion = companion_name("k")
    args = ("confirm", "k", "--top", "2", "--seeds", "2")
    procs = Processes(tmp_path)
    try:
        first = procs.start(url, *args)

        def states() -> list[str]:
            names = [s.study_name for s in optuna.get_all_study_summaries(url)]
            return [t.state.name for t in trials_of(url, companion)] if companion in names else []

        wait_until(
            lambda: "COMPLETE" in states() and "RUNNING" in states() or first.poll() is not None,
            timeout=300,
            what="a finished and a running confirmation run",
        )
        assert first.poll() is None, procs.output(first)[-3000:]
        time.sleep(1.0)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        killed = [t.number for t in trials_of(url, companion) if t.state.name == "RUNNING"]
        assert killed
    finally:
        procs.cleanup()
    again = run_sweep(*args, "--workers", "2", storage=url, process=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = trials_of(url, companion)
    complete = sorted(t.user_attrs[JOB_ATTR] for t in trials if t.state.name == "COMPLETE")
    assert complete == sorted(f"{n}:{i}" for n in sources for i in (0, 1))
    assert all(trials[n].state.name == "FAIL" for n in killed)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    summary = confirmed_results(url, "k")
    assert summary is not None and summary["complete"] == 4
    assert all(r["seeds"] == 2 for r in summary["trials"])


def test_pareto_spread_and_the_reference_slot() -> None:
    from sweep.present.confirmed import summarise
    from sweep.present.confirmed import with_reference
    from sweep.present.formatting import render_confirmed
    from sweep.store.confirm import _spread

    assert _spread(7, 3) == [0, 3, 6] and _spread(5, 1) == [0] and _spread(3, 3) == [0, 1, 2]
    jobs = [
        {"key": f"{n}:{i}", "source": n, "seed_index": i, "seed": 1000 + i, "baseline": b}
        for n, b in ((4, None), (0, "notes"))
        for i in (0, 1)
    ]
    trials = [
        {
            "number": k,
            "state": "COMPLETE",
            "metrics": {METRIC: v},
            "user_attrs": {JOB_ATTR: job["key"], "test_metrics": {f"test.{METRIC}": v - 0.1}},
        }
        for k, (job, v) in enumerate(zip(jobs, (0.9, 0.8, 0.6, 0.7), strict=True))
    ]
    summary = summarise("s", jobs, trials, [{"metric": METRIC, "direction": "maximize"}])
    gain = summary["trials"][0]["gain"][METRIC]["test"]
    assert gain["mean"] == pytest.approx(0.2)
    assert gain["se"] == pytest.approx(math.sqrt(2 * statistics.variance([0.9, 0.8]) / 2))
    text = render_confirmed(with_reference(summary, "logistic", {METRIC: 0.85}, {}), "table")
    assert "+0.2 ± 0.07071" in text and "logistic" in text.splitlines()[-1]
    assert "0.85" in text.splitlines()[-1]


def test_the_report_shows_the_confirmed_trials(confirmed: dict[str, Any]) -> None:
    out = confirmed["folder"] / "report"
    done = run_sweep("report", "t", "--out", str(out), storage=confirmed["url"])
    assert done.returncode == 0, done.stderr
    page = (out / "index.html").read_text()
    table = page[page.index('<table id="confirmed-trials">') :]
    table = table[: table.index("</table>")]
    summary = confirmed_with_reference(confirmed["url"], "t")
    assert summary is not None and summary["reference"] is not None
    rows = table.split("<tr>")[2:]  # after the header row: the trials, then the reference
    assert len(rows) == len(summary["trials"]) + 1 == 3
    assert summary["reference"]["label"] in rows[-1]
    for row, trial in zip(rows, summary["trials"], strict=False):
        test = trial["test"][METRIC]
        assert f"#{trial['number']}" in row
        assert f"{test['mean']:.4g} ± {test['sd']:.4g}" in row
    assert "test gain vs #0" in table
