"""sweep.present.dashboard_app: optuna-dashboard's real app, read-only, compact, with loss curves.

The app is called through WSGI in-process (no server, no browser) on a SQLite sweep study whose
trials carry what a real trial stores: the JSON ``metrics`` and ``history``, and the headline
scalars. The browser check on a trained study is in ``test_present.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna_dashboard import wsgi

from sweep.config import STUDY_ATTR
from sweep.config import study_config
from sweep.names import headline_values
from sweep.present.dashboard_app import CURVE_TRIALS
from sweep.present.dashboard_app import READ_ONLY_REASON
from sweep.present.dashboard_app import STUDY_ATTR_CHARS
from sweep.present.dashboard_app import SweepDashboard
from sweep.present.dashboard_app import loss_curve_figures
from sweep.space import load_space
from sweep.store.rdb import open_storage
from sweep.store.study import create_or_reuse_study
from tests.support.study_writer import write_study

NAME = "dash"


_KL_BETA = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)


def _sweep_study(path: Path) -> tuple[Any, optuna.Study]:
    """A sweep study with no trials yet: its storage and the Optuna study."""
    url = f"sqlite:///{path}"
    write_study(url, NAME, 0)
    storage = open_storage(url)
    return storage, optuna.load_study(study_name=NAME, storage=storage)


@pytest.fixture
def storage(tmp_path: Path) -> Any:
    """A sweep study (its settings as the big study attribute) with 3 COMPLETE trials."""
    storage, study = _sweep_study(tmp_path / "dash.db")
    for number in range(3):
        metrics = {"expression.auroc": 0.6 + 0.1 * number, "latent.kl_mean": 1.0 + number}
        history = {
            # Trial 0's last value is NaN: no scalar, and a gap in its curve.
            "val_reconstruction_loss": [5.0 - number, 4.0 - number]
            + [float("nan")] * (number == 0),
            "val_kl_loss": [0.1, 0.2, 0.3],
            "figure_padding": list(range(400)),  # a blob optuna-dashboard cuts at 1,024
        }
        attrs = {"metrics": metrics, "history": history, **headline_values(metrics, history)}
        study.add_trial(
            optuna.trial.create_trial(
                params={"kl_beta": 1e-3},
                distributions={"kl_beta": _KL_BETA},
                value=metrics["expression.auroc"],
                user_attrs=attrs,
            )
        )
    return storage


def _request(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(headers)
        return lambda chunk: None

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    raw = b"".join(app(environ, start_response))
    if answer["headers"].get("Content-Length") is not None:
        assert int(answer["headers"]["Content-Length"]) == len(raw)
    return answer["status"], json.loads(raw) if raw else None


def _study_id(storage: Any) -> int:
    return int(storage.get_study_id_from_name(NAME))


def test_writes_are_refused_by_default(storage: Any) -> None:
    app = SweepDashboard(wsgi(storage), storage)
    study_id = _study_id(storage)
    trial_id = storage.get_all_trials(study_id)[0]._trial_id
    for method, path, body in [
        ("DELETE", f"/api/studies/{study_id}", b"{}"),
        ("POST", "/api/studies", b'{"study_name": "new", "directions": ["minimize"]}'),
        ("PUT", f"/api/studies/{study_id}/note", b'{"version": 1, "body": "x"}'),
        ("POST", f"/api/trials/{trial_id}/user-attrs", b'{"user_attrs": {"a": 1}}'),
        ("PATCH", f"/api/studies/{study_id}", b"{}"),
    ]:
        status, data = _request(app, method, path, body)
        assert (status, data) == (403, {"reason": READ_ONLY_REASON}), (method, path)
    assert [s.study_name for s in storage.get_all_studies()] == [NAME]
    assert "a" not in storage.get_all_trials(study_id)[0].user_attrs
    status, data = _request(app, "GET", "/api/studies")
    assert status == 200 and [s["study_name"] for s in data["study_summaries"]] == [NAME]


def test_allow_writes_lets_the_page_delete_a_study(storage: Any) -> None:
    app = SweepDashboard(wsgi(storage), storage, allow_writes=True)
    status, _ = _request(app, "DELETE", f"/api/studies/{_study_id(storage)}", b"{}")
    assert status == 204
    assert storage.get_all_studies() == []


def test_the_study_page_has_scalars_compact_attrs_and_loss_curves(storage: Any) -> None:
    app = SweepDashboard(wsgi(storage), storage)
    status, study = _request(app, "GET", f"/api/studies/{_study_id(storage)}")
    assert status == 200
    sortable = {a["key"] for a in study["union_user_attrs"] if a["sortable"]}
    expected = {"expression.auroc", "latent.kl_mean", "val_kl_loss", "val_reconstruction_loss"}
    assert expected <= sortable
    for trial in study["trials"]:
        attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
        assert float(attrs["expression.auroc"]) == pytest.approx(0.6 + 0.1 * trial["number"])
        assert (
            len(attrs["history"]) < 300
            and f"sweep show {NAME} {trial['number']}" in attrs["history"]
        )
        assert (
            json.loads(attrs["metrics"])["latent.kl_mean"] == 1.0 + trial["number"]
        )  # short: kept
    assert (
        "val_reconstruction_loss" not in storage.get_all_trials(_study_id(storage))[0].user_attrs
    )
    settings = {a["key"]: a["value"] for a in study["user_attrs"]}[STUDY_ATTR]
    assert len(settings) < STUDY_ATTR_CHARS + 60 and "sweep report" in settings
    assert study["objective_names"] == ["expression.auroc"]
    figures = {g["id"]: json.loads(g["graph_object"]) for g in study["plotly_graph_objects"]}
    assert set(figures) == {"sweep-val-reconstruction-loss", "sweep-val-kl-loss"}
    lines = figures["sweep-val-reconstruction-loss"]["data"]
    assert [line["name"] for line in lines] == ["#2", "#1", "#0"]  # best (highest AUROC) first
    assert lines[0]["x"] == [1, 2] and lines[0]["y"] == [3.0, 2.0]
    assert lines[2]["x"] == [1, 2, 3] and lines[2]["y"] == [5.0, 4.0, None]
    status, listed = _request(app, "GET", "/api/studies")
    assert (
        len({a["key"]: a["value"] for a in listed["study_summaries"][0]["user_attrs"]}[STUDY_ATTR])
        < STUDY_ATTR_CHARS + 60
    )


def test_loss_curves_skip_trials_without_them() -> None:
    histories = [(4, {"val_kl_loss": [1.0]}), (9, {"loss": [2.0]})]
    figures = loss_curve_figures(histories)
    assert list(figures) == ["val_kl_loss"]
    assert [line["name"] for line in figures["val_kl_loss"]["data"]] == ["#4"]
    assert loss_curve_figures([]) == {}
    assert CURVE_TRIALS >= 10


def test_a_pareto_study_names_both_objectives(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'pareto.db'}", create=True)
    space = load_space(Path(__file__).resolve().parents[2] / "search_spaces" / "notes_pareto.yaml")
    create_or_reuse_study(storage, "pareto", study_config(space))
    app = SweepDashboard(wsgi(storage), storage)
    study_id = storage.get_study_id_from_name("pareto")
    status, study = _request(app, "GET", f"/api/studies/{study_id}")
    assert status == 200
    assert study["objective_names"] == ["expression_hidden.auroc", "sections.mean_auprc_lift"]
    assert study["plotly_graph_objects"] == []  # no COMPLETE trial: no curves


def test_a_racing_study_shows_each_configurations_seed_mean(tmp_path: Path) -> None:
    from sweep.seeds import RACE_ATTR
    from sweep.seeds import SEED_INDEX_ATTR

    storage, study = _sweep_study(tmp_path / "race.db")
    runs = [  # (value, attrs): configuration #0 on two seeds, #2 on one
        (0.7, {}),
        (0.5, {RACE_ATTR: 0, SEED_INDEX_ATTR: 1}),
        (0.65, {}),
    ]
    for value, attrs in runs:
        study.add_trial(
            optuna.trial.create_trial(
                params={"kl_beta": 1e-3},
                distributions={"kl_beta": _KL_BETA},
                value=value,
                user_attrs=attrs,
            )
        )
    status, data = _request(
        SweepDashboard(wsgi(storage), storage), "GET", f"/api/studies/{_study_id(storage)}"
    )
    assert status == 200
    shown = {t["number"]: {a["key"]: a["value"] for a in t["user_attrs"]} for t in data["trials"]}
    for number in (0, 1):  # the configuration's own trial and its extra seed
        assert float(shown[number]["seed_mean"]) == pytest.approx(0.6)
        assert float(shown[number]["seed_sd"]) == pytest.approx(0.1414, abs=1e-4)
        assert shown[number]["seeds"] == "2"
    assert float(shown[2]["seed_mean"]) == pytest.approx(0.65) and "seed_sd" not in shown[2]
    sortable = [a["key"] for a in data["union_user_attrs"] if a["sortable"]]
    assert sortable[:3] == ["seed_mean", "seed_sd", "seeds"]
    assert "seed_mean" not in storage.get_all_trials(_study_id(storage))[0].user_attrs


def test_a_study_without_extra_seeds_gets_no_seed_means(storage: Any) -> None:
    status, data = _request(
        SweepDashboard(wsgi(storage), storage), "GET", f"/api/studies/{_study_id(storage)}"
    )
    assert status == 200
    keys = {a["key"] for t in data["trials"] for a in t["user_attrs"]}
    assert not keys & {"seed_mean", "seed_sd", "seeds"}
