"""Read-only reports on real Optuna studies in SQLite and PostgreSQL (store.read, formatting)."""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweep.config import STUDY_ATTR
from sweep.config import study_config
from sweep.errors import StorageError
from sweep.errors import StudyNotFoundError
from sweep.errors import UsageError
from sweep.pareto import pareto_front
from sweep.present import formatting
from sweep.present.status import study_status
from sweep.space import SearchSpace
from sweep.store import read as report
from tests.support.postgres import fresh_postgres_database

REPO = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "SWEEP_TEST_POSTGRES_URL"
TINY_SPACE = REPO / "search_spaces" / "tiny.yaml"
BASE = datetime.datetime(2024, 3, 1, 12, 0, 0)
MINUTE = datetime.timedelta(minutes=1)
DISTRIBUTIONS = {
    "coding_size": CategoricalDistribution([4, 8]),
    "focal_gamma": FloatDistribution(1.5, 2.0),
    "kl_beta": FloatDistribution(1e-4, 1e-2, log=True),
    "dataset": CategoricalDistribution(["original", "balanced"]),
}
REQUIRED_KEYS = {
    "number",
    "state",
    "values",
    "params",
    "params_full",
    "metrics",
    "flags",
    "seconds",
    "fail_reason",
    "started",
    "completed",
}
FORBIDDEN_MODULES = (
    "tensorflow",
    "keras",
    "keras_tuner",
    "sweep.train.engine",
    "sweep.train.model",
    "sweep.run.worker",
    "sweep.train.data",
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _config(objective: Any, n_trials: int) -> dict[str, Any]:
    raw = yaml.safe_load(TINY_SPACE.read_text())
    raw["objective"] = objective
    space = SearchSpace.from_mapping(raw, source="test")
    config = study_config(
        space,
        data_path="synthetic.npz",
        n_trials=n_trials,
        pruner="none",
        max_consecutive_failures=3,
        max_seeds=1,  # one trial per configuration: tests/run/test_racing.py reads racing ones
    )
    return config.to_json()


def _params(k: int) -> dict[str, Any]:
    return {
        "coding_size": (4, 8)[k % 2],
        "focal_gamma": 1.5 + 0.05 * k,
        "kl_beta": 1e-3,
        "dataset": ("original", "balanced")[k % 2],
    }


def _metrics(value: float, k: int) -> dict[str, Any]:
    return {
        "expression.auroc": value,
        "expression.f1": value / 2,
        "expression_hidden.auroc": value - 0.1,
        "section.H3K9me3.output_mse": 0.01 * (k + 1),
        "section.H3K9me3.predicted_rate": 0.1,
        "section.H3K9me3.actual_rate": 0.12,
        "latent.active_units": k,
        "latent.kl_mean": 0.123456789,
        "collapse.any": 0,
    }


def _add(
    study: optuna.Study,
    k: int,
    state: TrialState,
    values: list[float] | None = None,
    user_attrs: dict[str, Any] | None = None,
) -> None:
    """Trial ``k`` starts at BASE + 10k minutes and, when finished, ends 10 minutes later."""
    trial = optuna.trial.create_trial(
        state=state,
        values=values,
        params=_params(k),
        distributions=DISTRIBUTIONS,
        user_attrs=user_attrs or {},
    )
    trial.datetime_start = None if state == TrialState.WAITING else BASE + 10 * k * MINUTE
    trial.datetime_complete = BASE + 10 * (k + 1) * MINUTE if state.is_finished() else None
    study.add_trial(trial)


def _single_study(url: str, name: str, direction: str) -> optuna.Study:
    """5 COMPLETE (0.5, 0.9, 0.7, 0.9, 0.1), then PRUNED, FAIL, RUNNING, WAITING; budget 20."""
    study = optuna.create_study(storage=url, study_name=name, direction=direction)
    study.set_user_attr(
        STUDY_ATTR, _config({"metric": "expression.auroc", "direction": direction}, 20)
    )
    for k, value in enumerate([0.5, 0.9, 0.7, 0.9, 0.1]):
        attrs = {
            "metrics": _metrics(value, k),
            "flags": ["posterior collapse"] if k == 4 else [],
            "seconds": 12.5 + k,
            "params_full": {**_params(k), "epochs": 2},
            "history": {"loss": [1.0, 0.5]},
            "diagnostics": {"kl_per_dim": [0.1, 0.2]},
            "worker": "host:1",
        }
        _add(study, k, TrialState.COMPLETE, [value], attrs)
    _add(study, 5, TrialState.PRUNED)
    _add(study, 6, TrialState.FAIL, None, {"fail_reason": "collapsed: output std 3e-7"})
    _add(study, 7, TrialState.RUNNING)
    _add(study, 8, TrialState.WAITING)
    return study


# (maximize f1, minimize mse); #3, #4, #5 dominated; #6 duplicates #1 and stays on the front.
PARETO_POINTS = [
    (0.9, 0.5),
    (0.8, 0.2),
    (0.7, 0.1),
    (0.6, 0.3),
    (0.9, 0.6),
    (0.5, 0.1),
    (0.8, 0.2),
]
PARETO_EXPECTED = [0, 1, 6, 2]


def _pareto_study(url: str, name: str = "pareto") -> optuna.Study:
    study = optuna.create_study(storage=url, study_name=name, directions=["maximize", "minimize"])
    objective = [
        {"metric": "expression.f1", "direction": "maximize"},
        {"metric": "sections.mean_output_mse", "direction": "minimize"},
    ]
    study.set_user_attr(STUDY_ATTR, _config(objective, 10))
    for k, point in enumerate(PARETO_POINTS):
        _add(study, k, TrialState.COMPLETE, list(point), {"metrics": {"expression.f1": point[0]}})
    _add(study, len(PARETO_POINTS), TrialState.FAIL)
    return study


def _populate(url: str) -> str:
    _single_study(url, "max", "maximize")
    _single_study(url, "min", "minimize")
    _pareto_study(url)
    return url


@pytest.fixture(scope="module")
def sqlite_studies(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``max``, ``min`` (same trials, opposite direction) and ``pareto`` in one SQLite file.

    Shared by the module's tests, which only read (one records a heartbeat).
    """
    return _populate(f"sqlite:///{tmp_path_factory.mktemp('report') / 'studies.db'}")


@pytest.fixture(scope="module")
def postgres_studies() -> Iterator[str]:
    """The same studies in a fresh PostgreSQL database, dropped after the module."""
    with fresh_postgres_database("sweep_report") as url:
        yield _populate(url)


@pytest.fixture(params=["sqlite", "postgres"])
def studies(request: pytest.FixtureRequest) -> str:
    """The shared studies on each backend in turn."""
    return request.getfixturevalue(f"{request.param}_studies")


def test_best_orders_by_direction_and_limits_to_top(studies: str) -> None:
    best = report.best_trials(studies, "max", top=3)
    assert [t["number"] for t in best] == [1, 3, 2]  # tie 0.9: lower number first
    assert [t["values"] for t in best] == [[0.9], [0.9], [0.7]]
    low = report.best_trials(studies, "min", top=2)
    assert [t["number"] for t in low] == [4, 0]
    assert [t["values"][0] for t in low] == [0.1, 0.5]
    everything = report.best_trials(studies, "max", top=50)
    assert len(everything) == 5  # COMPLETE only: no PRUNED/FAIL/RUNNING/WAITING
    assert {t["state"] for t in everything} == {"COMPLETE"}


def test_best_returns_external_params_and_attributes(studies: str) -> None:
    (top,) = report.best_trials(studies, "max", top=1)
    assert REQUIRED_KEYS <= set(top)
    assert top["params"]["dataset"] == "balanced"  # categorical index 1 -> its choice
    assert top["params"]["coding_size"] == 8 and isinstance(top["params"]["coding_size"], int)
    assert top["params"]["focal_gamma"] == pytest.approx(1.55)
    assert top["params"]["kl_beta"] == pytest.approx(1e-3)
    assert top["params_full"]["epochs"] == 2
    assert top["metrics"]["section.H3K9me3.output_mse"] == pytest.approx(0.02)
    assert top["seconds"] == pytest.approx(13.5)
    assert top["flags"] == [] and top["fail_reason"] is None
    assert "history" not in top and "diagnostics" not in top
    started = datetime.datetime.fromisoformat(top["started"])
    completed = datetime.datetime.fromisoformat(top["completed"])
    assert started.utcoffset() == datetime.timedelta(0)
    assert completed - started == 10 * MINUTE
    (full,) = report.best_trials(studies, "max", top=1, include_history=True)
    assert full["history"] == {"loss": [1.0, 0.5]}
    assert full["diagnostics"] == {"kl_per_dim": [0.1, 0.2]}


def test_pareto_set_of_hand_made_points(studies: str) -> None:
    front = report.best_trials(studies, "pareto", top=1)  # top is ignored
    assert [t["number"] for t in front] == PARETO_EXPECTED
    assert [tuple(t["values"]) for t in front] == [PARETO_POINTS[i] for i in PARETO_EXPECTED]
    optuna_front = optuna.load_study(study_name="pareto", storage=studies).best_trials
    assert sorted(t.number for t in optuna_front) == sorted(PARETO_EXPECTED)


def test_pareto_of_two_maximised_objectives_with_collapse_flags(tmp_path: Path) -> None:
    """notes_pareto: label-hidden AUROC and mean AUPRC lift, both maximised."""
    url = f"sqlite:///{tmp_path / 'p.db'}"
    objective = [
        {"metric": "expression_hidden.auroc", "direction": "maximize"},
        {"metric": "sections.mean_auprc_lift", "direction": "maximize"},
    ]
    study = optuna.create_study(storage=url, study_name="p", directions=["maximize"] * 2)
    study.set_user_attr(STUDY_ATTR, _config(objective, 10))
    points = [(0.7, 1.0), (0.6, 3.0), (0.65, 2.0), (0.6, 2.0), (0.5, 1.0)]
    for k, (auroc, lift) in enumerate(points):
        metrics = {
            "expression_hidden.auroc": auroc,
            "sections.mean_auprc_lift": lift,
            "collapse.n_flags": int(lift == 1.0),
        }
        _add(study, k, TrialState.COMPLETE, [auroc, lift], {"metrics": metrics})
    front = report.best_trials(url, "p", top=1)
    assert [t["number"] for t in front] == [0, 2, 1]  # sorted by the first objective, best first
    assert sorted(t.number for t in study.best_trials) == [0, 1, 2]
    table = formatting.render(front, "table", kind="best", objectives=objective)
    assert "expression_hidden.auroc (max)" in table
    assert "sections.mean_auprc_lift (max)" in table
    flags = next(line for line in table.splitlines() if line.strip().startswith("flags"))
    assert flags.split()[1:] == ["1", "0", "0"]


def test_pareto_front_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    for n_obj in (2, 3):
        points = rng.integers(0, 6, size=(300, n_obj)).astype(float)  # many ties
        got = sorted(pareto_front(points.tolist()))
        expected = [
            i
            for i, p in enumerate(points)
            if not any(np.all(q <= p) and np.any(q < p) for q in points)
        ]
        assert got == expected


def test_status_counts_best_running_throughput_eta(studies: str) -> None:
    study = optuna.load_study(study_name="max", storage=studies)
    running = [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    study._storage.record_heartbeat(running[0]._trial_id)  # type: ignore[attr-defined]
    status = study_status(studies, "max")
    assert status["counts"] == {"COMPLETE": 5, "PRUNED": 1, "FAIL": 1, "RUNNING": 1, "WAITING": 1}
    assert status["finished"] == 6 and status["budget"] == 20
    assert status["best"] == {"number": 1, "values": [0.9]}
    assert status["pareto_size"] is None
    assert [r["number"] for r in status["running"]] == [7]
    assert 0 <= status["running"][0]["heartbeat_age_s"] < 120
    # 6 finished between the first start (BASE) and the last completion (BASE + 60 min).
    assert status["throughput_per_hour"] == pytest.approx(6.0)
    assert status["eta_s"] == pytest.approx(14 / 6.0 * 3600)
    assert status["objectives"] == [{"metric": "expression.auroc", "direction": "maximize"}]
    pareto = study_status(studies, "pareto")
    assert pareto["best"] is None and pareto["pareto_size"] == len(PARETO_EXPECTED)
    assert pareto["running"] == [] and pareto["eta_s"] == pytest.approx(3 / 7 * 70 * 60)
    text = formatting.render_status(status, "table")
    assert "6/20 finished" in text
    assert "COMPLETE 5, PRUNED 1, FAIL 1, RUNNING 1, WAITING 1" in text
    assert "best 0.9 (#1)" in text and "#7 heartbeat" in text
    assert "throughput 6.0 trials/h; ETA 2h20m" in text
    assert json.loads(formatting.render_status(status, "json"))["counts"]["WAITING"] == 1


def test_running_trial_without_heartbeat_and_unknown_eta(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, study_name="plain")  # not a sweep study
    _add(study, 0, TrialState.RUNNING)
    status = study_status(sqlite_url, "plain")
    assert status["running"][0]["heartbeat_age_s"] is None
    assert status["budget"] is None and status["eta_s"] is None
    assert status["throughput_per_hour"] is None and status["best"] is None
    assert status["objectives"] == [{"metric": None, "direction": "minimize"}]
    text = formatting.render_status(status, "table")
    assert "no heartbeat" in text and "ETA unknown" in text
    assert report.best_trials(sqlite_url, "plain") == []


def test_list_trials_in_number_order_and_by_state(studies: str) -> None:
    trials = report.list_trials(studies, "max")
    assert [t["number"] for t in trials] == list(range(9))
    assert [t["state"] for t in trials[5:]] == ["PRUNED", "FAIL", "RUNNING", "WAITING"]
    assert trials[8]["started"] is None and trials[7]["completed"] is None
    assert trials[6]["values"] is None
    failed = report.list_trials(studies, "max", states=["fail", "RUNNING"])
    assert [(t["number"], t["state"]) for t in failed] == [(6, "FAIL"), (7, "RUNNING")]
    assert failed[0]["fail_reason"] == "collapsed: output std 3e-7"
    assert failed[0]["params"]["dataset"] == "original"
    with pytest.raises(UsageError, match="unknown trial state 'DONE'"):
        report.list_trials(studies, "max", states=["DONE"])


def test_list_studies(studies: str) -> None:
    rows = {s["name"]: s for s in report.list_studies(studies)}
    assert set(rows) == {"max", "min", "pareto"}
    assert rows["max"]["directions"] == ["maximize"] and rows["max"]["budget"] == 20
    assert rows["pareto"]["directions"] == ["maximize", "minimize"]
    assert rows["pareto"]["metrics"] == ["expression.f1", "sections.mean_output_mse"]
    assert rows["max"]["counts"]["FAIL"] == 1 and rows["max"]["finished"] == 6
    assert datetime.datetime.fromisoformat(rows["max"]["created"]) == BASE.astimezone(
        datetime.timezone.utc
    )
    table = formatting.render(list(rows.values()), "table", kind="studies")
    assert "6/20" in table and "expression.f1 (max)" in table


def test_unknown_study_lists_existing_names(studies: str) -> None:
    for call in (
        lambda: report.best_trials(studies, "nope"),
        lambda: study_status(studies, "nope"),
        lambda: report.list_trials(studies, "nope"),
    ):
        with pytest.raises(StudyNotFoundError, match="'nope'.*max, min, pareto") as error:
            call()
        assert "\n" not in str(error.value)


def test_password_never_appears(postgres_studies: str) -> None:
    from sqlalchemy.engine import make_url

    password = make_url(postgres_studies).password
    assert password
    status = study_status(postgres_studies, "pareto")
    assert password not in json.dumps(status) and "***" in status["storage"]
    with pytest.raises(StudyNotFoundError) as error:
        report.best_trials(postgres_studies, "nope")
    assert password not in str(error.value)


def test_unreachable_postgres_is_a_masked_storage_error() -> None:
    url = "postgresql+psycopg://someone:TopSecret123@127.0.0.1:1/nothing"
    with pytest.raises(StorageError) as error:
        study_status(url, "x")
    assert "TopSecret123" not in str(error.value) and "\n" not in str(error.value)


def test_missing_sqlite_file_is_a_storage_error_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    url = f"sqlite:///{path}"
    for call in (
        lambda: report.best_trials(url, "x"),
        lambda: study_status(url, "x"),
        lambda: report.list_trials(url, "x"),
        lambda: report.list_studies(url),
    ):
        with pytest.raises(StorageError, match="missing.db"):
            call()
    assert not path.exists()


def test_a_file_that_is_not_a_study_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(b"this is a text file, not SQLite " * 64)
    with pytest.raises(StorageError, match="other.db"):
        report.list_studies(f"sqlite:///{path}")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert report.list_studies(f"sqlite:///{empty}") == []


def test_top_below_one_is_a_usage_error(sqlite_studies: str) -> None:
    with pytest.raises(UsageError, match="--top must be at least 1, got 0"):
        report.best_trials(sqlite_studies, "max", top=0)


def test_json_output_is_strict_and_complete(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, study_name="nan", direction="maximize")
    _add(study, 0, TrialState.COMPLETE, [0.5], {"metrics": {"latent.kl_mean": math.nan}})
    rows = report.best_trials(sqlite_url, "nan")
    assert math.isnan(rows[0]["metrics"]["latent.kl_mean"])
    text = formatting.render(rows, "json", kind="best")
    assert "NaN" not in text
    parsed = json.loads(text)
    assert REQUIRED_KEYS <= set(parsed[0])
    assert parsed[0]["metrics"]["latent.kl_mean"] is None and parsed[0]["values"] == [0.5]


def test_csv_output_parses(sqlite_studies: str) -> None:
    rows = report.list_trials(sqlite_studies, "max")
    text = formatting.render(rows, "csv", kind="trials")
    records = list(csv.DictReader(io.StringIO(text)))
    assert [r["number"] for r in records] == [str(i) for i in range(9)]
    header = list(records[0])
    assert header[:3] == ["number", "state", "value"] and header[-1] == "fail_reason"
    assert "param.dataset" in header and "metric.section.H3K9me3.output_mse" in header
    assert records[1]["param.dataset"] == "balanced" and float(records[1]["value"]) == 0.9
    assert records[6]["fail_reason"] == "collapsed: output std 3e-7"
    assert records[6]["value"] == "" and records[6]["metric.expression.auroc"] == ""
    front = report.best_trials(sqlite_studies, "pareto")
    pareto = list(csv.DictReader(io.StringIO(formatting.render(front, "csv", kind="best"))))
    assert [(float(r["value_0"]), float(r["value_1"])) for r in pareto] == [
        PARETO_POINTS[i] for i in PARETO_EXPECTED
    ]
    studies_csv = formatting.render(report.list_studies(sqlite_studies), "csv", kind="studies")
    assert [r["name"] for r in csv.DictReader(io.StringIO(studies_csv))] == [
        "max",
        "min",
        "pareto",
    ]


def test_best_table_has_one_column_per_trial(sqlite_studies: str) -> None:
    rows = report.best_trials(sqlite_studies, "max", top=5)
    objectives = study_status(sqlite_studies, "max")["objectives"]
    text = formatting.render(rows, "table", kind="best", objectives=objectives)
    lines = text.splitlines()
    assert lines[0].split() == ["trial", "#1", "#3", "#2", "#0", "#4"]
    assert lines[1].split() == ["expression.auroc", "(max)", "0.9", "0.9", "0.7", "0.5", "0.1"]
    by_label = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ")}
    assert by_label["dataset"] == ["balanced"] * 2 + ["original"] * 3
    assert by_label["kl_mean"] == ["0.1235"] * 5  # 4 significant digits
    assert by_label["flags"] == ["0", "0", "0", "0", "1"]
    for title in ("Params", "Expression", "Expression, label hidden", "Section H3K9me3", "Latent"):
        assert title in lines
    rates = [line.split() for line in lines if line.strip().startswith(("rate above", "actual"))]
    assert rates[0][:4] == ["rate", "above", "0.5", "0.1"]
    assert rates[1][:3] == ["actual", "rate", "0.12"]
    assert max(len(line) for line in lines) <= 100  # five trials fit on a terminal


def test_trials_table_one_line_per_trial(sqlite_studies: str) -> None:
    text = formatting.render(report.list_trials(sqlite_studies, "max"), "table", kind="trials")
    lines = text.splitlines()
    assert len(lines) == 1 + 9
    assert lines[7].split()[:2] == ["6", "FAIL"] and "collapsed: output std 3e-7" in lines[7]
    assert "dataset=balanced" in lines[2]


def test_bad_format_or_kind_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        formatting.render([], "xml", kind="best")
    with pytest.raises(UsageError, match="unknown kind 'foo'"):
        formatting.render([], "json", kind="foo")
    with pytest.raises(UsageError, match="unknown format 'csv'"):
        formatting.render_status({}, "csv")


def test_core_tables_match_optunas_schema() -> None:
    from optuna.storages._rdb import models

    from sweep.store import _optuna_schema

    ours = vars(_optuna_schema.tables())
    for name, table in ours.items():
        theirs = models.BaseModel.metadata.tables[name]
        assert [c.name for c in table.columns] == [c.name for c in theirs.columns], name
        for column in table.columns:
            other = theirs.columns[column.name]
            assert getattr(column.type, "name", None) == getattr(other.type, "name", None)
            if getattr(other.type, "enums", None):
                assert list(column.type.enums) == list(other.type.enums), column


@pytest.mark.postgres
def test_an_empty_database_has_no_studies(postgres_url: str) -> None:
    from sweep.store.read import best_trials
    from sweep.store.read import list_studies

    assert list_studies(postgres_url) == []
    with pytest.raises(StudyNotFoundError, match="holds no studies"):
        best_trials(postgres_url, "anything")


def test_trials_table_fits_the_width_unless_wide(sqlite_studies: str) -> None:
    rows = report.list_trials(sqlite_studies, "max")
    rows[1]["params"] = {**rows[1]["params"], "note": "x" * 300}
    fitted = formatting.render(rows, "table", kind="trials", width=100)
    assert max(len(line) for line in fitted.splitlines()) <= 100
    assert "..." in fitted and "x" * 300 not in fitted
    whole = formatting.render(rows, "table", kind="trials", width=None)
    assert "note=" + "x" * 300 in whole
    assert whole.splitlines()[0].split() == fitted.splitlines()[0].split()  # same columns
