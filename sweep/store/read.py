"""Read-only queries behind ``sweep best``, ``status``, ``trials`` and ``studies``.

Every function here reads Optuna's RDB tables directly with SQLAlchemy Core, so it answers in
about a second on a study of 10,000 trials: the best trials are chosen by the database
(``ORDER BY`` the objective value with ``LIMIT``) or, for several objectives, from the
``(trial, objective, value)`` rows of COMPLETE trials only; parameters and user attributes are
then loaded for the chosen trials alone. The table declarations, the stored value, direction and
time formats, and the schema-version check (a database of a schema sweep was not tested against
is refused before any other query) live in :mod:`sweep.store._optuna_schema`. Nothing here
writes to the database, creates a SQLite file, or imports TensorFlow, Keras or the training code.

Each trial comes back as a plain dict, the JSON schema scripts rely on:

``number``, ``state`` (COMPLETE, PRUNED, FAIL, RUNNING, WAITING), ``values`` (list of floats or
``None``), ``params`` (searched parameters, external values: a categorical choice, not its
index), ``params_full``, ``metrics`` (``{}`` if none), ``flags`` (``[]`` if none), ``seconds``,
``epochs_run``, ``elbo_beta``, ``worker``, ``fail_reason``, ``started``/``completed`` (ISO 8601
in UTC, or ``None``), ``baseline`` (the baseline's name on a study's baseline trial, else
``None``), ``user_attrs`` (any other user attributes), plus ``history`` and ``diagnostics``
when asked for.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import math
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import BASELINE_ATTR
from sweep.config import BIG_ATTRS
from sweep.config import REFERENCE_ATTR
from sweep.config import STATES
from sweep.config import STUDY_ATTR
from sweep.config import check as check_option
from sweep.errors import StudyNotFoundError
from sweep.errors import UsageError
from sweep.store._optuna_schema import FAIL_REASON_KEY
from sweep.store._optuna_schema import StoredSchema
from sweep.store._optuna_schema import check_schema
from sweep.store._optuna_schema import decode_value
from sweep.store._optuna_schema import direction_name
from sweep.store._optuna_schema import infinity_sign
from sweep.store._optuna_schema import tables
from sweep.store._optuna_schema import value_rank
from sweep.store.confirm import CONFIRM_ATTR
from sweep.store.rdb import read_engine
from sweep.store.rdb import storage_errors
from sweep.store.urls import mask_url

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from sqlalchemy.engine import Connection

#: User attributes with a field of their own in a trial dict.
KNOWN_ATTRS = (
    "params_full",
    "metrics",
    "flags",
    "seconds",
    "elbo_beta",
    "epochs_run",
    "fail_reason",
    "worker",
    BASELINE_ATTR,
)
_CHUNK = 500  # ids per IN (...) list; well under SQLite's variable limit


def list_studies(url: str) -> list[dict[str, Any]]:
    """Every study in the storage, in creation order.

    Returns:
        One dict per study: ``name``, ``directions`` (``"maximize"``/``"minimize"``),
        ``counts`` (trials per state, every state present), ``finished`` (COMPLETE + PRUNED),
        ``budget`` (the sweep's ``n_trials``; ``None`` for a study not made by sweep),
        ``metrics`` (objective metric names, ``None`` entries when unknown), ``created`` (ISO
        start of the first trial, ``None`` when there is none), ``confirms`` (for the companion
        study of ``sweep confirm``: the study it confirms, else ``None``).

    Raises:
        StorageError: the database cannot be reached or is not an Optuna storage.
    """
    from sqlalchemy import func
    from sqlalchemy import select

    m = tables()
    studies_t = m.studies
    trials_t = m.trials
    attrs_t = m.study_user_attributes
    with read_connection(url) as (conn, schema):
        if schema is None:
            return []  # an empty database: no sweep has written to it yet
        names = {
            row.study_id: row.study_name
            for row in conn.execute(
                select(studies_t.c.study_id, studies_t.c.study_name).order_by(studies_t.c.study_id)
            )
        }
        directions: dict[int, list[str]] = {sid: [] for sid in names}
        dir_t = m.study_directions
        for row in conn.execute(
            select(dir_t.c.study_id, dir_t.c.direction).order_by(
                dir_t.c.study_id, dir_t.c.objective
            )
        ):
            directions.setdefault(row.study_id, []).append(direction_name(row.direction))
        counts: dict[int, dict[str, int]] = {sid: dict.fromkeys(STATES, 0) for sid in names}
        for row in conn.execute(
            select(trials_t.c.study_id, trials_t.c.state, func.count()).group_by(
                trials_t.c.study_id, trials_t.c.state
            )
        ):
            counts.setdefault(row[0], dict.fromkeys(STATES, 0))[row[1]] = int(row[2])
        created: dict[int, datetime.datetime | None] = dict(
            conn.execute(
                select(trials_t.c.study_id, func.min(trials_t.c.datetime_start)).group_by(
                    trials_t.c.study_id
                )
            ).all()
        )
        configs = {
            row.study_id: loads_json(row.value_json)
            for row in conn.execute(
                select(attrs_t.c.study_id, attrs_t.c.value_json).where(attrs_t.c.key == STUDY_ATTR)
            )
        }
        confirms = {  # companion studies of `sweep confirm`: the study they confirm
            row.study_id: (loads_json(row.value_json) or {}).get("source")
            for row in conn.execute(
                select(attrs_t.c.study_id, attrs_t.c.value_json).where(
                    attrs_t.c.key == CONFIRM_ATTR
                )
            )
        }
    out = []
    for sid, name in names.items():
        config = configs.get(sid)
        objectives = objectives_of(config, directions.get(sid, []))
        study_counts = counts[sid]
        out.append(
            {
                "name": name,
                "directions": directions.get(sid, []),
                "counts": study_counts,
                "finished": study_counts["COMPLETE"] + study_counts["PRUNED"],
                "budget": _budget(config),
                "metrics": [o["metric"] for o in objectives],
                "created": _iso(created.get(sid), schema),
                "confirms": confirms.get(sid),
            }
        )
    return out


def study_status(url: str, name: str) -> dict[str, Any]:
    """Progress of one study: counts, best so far, running trials, throughput and ETA.

    Returns:
        ``name``, ``storage`` (masked URL), ``objectives`` (``[{metric, direction}]``),
        ``budget`` (``None`` when not a sweep study), ``counts`` (every state), ``finished``
        (COMPLETE + PRUNED, what the budget counts), ``best`` (``{number, values}`` of the best
        COMPLETE trial for one objective, else ``None``), ``pareto_size`` (size of the Pareto
        set for several objectives, else ``None``), ``running`` (``[{number, started,
        heartbeat_age_s}]``, the age ``None`` without a heartbeat), ``created``,
        ``last_completed``, ``throughput_per_hour`` (finished trials per hour from the first
        start to the last completion; ``None`` until one finished) and ``eta_s`` (remaining
        budget over throughput; ``0`` when the budget is met, ``None`` when unknown).

    Raises:
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    from sqlalchemy import func
    from sqlalchemy import select

    m = tables()
    trials_t = m.trials
    beats_t = m.trial_heartbeats
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        counts = dict.fromkeys(STATES, 0)
        for state, count in conn.execute(
            select(trials_t.c.state, func.count())
            .where(trials_t.c.study_id == study.study_id)
            .group_by(trials_t.c.state)
        ):
            counts[state] = int(count)
        finished_states = ("COMPLETE", "PRUNED")
        first_start = conn.execute(
            select(func.min(trials_t.c.datetime_start)).where(
                trials_t.c.study_id == study.study_id
            )
        ).scalar()
        last_complete = conn.execute(
            select(func.max(trials_t.c.datetime_complete)).where(
                trials_t.c.study_id == study.study_id, trials_t.c.state.in_(finished_states)
            )
        ).scalar()
        best = None
        pareto_size = None
        if len(study.directions) == 1:
            top = top_single(conn, study, 1)
            if top:
                best = {"number": top[0][1], "values": [top[0][2]]}
        elif study.directions:
            pareto_size = len(pareto_ids(conn, study))
        running_rows = conn.execute(
            select(trials_t.c.number, trials_t.c.datetime_start, beats_t.c.heartbeat)
            .select_from(trials_t.outerjoin(beats_t, beats_t.c.trial_id == trials_t.c.trial_id))
            .where(
                trials_t.c.study_id == study.study_id,
                trials_t.c.state == "RUNNING",
            )
            .order_by(trials_t.c.number)
        ).all()
        # Heartbeats are written by the database's own now() (every Optuna version): their age
        # is measured against it, in the database's clock and time zone, never this machine's.
        now = None
        if any(row.heartbeat is not None for row in running_rows):
            now = conn.execute(select(func.now())).scalar()
            now = now.replace(tzinfo=None) if now is not None else None
    running = [
        {
            "number": row.number,
            "started": _iso(row.datetime_start, study.schema),
            "heartbeat_age_s": (
                max(0.0, (now - row.heartbeat).total_seconds())
                if now is not None and row.heartbeat is not None
                else None
            ),
        }
        for row in running_rows
    ]
    first_start = study.schema.to_utc(first_start)
    last_complete = study.schema.to_utc(last_complete)
    finished = counts["COMPLETE"] + counts["PRUNED"]
    throughput = None
    if finished and first_start is not None and last_complete is not None:
        span_s = (last_complete - first_start).total_seconds()
        if span_s > 0:
            throughput = finished / span_s * 3600.0
    budget = _budget(study.config)
    eta_s = None
    if budget is not None:
        remaining = max(0, budget - finished)
        if remaining == 0:
            eta_s = 0.0
        elif throughput:
            eta_s = remaining / throughput * 3600.0
    return {
        "name": study.name,
        "storage": mask_url(url),
        "objectives": objectives_of(study.config, study.directions),
        "budget": budget,
        "counts": counts,
        "finished": finished,
        "best": best,
        "pareto_size": pareto_size,
        "running": running,
        "created": _iso(first_start, study.schema),
        "last_completed": _iso(last_complete, study.schema),
        "throughput_per_hour": throughput,
        "eta_s": eta_s,
    }


def best_trials(
    url: str, name: str, top: int = 5, *, include_history: bool = False
) -> list[dict[str, Any]]:
    """The best COMPLETE trials of a study, best first.

    One objective: the best ``top`` trials, ordered by the objective in the study's direction
    (ties by trial number). Several objectives: the whole Pareto set, ``top`` ignored, sorted by
    the first objective (best first). Only the selected trials' parameters and attributes are
    read from the database. The study's baseline is marked (``baseline``) when it is among them;
    :func:`baseline_trial` reads it in any case.

    Args:
        url: Storage URL.
        name: Study name.
        top: How many trials for a single-objective study (at least 1).
        include_history: Also return the ``history`` and ``diagnostics`` user attributes.

    Raises:
        UsageError: ``top`` is below 1.
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    check_option("top", top)
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        if len(study.directions) <= 1:
            ids = [row[0] for row in top_single(conn, study, top)]
        else:
            ids = pareto_ids(conn, study)
        trials = load_trial_rows(
            conn, study.study_id, study.schema, ids=ids, include_history=include_history
        )
    rows = [trials[i] for i in ids if i in trials]
    return rows


def baseline_trial(url: str, name: str, *, include_history: bool = False) -> dict[str, Any] | None:
    """The study's baseline trial (enqueued by ``launch --baseline``) in any state, or ``None``.

    One indexed query finds it by its user attribute :data:`sweep.config.BASELINE_ATTR`, and
    none is made for a study launched without a baseline.

    Raises:
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        trial_id = _baseline_id(conn, study)
        if trial_id is None:
            return None
        trials = load_trial_rows(
            conn, study.study_id, study.schema, ids=[trial_id], include_history=include_history
        )
    return trials.get(trial_id)


def reference_row(url: str, name: str) -> dict[str, Any] | None:
    """The study's supervised reference as a ``best`` column, or ``None`` when it has none.

    One query for the study user attribute :data:`sweep.config.REFERENCE_ATTR` (written at
    launch by :mod:`sweep.run.reference`). The dict has a trial dict's keys: ``number`` and
    ``state`` are ``None`` and ``"REFERENCE"``, ``reference`` is its label (``"logistic,
    100-bp bins"``), ``values`` the objectives where the reference reports that metric (else
    ``None``), ``metrics`` its validation metrics (``expression_hidden.*``), ``seconds`` its
    fitting time, ``flags`` ``None``; plus ``error`` when it failed at launch, and
    ``details`` (the stored JSON: C, features, rows, split).

    Raises:
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    from sqlalchemy import select

    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        attrs_t = tables().study_user_attributes
        raw = conn.execute(
            select(attrs_t.c.value_json).where(
                attrs_t.c.study_id == study.study_id, attrs_t.c.key == REFERENCE_ATTR
            )
        ).scalar()
    stored = loads_json(raw) if raw is not None else None
    if not isinstance(stored, dict):
        return None
    metrics = stored.get("metrics") if isinstance(stored.get("metrics"), dict) else {}
    objectives = objectives_of(study.config, study.directions)
    return {
        "number": None,
        "state": "REFERENCE",
        "reference": str(stored.get("label") or "logistic"),
        "values": [metrics.get(o["metric"]) for o in objectives] if metrics else None,
        "params": {},
        "metrics": metrics,
        "flags": None,
        "seconds": stored.get("seconds"),
        "error": stored.get("error"),
        "details": {k: v for k, v in stored.items() if k not in ("metrics", "error")},
    }


def list_trials(
    url: str,
    name: str,
    states: Sequence[str] | None = None,
    *,
    include_history: bool = False,
) -> list[dict[str, Any]]:
    """Every trial of a study in number order, optionally only those in ``states``.

    Args:
        url: Storage URL.
        name: Study name.
        states: State names to keep (case-insensitive); ``None`` keeps all.
        include_history: Also return the ``history`` and ``diagnostics`` user attributes.

    Raises:
        UsageError: an unknown state name.
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    wanted = None
    if states is not None:
        wanted = []
        for state in states:
            if str(state).upper() not in STATES:
                raise UsageError(f"unknown trial state {state!r}; choose from {', '.join(STATES)}")
            wanted.append(str(state).upper())
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        trials = load_trial_rows(
            conn, study.study_id, study.schema, states=wanted, include_history=include_history
        )
    return sorted(trials.values(), key=lambda t: t["number"])


def study_config(url: str, name: str) -> dict[str, Any]:
    """The sweep's stored settings of one study (``{}`` for a study not made by sweep).

    Returns:
        The :class:`sweep.config.StudyConfig` JSON (space, data path and SHA-256, split,
        budget...), plus ``name`` and ``directions``.

    Raises:
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
    return {**(study.config or {}), "name": study.name, "directions": list(study.directions)}


def trial_by_number(
    url: str, name: str, number: int, *, include_history: bool = True
) -> dict[str, Any]:
    """One trial of a study by its number, history, diagnostics and figure sample included.

    Raises:
        UsageError: the study has no trial of that number (the message gives the range).
        StudyNotFoundError: no study of that name (the message lists the existing ones).
        StorageError: the database cannot be reached or used.
    """
    from sqlalchemy import func
    from sqlalchemy import select

    trials_t = tables().trials
    with read_connection(url) as (conn, schema):
        study = find_study(conn, schema, url, name)
        trial_id = conn.execute(
            select(trials_t.c.trial_id).where(
                trials_t.c.study_id == study.study_id, trials_t.c.number == int(number)
            )
        ).scalar()
        if trial_id is None:
            count = conn.execute(
                select(func.count()).where(trials_t.c.study_id == study.study_id)
            ).scalar()
            have = f"trials 0-{count - 1}" if count else "no trials"
            raise UsageError(f"study {name!r} has no trial {number} (it has {have})")
        trials = load_trial_rows(
            conn, study.study_id, study.schema, ids=[trial_id], include_history=include_history
        )
    return trials[trial_id]


# --- internals -----------------------------------------------------------------------------


class StoredStudy:
    """A study as found in the database: id, name, directions, sweep config, schema."""

    __slots__ = ("study_id", "name", "directions", "config", "schema")

    def __init__(
        self,
        study_id: int,
        name: str,
        directions: list[str],
        config: dict[str, Any] | None,
        schema: StoredSchema,
    ) -> None:
        self.study_id = study_id
        self.name = name
        self.directions = directions
        self.config = config
        self.schema = schema  # how the database stores times


@contextlib.contextmanager
def read_connection(url: str) -> Iterator[tuple[Connection, StoredSchema | None]]:
    """A read connection and the database's checked schema (``None``: no Optuna tables).

    Database errors become one-line :class:`StorageError`; an unsupported schema is refused
    (:class:`~sweep.errors.SchemaVersionError`) before any other query.
    """
    engine = read_engine(url)
    try:
        with storage_errors(url, action="read"), engine.connect() as conn:
            yield conn, check_schema(conn, url)
    finally:
        engine.dispose()


def find_study(conn: Connection, schema: StoredSchema | None, url: str, name: str) -> StoredStudy:
    """Study ``name`` in the database at ``url``.

    Raises:
        StudyNotFoundError: no such study (or no Optuna tables at all).
    """
    from sqlalchemy import select

    m = tables()
    studies_t = m.studies
    if schema is None:
        raise StudyNotFoundError(
            f"no study named {name!r} in {mask_url(url)}; it holds no studies"
        )
    study_id = conn.execute(
        select(studies_t.c.study_id).where(studies_t.c.study_name == name)
    ).scalar()
    if study_id is None:
        known = sorted(conn.execute(select(studies_t.c.study_name)).scalars())
        more = f" (and {len(known) - 20} more)" if len(known) > 20 else ""
        shown = ", ".join(known[:20]) + more
        hint = f"; studies there: {shown}" if known else "; it holds no studies"
        raise StudyNotFoundError(f"no study named {name!r} in {mask_url(url)}{hint}")
    dir_t = m.study_directions
    directions = [
        direction_name(d)
        for d in conn.execute(
            select(dir_t.c.direction)
            .where(dir_t.c.study_id == study_id)
            .order_by(dir_t.c.objective)
        ).scalars()
    ]
    attrs_t = m.study_user_attributes
    raw = conn.execute(
        select(attrs_t.c.value_json).where(
            attrs_t.c.study_id == study_id, attrs_t.c.key == STUDY_ATTR
        )
    ).scalar()
    config = loads_json(raw) if raw is not None else None
    config = config if isinstance(config, dict) else None
    return StoredStudy(study_id, name, directions, config, schema)


def top_single(conn: Connection, study: StoredStudy, limit: int) -> list[tuple[int, int, float]]:
    """``(trial_id, number, value)`` of the best ``limit`` COMPLETE trials, best first."""
    from sqlalchemy import select

    m = tables()
    trials_t = m.trials
    values_t = m.trial_values
    rank = value_rank(values_t)
    maximize = bool(study.directions) and study.directions[0] == "maximize"
    order = (
        (rank.desc(), values_t.c.value.desc())
        if maximize
        else (rank.asc(), values_t.c.value.asc())
    )
    rows = conn.execute(
        select(trials_t.c.trial_id, trials_t.c.number, values_t.c.value, values_t.c.value_type)
        .select_from(trials_t.join(values_t, values_t.c.trial_id == trials_t.c.trial_id))
        .where(
            trials_t.c.study_id == study.study_id,
            trials_t.c.state == "COMPLETE",
            values_t.c.objective == 0,
        )
        .order_by(*order, trials_t.c.number.asc())
        .limit(limit)
    ).all()
    return [(r.trial_id, r.number, decode_value(r.value, r.value_type)) for r in rows]


def _baseline_id(conn: Connection, study: StoredStudy) -> int | None:
    """The trial id of the study's baseline, or ``None``; no query when none was enqueued."""
    from sqlalchemy import select

    if not (study.config or {}).get("baseline"):
        return None
    m = tables()
    trials_t = m.trials
    uattrs_t = m.trial_user_attributes
    return conn.execute(
        select(trials_t.c.trial_id)
        .select_from(trials_t.join(uattrs_t, uattrs_t.c.trial_id == trials_t.c.trial_id))
        .where(trials_t.c.study_id == study.study_id, uattrs_t.c.key == BASELINE_ATTR)
        .order_by(trials_t.c.number)
        .limit(1)
    ).scalar()


def pareto_ids(conn: Connection, study: StoredStudy) -> list[int]:
    """Ids of the Pareto set of COMPLETE trials, sorted by the first objective, best first."""
    from sqlalchemy import select

    m = tables()
    trials_t = m.trials
    values_t = m.trial_values
    n_obj = len(study.directions)
    # The infinity sign as a plain integer: no enum decoding for 10,000s of rows.
    inf = infinity_sign(values_t)
    rows = conn.execute(
        select(values_t.c.trial_id, trials_t.c.number, values_t.c.objective, values_t.c.value, inf)
        .select_from(trials_t.join(values_t, values_t.c.trial_id == trials_t.c.trial_id))
        .where(trials_t.c.study_id == study.study_id, trials_t.c.state == "COMPLETE")
    ).all()
    signs = [-1.0 if d == "maximize" else 1.0 for d in study.directions]
    losses: dict[int, list[float]] = {}
    numbers: dict[int, int] = {}
    nan = math.nan
    for trial_id, number, objective, value, inf_sign in rows:
        if 0 <= objective < n_obj:
            if inf_sign:
                value = math.inf * inf_sign
            elif value is None:
                value = nan
            loss = losses.get(trial_id)
            if loss is None:
                loss = losses[trial_id] = [nan] * n_obj
                numbers[trial_id] = number
            loss[objective] = signs[objective] * value
    ids = [tid for tid, loss in losses.items() if not any(math.isnan(v) for v in loss)]
    if not ids:
        return []
    front = [ids[i] for i in _pareto_front([losses[tid] for tid in ids])]
    front.sort(key=lambda tid: (losses[tid][0], numbers[tid]))
    return front


def _pareto_front(losses: list[list[float]]) -> list[int]:
    """Indices of the non-dominated rows of ``losses`` (every column minimized).

    Rows equal to a front row are on the front too (they do not dominate each other), as in
    Optuna. Two columns: one vectorized sweep, O(n log n). More: each row, in lexicographic
    order, is checked against the front found so far, O(n * front size).
    """
    import numpy as np

    points = np.asarray(losses, dtype=float)
    n, k = points.shape
    order = np.lexsort(points.T[::-1])  # by first column, then second...
    ranked = points[order]
    if k == 2:
        # A row is dominated iff some lexicographically smaller, different row has a second
        # value <= its own: compare with the running minimum before its group of equal rows.
        new_group = np.ones(n, dtype=bool)
        new_group[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
        group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
        before = np.concatenate([[np.inf], np.minimum.accumulate(ranked[:, 1])[:-1]])
        keep = ~(before[group_start] <= ranked[:, 1])
        return [int(i) for i in order[keep]]
    front_rows: list[int] = []
    front = np.empty((0, k))
    for i, p in zip(order, ranked, strict=True):
        if len(front_rows) and np.any(np.all(front <= p, axis=1) & np.any(front < p, axis=1)):
            continue
        front_rows.append(int(i))
        front = np.vstack([front, p])
    return front_rows


def load_trial_rows(
    conn: Connection,
    study_id: int,
    schema: StoredSchema,
    *,
    ids: Sequence[int] | None = None,
    states: Sequence[str] | None = None,
    include_history: bool = False,
) -> dict[int, dict[str, Any]]:
    """Trial dicts keyed by trial id: the given ``ids``, or every trial (in ``states``)."""
    from sqlalchemy import select

    m = tables()
    trials_t = m.trials
    values_t = m.trial_values
    params_t = m.trial_params
    uattrs_t = m.trial_user_attributes
    sattrs_t = m.trial_system_attributes

    def selected(statement: Any, id_column: Any) -> Iterable[Any]:
        """Run ``statement`` restricted to the selected trials."""
        if ids is not None:
            for start in range(0, len(ids), _CHUNK):
                chunk = list(ids[start : start + _CHUNK])
                yield from conn.execute(statement.where(id_column.in_(chunk)))
            return
        if id_column is not trials_t.c.trial_id:
            statement = statement.select_from(
                id_column.table.join(trials_t, trials_t.c.trial_id == id_column)
            )
        statement = statement.where(trials_t.c.study_id == study_id)
        if states is not None:
            statement = statement.where(trials_t.c.state.in_(list(states)))
        yield from conn.execute(statement)

    if ids is not None and not ids:
        return {}
    trials: dict[int, dict[str, Any]] = {}
    base = select(
        trials_t.c.trial_id,
        trials_t.c.number,
        trials_t.c.state,
        trials_t.c.datetime_start,
        trials_t.c.datetime_complete,
    )
    if ids is not None:
        base = base.where(trials_t.c.study_id == study_id)
    for r in selected(base, trials_t.c.trial_id):
        trials[r.trial_id] = {
            "number": r.number,
            "state": r.state,
            "values": None,
            "params": {},
            "params_full": None,
            "metrics": {},
            "flags": [],
            "seconds": None,
            "epochs_run": None,
            "elbo_beta": None,
            "worker": None,
            "fail_reason": None,
            "baseline": None,
            "started": _iso(r.datetime_start, schema),
            "completed": _iso(r.datetime_complete, schema),
            "user_attrs": {},
        }
        if include_history:
            trials[r.trial_id].update(history=None, diagnostics=None)
    values: dict[int, dict[int, float]] = {}
    for r in selected(
        select(values_t.c.trial_id, values_t.c.objective, values_t.c.value, values_t.c.value_type),
        values_t.c.trial_id,
    ):
        values.setdefault(r.trial_id, {})[r.objective] = decode_value(r.value, r.value_type)
    for tid, by_objective in values.items():
        if tid in trials:
            trials[tid]["values"] = [by_objective[k] for k in sorted(by_objective)]
    for r in selected(
        select(
            params_t.c.trial_id,
            params_t.c.param_name,
            params_t.c.param_value,
            params_t.c.distribution_json,
        ).order_by(params_t.c.param_id),
        params_t.c.trial_id,
    ):
        if r.trial_id in trials:
            trials[r.trial_id]["params"][r.param_name] = _external(
                r.distribution_json, r.param_value
            )
    attrs_query = select(uattrs_t.c.trial_id, uattrs_t.c.key, uattrs_t.c.value_json).order_by(
        uattrs_t.c.trial_user_attribute_id
    )
    if not include_history:
        attrs_query = attrs_query.where(uattrs_t.c.key.not_in(BIG_ATTRS))
    for r in selected(attrs_query, uattrs_t.c.trial_id):
        trial = trials.get(r.trial_id)
        if trial is None:
            continue
        value = loads_json(r.value_json)
        if r.key in KNOWN_ATTRS or r.key in BIG_ATTRS:
            trial[r.key] = value
        else:
            trial["user_attrs"][r.key] = value
    for trial in trials.values():
        if not isinstance(trial["metrics"], dict):
            trial["metrics"] = {}
        if trial["flags"] is None:
            trial["flags"] = []
    # Optuna records the exception of a crashed trial as a system attribute.
    if any(t["state"] == "FAIL" and t["fail_reason"] is None for t in trials.values()):
        for r in selected(
            select(sattrs_t.c.trial_id, sattrs_t.c.value_json).where(
                sattrs_t.c.key == FAIL_REASON_KEY
            ),
            sattrs_t.c.trial_id,
        ):
            trial = trials.get(r.trial_id)
            if trial is not None and trial["fail_reason"] is None:
                trial["fail_reason"] = loads_json(r.value_json)
    return trials


@functools.lru_cache(maxsize=256)
def _distribution(distribution_json: str) -> BaseDistribution:
    from optuna.distributions import json_to_distribution

    return json_to_distribution(distribution_json)


def _external(distribution_json: str, internal: float) -> Any:
    """The value a user sees (a categorical choice, an int) for a stored internal value."""
    try:
        return _distribution(distribution_json).to_external_repr(internal)
    except (ValueError, KeyError, TypeError, IndexError):  # a foreign or damaged row
        return internal


def loads_json(text: str | None) -> Any:
    """A stored attribute's JSON value (the text itself when it is not JSON)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _budget(config: dict[str, Any] | None) -> int | None:
    if not isinstance(config, dict):
        return None
    n = config.get("n_trials")
    return int(n) if isinstance(n, int | float) and not isinstance(n, bool) else None


def objectives_of(config: dict[str, Any] | None, directions: list[str]) -> list[dict[str, Any]]:
    """``[{metric, direction}]``; the metric is ``None`` when the study does not name it."""
    metrics: list[Any] = []
    if isinstance(config, dict) and isinstance(config.get("space"), dict):
        raw = config["space"].get("objective")
        raw = [raw] if isinstance(raw, dict) else raw
        if isinstance(raw, list):
            metrics = [o.get("metric") if isinstance(o, dict) else None for o in raw]
    return [
        {"metric": metrics[i] if i < len(metrics) else None, "direction": d}
        for i, d in enumerate(directions)
    ]


def _iso(value: datetime.datetime | None, schema: StoredSchema) -> str | None:
    """A stored trial time as ISO 8601 in UTC (explicit ``+00:00``), whichever Optuna wrote it."""
    utc = schema.to_utc(value)
    return utc.isoformat() if utc is not None else None
