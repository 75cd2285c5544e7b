"""Single-trial and weight-keeping reads: one trial by number, the best COMPLETE trials' values,
the trials that hold kept weights, and the running trials' progress.

Same SQL reads as :mod:`sweep.store.read` (Optuna's tables through SQLAlchemy Core, no
``optuna.load_study``), so each answers in about a second on a 10,000-trial study. Read-only;
never imports TensorFlow.
"""

from __future__ import annotations

import json
from typing import Any

from sweep.errors import TrialNotFoundError
from sweep.store._optuna_schema import tables
from sweep.store.read import find_study
from sweep.store.read import load_trial_rows
from sweep.store.read import pareto_ids
from sweep.store.read import read_connection
from sweep.store.read import top_single

#: Trial user attribute: the artifact id of the trial's kept weights (``launch --keep-weights``).
WEIGHTS_ATTR = "weights_artifact"
#: Trial user attribute: the last epoch a running trial finished (1-based).
EPOCH_ATTR = "epoch"


def find_trial(
    url: str, name: str, number: int | None = None, *, include_history: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trial ``number`` of study ``name`` (``None``: the best COMPLETE trial) and the study config.

    Returns:
        ``(trial, config)``: the trial dict of :mod:`sweep.store.read` and the study's stored
        :class:`~sweep.config.StudyConfig` JSON (``{}`` for a study not made by sweep).

    Raises:
        TrialNotFoundError: no such trial, or no COMPLETE trial to call the best.
        StudyNotFoundError, StorageError.
    """
    from sqlalchemy import select

    trials_t = tables().trials
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        if number is None:
            if len(study.directions) > 1:
                ids = pareto_ids(conn, study)[:1]
            else:
                ids = [row[0] for row in top_single(conn, study, 1)]
            if not ids:
                raise TrialNotFoundError(f"study {name!r} has no COMPLETE trial yet")
            trial_id = ids[0]
        else:
            found = conn.execute(
                select(trials_t.c.trial_id).where(
                    trials_t.c.study_id == study.study_id, trials_t.c.number == number
                )
            ).scalar()
            if found is None:
                count = conn.execute(
                    select(trials_t.c.number)
                    .where(trials_t.c.study_id == study.study_id)
                    .order_by(trials_t.c.number.desc())
                    .limit(1)
                ).scalar()
                known = f"trials 0-{count}" if count is not None else "no trials"
                raise TrialNotFoundError(f"study {name!r} has no trial {number} (it has {known})")
            trial_id = int(found)
        trials = load_trial_rows(
            conn, study.study_id, study.schema, ids=[trial_id], include_history=include_history
        )
    return trials[trial_id], dict(study.config or {})


def top_complete(url: str, name: str, k: int) -> list[tuple[int, float]]:
    """``(number, value)`` of the best ``k`` COMPLETE trials by the first objective, best first."""
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        return [(number, value) for _, number, value in top_single(conn, study, k)]


def weight_holders(url: str, name: str) -> list[tuple[int, str, str]]:
    """``(number, state, artifact_id)`` of every trial that ever stored kept weights."""
    from sqlalchemy import select

    m = tables()
    trials_t = m.trials
    uattrs_t = m.trial_user_attributes
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        rows = conn.execute(
            select(trials_t.c.number, trials_t.c.state, uattrs_t.c.value_json)
            .select_from(trials_t.join(uattrs_t, uattrs_t.c.trial_id == trials_t.c.trial_id))
            .where(trials_t.c.study_id == study.study_id, uattrs_t.c.key == WEIGHTS_ATTR)
            .order_by(trials_t.c.number)
        ).all()
    return [(r.number, str(r.state), str(json.loads(r.value_json))) for r in rows]


def running_progress(url: str, name: str) -> dict[int, dict[str, Any]]:
    """``{number: {"epoch", "epochs"}}`` for RUNNING trials: the last finished epoch (``None``
    before the first) and the epochs the trial asked for (``None`` if unknown)."""
    from sqlalchemy import select

    m = tables()
    trials_t = m.trials
    uattrs_t = m.trial_user_attributes
    out: dict[int, dict[str, Any]] = {}
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        rows = conn.execute(
            select(trials_t.c.number, uattrs_t.c.key, uattrs_t.c.value_json)
            .select_from(trials_t.join(uattrs_t, uattrs_t.c.trial_id == trials_t.c.trial_id))
            .where(
                trials_t.c.study_id == study.study_id,
                trials_t.c.state == "RUNNING",
                uattrs_t.c.key.in_([EPOCH_ATTR, "params_full"]),
            )
        ).all()
    for r in rows:
        entry = out.setdefault(r.number, {"epoch": None, "epochs": None})
        value = json.loads(r.value_json)
        if r.key == EPOCH_ATTR:
            entry["epoch"] = value
        elif isinstance(value, dict):
            entry["epochs"] = value.get("epochs")
    return out
