"""The WSGI app ``sweep dashboard`` serves: optuna-dashboard, read-only, compact, with loss curves.

optuna-dashboard 0.21 has no read-only switch (its delete-study button, notes, ``tell`` and
artifact uploads all write), so :class:`SweepDashboard` wraps its app:

* **Read-only** unless ``allow_writes``: any method but GET, HEAD and OPTIONS is refused with
  403 and a JSON ``reason`` (the page shows it as the error of the button pressed).
* **Compact attributes**: a study's user attributes (the sweep's settings, the reference) are
  cut to :data:`STUDY_ATTR_CHARS` characters, and a trial's JSON blobs that optuna-dashboard
  cuts anyway (``history``, ``diagnostics``, ``figure_sample``...) to a short stub naming the
  command that shows them in full. The database is not changed.
* **Seed means**: in a racing study (``--max-seeds`` above 1) every trial of a configuration,
  its own and its extra seeds, gets the configuration's ``seed_mean``, ``seed_sd`` and
  ``seeds`` as sortable attributes, so the history and slice plots can show the mean that
  ``best`` ranks by instead of one lucky seed.
* **Loss curves**: every study page gets, as custom plotly figures, the validation losses per
  epoch (:data:`sweep.names.HEADLINE_CURVES`) of its :data:`CURVE_TRIALS` best COMPLETE trials,
  drawn from each trial's stored ``history`` (one series per trial cannot be an Optuna
  intermediate value: a trial has one such series, the pruner's).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from sweep.names import HEADLINE_CURVES
from sweep.seeds import configurations
from sweep.seeds import seed_run

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""The only methods served without ``allow_writes``."""
STUDY_ATTR_CHARS = 200
"""A study user attribute longer than this is cut in the dashboard."""
TRIAL_ATTR_CHARS = 1024
"""A trial user attribute this long was cut by optuna-dashboard: it becomes a short stub."""
CURVE_TRIALS = 20
"""The loss-curve figures draw this many best COMPLETE trials (by the first objective)."""
CURVES_TTL_S = 10.0
"""Seconds a study's loss-curve figures are reused before they are drawn again."""
SEED_MEAN_ATTRS = ("seed_mean", "seed_sd", "seeds")
"""The attributes a racing study's trials get: their configuration's seed mean, sd and count."""
READ_ONLY_REASON = (
    "sweep dashboard is read-only: nothing was changed (restart it with --allow-writes to "
    "delete studies, write notes or upload artifacts)"
)
_STUDY_PATH = re.compile(r"^/api/studies(?:/(\d+))?/?$")


class SweepDashboard:
    """optuna-dashboard's WSGI app, read-only unless ``allow_writes``, compact, with loss curves.

    Args:
        app: optuna-dashboard's WSGI app (``optuna_dashboard.wsgi(storage, ...)``).
        storage: The Optuna storage the app reads (for the trials' full ``history``).
        allow_writes: Serve POST, PUT, PATCH and DELETE (deleting studies included).
    """

    def __init__(self, app: WSGIApp, storage: Any, *, allow_writes: bool = False) -> None:
        self.app = app
        self.storage = storage
        self.allow_writes = allow_writes
        self._curves: dict[int, tuple[float, list[dict[str, str]]]] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request (the WSGI interface)."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if method not in READ_METHODS and not self.allow_writes:
            return _json(start_response, "403 Forbidden", {"reason": READ_ONLY_REASON})
        match = _STUDY_PATH.match(str(environ.get("PATH_INFO", "")))
        if method != "GET" or match is None:
            return self.app(environ, start_response)
        status, headers, body = _call(self.app, environ)
        if not status.startswith("200"):
            start_response(status, headers)
            return [body]
        data = json.loads(body)
        if match.group(1) is None:
            for study in data.get("study_summaries", []):
                study["user_attrs"] = compact_study_attrs(study.get("user_attrs", []))
        else:
            self._edit_study(int(match.group(1)), data)
        return _json(start_response, status, data, headers)

    def _edit_study(self, study_id: int, data: dict[str, Any]) -> None:
        data["user_attrs"] = compact_study_attrs(data.get("user_attrs", []))
        for key in ("trials", "best_trials"):
            for trial in data.get(key, []):
                trial["user_attrs"] = compact_trial_attrs(
                    trial.get("user_attrs", []), data.get("name", ""), trial.get("number")
                )
        self._add_seed_means(study_id, data)
        data.setdefault("plotly_graph_objects", []).extend(self.curves(study_id))

    def _add_seed_means(self, study_id: int, data: dict[str, Any]) -> None:
        by_number = seed_mean_attrs(self.storage.get_all_trials(study_id, deepcopy=False))
        if not by_number:
            return
        for key in ("trials", "best_trials"):
            for trial in data.get(key, []):
                extra = by_number.get(trial.get("number"), {})
                trial["user_attrs"] = [
                    *({"key": k, "value": str(v)} for k, v in extra.items()),
                    *(a for a in trial.get("user_attrs", []) if a.get("key") not in extra),
                ]
        union = [a for a in data.get("union_user_attrs", []) if a["key"] not in SEED_MEAN_ATTRS]
        data["union_user_attrs"] = [{"key": k, "sortable": True} for k in SEED_MEAN_ATTRS] + union

    def curves(self, study_id: int) -> list[dict[str, str]]:
        """The study's loss-curve figures as optuna-dashboard's ``plotly_graph_objects``."""
        with self._lock:
            cached = self._curves.get(study_id)
            if cached is not None and time.monotonic() - cached[0] < CURVES_TTL_S:
                return cached[1]
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        directions = self.storage.get_study_directions(study_id)
        trials = self.storage.get_all_trials(
            study_id, deepcopy=False, states=(TrialState.COMPLETE,)
        )
        maximize = bool(directions) and directions[0] == StudyDirection.MAXIMIZE
        ranked = [t for t in trials if t.values and math.isfinite(t.values[0])]
        ranked.sort(key=lambda t: t.values[0], reverse=maximize)
        histories = [(t.number, t.user_attrs.get("history")) for t in ranked[:CURVE_TRIALS]]
        figures = loss_curve_figures([(n, h) for n, h in histories if isinstance(h, Mapping)])
        objects = [
            {"id": f"sweep-{key.replace('_', '-')}", "graph_object": json.dumps(figure)}
            for key, figure in figures.items()
        ]
        with self._lock:
            self._curves[study_id] = (time.monotonic(), objects)
        return objects


def seed_mean_attrs(trials: Sequence[Any]) -> dict[int, dict[str, float]]:
    """Trial number -> its configuration's ``seed_mean``, ``seed_sd`` and ``seeds``.

    Empty unless some trial is an extra seed (a racing study); a configuration with one
    complete seed has no ``seed_sd``. Extra seeds get their configuration's values.
    """
    runs = [seed_run(t) for t in trials]
    if all(r.race_of is None for r in runs):
        return {}
    out: dict[int, dict[str, float]] = {}
    for config in configurations(runs):
        attrs = {"seed_mean": config.mean, "seeds": config.n}
        if config.sd is not None:
            attrs["seed_sd"] = config.sd
        out[config.number] = attrs
    for r in runs:
        if r.race_of is not None and r.race_of in out:
            out[r.number] = out[r.race_of]
    return out


def loss_curve_figures(
    histories: Sequence[tuple[int, Mapping[str, Any]]],
) -> dict[str, dict[str, Any]]:
    """One plotly figure (as JSON-ready dicts) per curve of :data:`HEADLINE_CURVES`.

    Args:
        histories: (trial number, stored ``history``) of the trials to draw, best first.

    Returns:
        Curve name -> figure with one line per trial that has the curve; a curve no trial has
        gets no figure. Non-finite values are gaps.
    """
    figures: dict[str, dict[str, Any]] = {}
    for key in HEADLINE_CURVES:
        traces = []
        for number, history in histories:
            curve = history.get(key)
            if not isinstance(curve, Sequence) or isinstance(curve, str) or not curve:
                continue
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers" if len(curve) == 1 else "lines",
                    "name": f"#{number}",
                    "x": list(range(1, len(curve) + 1)),
                    "y": [_finite(v) for v in curve],
                }
            )
        if traces:
            figures[key] = {
                "data": traces,
                "layout": {
                    "title": {"text": f"{key} per epoch ({len(traces)} best trials)"},
                    "xaxis": {"title": {"text": "epoch"}},
                    "yaxis": {"title": {"text": key}},
                },
            }
    return figures


def compact_study_attrs(attrs: list[dict[str, str]]) -> list[dict[str, str]]:
    """optuna-dashboard's study attributes, each value cut to :data:`STUDY_ATTR_CHARS`."""
    return [
        {**a, "value": _cut(a.get("value", ""), STUDY_ATTR_CHARS, "`sweep report` shows it all")}
        for a in attrs
    ]


def compact_trial_attrs(
    attrs: list[dict[str, str]], study: str, number: int | None
) -> list[dict[str, str]]:
    """optuna-dashboard's trial attributes, with the values it cut made a short stub."""
    where = f"`sweep show {study} {number}` shows it all"
    return [
        {**a, "value": _cut(a.get("value", ""), STUDY_ATTR_CHARS, where)}
        if len(a.get("value", "")) >= TRIAL_ATTR_CHARS
        else a
        for a in attrs
    ]


def _cut(value: str, limit: int, where: str) -> str:
    return value if len(value) <= limit else f"{value[:limit]} ... (cut: {where})"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _call(app: WSGIApp, environ: Environ) -> tuple[str, list[tuple[str, str]], bytes]:
    """Run ``app`` on ``environ``; its status, headers and whole body."""
    answer: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        answer["status"], answer["headers"] = status, headers
        return lambda chunk: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return answer["status"], answer["headers"], body


def _json(
    start_response: StartResponse,
    status: str,
    data: Any,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    body = json.dumps(data).encode()
    replaced = ("content-length", "content-type")
    kept = [(k, v) for k, v in headers or [] if k.lower() not in replaced]
    start_response(
        status,
        [*kept, ("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
