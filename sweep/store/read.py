"""Read-only queries on a study database: one :class:`StudyReader` per command.

A reader opens one engine and one connection, checks the stored schema once (a database of a
schema sweep was not tested against is refused before any other query) and answers every read a
command needs with frozen records (:mod:`sweep.store.records`). It reads Optuna's RDB tables
directly with SQLAlchemy Core, so it answers in about a second on a study of 10,000 trials: the
best trials are chosen by the database (``ORDER BY`` the objective value with ``LIMIT``) or, for
several objectives, from the ``(trial, objective, value)`` rows of COMPLETE trials only;
parameters and user attributes are then loaded for the chosen trials alone. The table
declarations and stored formats live in :mod:`sweep.store._optuna_schema`. Nothing here writes
to the database, creates a SQLite file, or imports TensorFlow, Keras or the training code::

    with StudyReader(url) as reader:
        study = reader.study(name)
        best = reader.best(name, top=5)

The module-level functions (:func:`best_trials`, :func:`list_trials`...) are one-shot
conveniences that open a reader for one answer and return the records' JSON dicts
(``TrialRecord.to_dict``), the schema scripts rely on.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import math
from collections.abc import Iterable
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import BASELINE_ATTR
from sweep.config import BIG_ATTRS
from sweep.config import CONFIRM_ATTR
from sweep.config import CONFIRM_SUFFIX
from sweep.config import REFERENCE_ATTR
from sweep.config import STATES
from sweep.config import STUDY_ATTR
from sweep.config import check as check_option
from sweep.errors import StudyNotFoundError
from sweep.errors import TrialNotFoundError
from sweep.errors import UsageError
from sweep.pareto import pareto_front
from sweep.seeds import RACE_ATTR
from sweep.seeds import SEED_INDEX_ATTR
from sweep.seeds import Configuration
from sweep.seeds import SeedRun
from sweep.seeds import configurations
from sweep.seeds import pooled_sd
from sweep.seeds import ranked
from sweep.seeds import separated
from sweep.seeds import summary as seed_summary
from sweep.store._optuna_schema import FAIL_REASON_KEY
from sweep.store._optuna_schema import StoredSchema
from sweep.store._optuna_schema import check_schema
from sweep.store._optuna_schema import decode_value
from sweep.store._optuna_schema import direction_name
from sweep.store._optuna_schema import infinity_sign
from sweep.store._optuna_schema import tables
from sweep.store._optuna_schema import value_rank
from sweep.store.rdb import read_engine
from sweep.store.rdb import storage_errors
from sweep.store.records import KNOWN_ATTRS
from sweep.store.records import ConfirmationRecord
from sweep.store.records import ReferenceRecord
from sweep.store.records import RunningRecord
from sweep.store.records import StudyRecord
from sweep.store.records import TrialRecord
from sweep.store.records import objectives_of
from sweep.store.urls import mask_url

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine import Engine

#: Trial user attribute: the artifact id of the trial's kept weights (``launch --keep-weights``).
WEIGHTS_ATTR = "weights_artifact"
#: Trial user attribute: the last epoch a running trial finished (1-based).
EPOCH_ATTR = "epoch"
_CHUNK = 500  # ids per IN (...) list; well under SQLite's variable limit


class _Study:
    """A study as found in the database: id, name, directions, sweep config."""

    __slots__ = ("study_id", "name", "directions", "config")

    def __init__(
        self, study_id: int, name: str, directions: tuple[str, ...], config: dict[str, Any] | None
    ) -> None:
        self.study_id = study_id
        self.name = name
        self.directions = directions
        self.config = config


class StudyReader:
    """One read connection to a study database, for one command.

    A context manager: entering opens one engine and one connection and checks the schema;
    leaving closes both. Database errors become one-line :class:`~sweep.errors.StorageError`
    (URL masked). Study lookups are cached for the reader's life.

    Raises:
        StorageError: the database cannot be reached, or is not an Optuna storage.
        SchemaVersionError: an Optuna schema sweep was not tested against.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._schema: StoredSchema | None = None
        self._studies: dict[str, _Study] = {}

    def __enter__(self) -> StudyReader:
        self._engine = read_engine(self.url)
        try:
            with storage_errors(self.url, action="read"):
                self._conn = self._engine.connect()
                self._schema = check_schema(self._conn, self.url)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and dispose of the engine (safe to call twice)."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("StudyReader used outside its `with` block")
        return self._conn

    @property
    def schema(self) -> StoredSchema | None:
        """How the database stores times; ``None``: it holds no Optuna tables yet."""
        return self._schema

    # --- studies ------------------------------------------------------------------------------

    def studies(self) -> list[StudyRecord]:
        """Every study in the storage, in creation order (``[]`` for an empty database)."""
        from sqlalchemy import func
        from sqlalchemy import select

        if self._schema is None:
            return []
        m = tables()
        studies_t, trials_t, attrs_t, dir_t = (
            m.studies,
            m.trials,
            m.study_user_attributes,
            m.study_directions,
        )
        with self._errors():
            conn = self.conn
            names = {
                row.study_id: row.study_name
                for row in conn.execute(
                    select(studies_t.c.study_id, studies_t.c.study_name).order_by(
                        studies_t.c.study_id
                    )
                )
            }
            directions: dict[int, list[str]] = {sid: [] for sid in names}
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
                conn.execute(  # type: ignore[arg-type]
                    select(trials_t.c.study_id, func.min(trials_t.c.datetime_start)).group_by(
                        trials_t.c.study_id
                    )
                ).all()
            )
            configs: dict[int, Any] = {}
            confirms: dict[int, Any] = {}
            for row in conn.execute(
                select(attrs_t.c.study_id, attrs_t.c.key, attrs_t.c.value_json).where(
                    attrs_t.c.key.in_([STUDY_ATTR, CONFIRM_ATTR])
                )
            ):
                value = loads_json(row.value_json)
                if row.key == STUDY_ATTR:
                    configs[row.study_id] = value if isinstance(value, dict) else None
                else:  # companion studies of `sweep confirm`: the study they confirm
                    confirms[row.study_id] = (value if isinstance(value, dict) else {}).get(
                        "source"
                    )
        return [
            StudyRecord(
                name=name,
                directions=tuple(directions.get(sid, [])),
                config=configs.get(sid),
                counts=counts[sid],
                created=self._iso(created.get(sid)),
                confirms=confirms.get(sid),
            )
            for sid, name in names.items()
        ]

    def study_names(self) -> list[str]:
        """The names of every study in the storage, in creation order (no other reads)."""
        from sqlalchemy import select

        if self._schema is None:
            return []
        studies_t = tables().studies
        with self._errors():
            return list(
                self.conn.execute(
                    select(studies_t.c.study_name).order_by(studies_t.c.study_id)
                ).scalars()
            )

    def study(self, name: str) -> StudyRecord:
        """Study ``name`` with its config, trial counts, first start and last completion.

        Raises:
            StudyNotFoundError: no study of that name (the message lists the existing ones).
        """
        from sqlalchemy import func
        from sqlalchemy import select

        study = self._find(name)
        trials_t = tables().trials
        with self._errors():
            counts = dict.fromkeys(STATES, 0)
            for state, count in self.conn.execute(
                select(trials_t.c.state, func.count())
                .where(trials_t.c.study_id == study.study_id)
                .group_by(trials_t.c.state)
            ):
                counts[state] = int(count)
            first_start = self.conn.execute(
                select(func.min(trials_t.c.datetime_start)).where(
                    trials_t.c.study_id == study.study_id
                )
            ).scalar()
            last_complete = self.conn.execute(
                select(func.max(trials_t.c.datetime_complete)).where(
                    trials_t.c.study_id == study.study_id,
                    trials_t.c.state.in_(("COMPLETE", "PRUNED")),
                )
            ).scalar()
            seeds: dict[Any, int] = {}
            if self._races(study):
                uattrs_t = tables().trial_user_attributes
                seeds = {
                    getattr(state, "name", state): int(count)
                    for state, count in self.conn.execute(
                        select(trials_t.c.state, func.count())
                        .select_from(
                            trials_t.join(uattrs_t, uattrs_t.c.trial_id == trials_t.c.trial_id)
                        )
                        .where(trials_t.c.study_id == study.study_id, uattrs_t.c.key == RACE_ATTR)
                        .group_by(trials_t.c.state)
                    ).all()
                }
            confirms = None
            raw = self._study_attr(study, CONFIRM_ATTR)
            if isinstance(raw, dict):
                confirms = raw.get("source")
        return StudyRecord(
            name=study.name,
            directions=study.directions,
            config=study.config,
            counts=counts,
            created=self._iso(first_start),
            last_completed=self._iso(last_complete),
            confirms=confirms,
            extra_seeds=sum(seeds.values()),
            extra_seeds_finished=seeds.get("COMPLETE", 0) + seeds.get("PRUNED", 0),
        )

    def config(self, name: str) -> StudyRecord:
        """Study ``name`` without its counts (one cached lookup: name, directions, config)."""
        study = self._find(name)
        return StudyRecord(name=study.name, directions=study.directions, config=study.config)

    # --- trials -------------------------------------------------------------------------------

    def trials(
        self,
        name: str,
        states: Sequence[str] | None = None,
        *,
        numbers: Sequence[int] | None = None,
        history: bool = False,
    ) -> list[TrialRecord]:
        """Trials of study ``name``: every one in number order, only those in ``states``
        (case-insensitive), or those of ``numbers`` in that order (unknown numbers left out).

        Args:
            history: Also read the ``history`` and ``diagnostics`` user attributes.

        Raises:
            UsageError: an unknown state name.
            StudyNotFoundError: no study of that name.
        """
        from sqlalchemy import select

        wanted = None
        if states is not None:
            wanted = []
            for state in states:
                if str(state).upper() not in STATES:
                    raise UsageError(
                        f"unknown trial state {state!r}; choose from {', '.join(STATES)}"
                    )
                wanted.append(str(state).upper())
        study = self._find(name)
        if numbers is None:
            loaded = self._load(study, states=wanted, history=history)
            return sorted(loaded.values(), key=lambda t: t.number)
        if not numbers:
            return []
        trials_t = tables().trials
        with self._errors():
            ids = {
                row.number: row.trial_id
                for row in self.conn.execute(
                    select(trials_t.c.trial_id, trials_t.c.number).where(
                        trials_t.c.study_id == study.study_id,
                        trials_t.c.number.in_(list(numbers)),
                    )
                )
            }
        loaded = self._load(study, ids=[ids[n] for n in numbers if n in ids], history=history)
        by_number = {t.number: t for t in loaded.values()}
        return [by_number[n] for n in numbers if n in by_number]

    def trial(self, name: str, number: int, *, history: bool = True) -> TrialRecord:
        """Trial ``number`` of study ``name``, by default with its history and diagnostics.

        Raises:
            TrialNotFoundError: the study has no trial of that number (the message gives the
                range).
            StudyNotFoundError: no study of that name.
        """
        from sqlalchemy import func
        from sqlalchemy import select

        study = self._find(name)
        trials_t = tables().trials
        with self._errors():
            trial_id = self.conn.execute(
                select(trials_t.c.trial_id).where(
                    trials_t.c.study_id == study.study_id, trials_t.c.number == int(number)
                )
            ).scalar()
            if trial_id is None:
                last = self.conn.execute(
                    select(func.max(trials_t.c.number)).where(
                        trials_t.c.study_id == study.study_id
                    )
                ).scalar()
                have = f"trials 0-{last}" if last is not None else "no trials"
                raise TrialNotFoundError(f"study {name!r} has no trial {number} (it has {have})")
        return self._load(study, ids=[trial_id], history=history)[trial_id]

    def best(self, name: str, top: int = 5, *, history: bool = False) -> list[TrialRecord]:
        """The best COMPLETE trials of study ``name``, best first.

        One objective: the best ``top`` trials in the study's direction (ties by number).
        Several: the whole Pareto set, ``top`` ignored, sorted by the first objective. Only the
        selected trials' parameters and attributes are read.

        Raises:
            UsageError: ``top`` is below 1.
            StudyNotFoundError: no study of that name.
        """
        check_option("top", top)
        study = self._find(name)
        if self._races(study):
            return self._best_by_seed_mean(study, top, history=history)
        with self._errors():
            if len(study.directions) <= 1:
                ids = [row[0] for row in self._top_single(study, top)]
            else:
                ids = self._pareto_ids(study)
        trials = self._load(study, ids=ids, history=history)
        return [trials[i] for i in ids if i in trials]

    @staticmethod
    def _races(study: _Study) -> bool:
        return len(study.directions) <= 1 and (study.config or {}).get("max_seeds", 1) > 1

    def _configurations(self, study: _Study) -> tuple[dict[int, int], list[Configuration]]:
        """A racing study's configurations, best seed mean first, and their trial ids by number."""
        from sqlalchemy import select

        m = tables()
        trials_t, values_t, uattrs_t = m.trials, m.trial_values, m.trial_user_attributes
        with self._errors():
            rows = self.conn.execute(
                select(
                    trials_t.c.trial_id,
                    trials_t.c.number,
                    trials_t.c.state,
                    values_t.c.value,
                    values_t.c.value_type,
                )
                .select_from(
                    trials_t.outerjoin(
                        values_t,
                        (values_t.c.trial_id == trials_t.c.trial_id) & (values_t.c.objective == 0),
                    )
                )
                .where(trials_t.c.study_id == study.study_id)
            ).all()
            marks = self.conn.execute(
                select(uattrs_t.c.trial_id, uattrs_t.c.key, uattrs_t.c.value_json)
                .select_from(uattrs_t.join(trials_t, uattrs_t.c.trial_id == trials_t.c.trial_id))
                .where(
                    trials_t.c.study_id == study.study_id,
                    uattrs_t.c.key.in_((RACE_ATTR, SEED_INDEX_ATTR)),
                )
            ).all()
        attrs: dict[int, dict[str, Any]] = {}
        for trial_id, key, value_json in marks:
            attrs.setdefault(trial_id, {})[key] = loads_json(value_json)
        ids = {}
        runs = []
        for trial_id, number, state, value, value_type in rows:
            state = getattr(state, "name", state)
            value = decode_value(value, value_type) if value_type is not None else None
            mine = attrs.get(trial_id, {})
            race_of = mine.get(RACE_ATTR)
            if race_of is None:
                ids[number] = trial_id
            runs.append(
                SeedRun(
                    number=number,
                    state=str(state),
                    value=value,
                    race_of=int(race_of) if race_of is not None else None,
                    seed_index=int(mine.get(SEED_INDEX_ATTR, 0)),
                )
            )
        maximize = bool(study.directions) and study.directions[0] == "maximize"
        return ids, ranked(configurations(runs), maximize=maximize)

    def _best_by_seed_mean(self, study: _Study, top: int, *, history: bool) -> list[TrialRecord]:
        """A racing study's best configurations by seed mean, each with its seeds' summary."""
        ids, order = self._configurations(study)
        chosen = order[:top]
        loaded = self._load(study, ids=[ids[c.number] for c in chosen], history=history)
        sd = pooled_sd(order)
        maximize = bool(study.directions) and study.directions[0] == "maximize"
        out = []
        for rank, c in enumerate(chosen):
            if ids[c.number] not in loaded:
                continue
            after = order[rank + 1] if rank + 1 < len(order) else None
            seeds = {
                **seed_summary(c),
                "seed_sd": sd,
                "ahead_of_next": (
                    None if after is None else separated(c, after, sd, maximize=maximize)
                ),
            }
            out.append(dataclasses.replace(loaded[ids[c.number]], seeds=seeds))
        return out

    def top_values(self, name: str, k: int) -> list[tuple[int, float]]:
        """``(number, value)`` of the best ``k`` COMPLETE trials by the first objective (a
        racing study: configurations by seed mean)."""
        study = self._find(name)
        if self._races(study):
            return [(c.number, c.mean) for c in self._configurations(study)[1][:k]]
        with self._errors():
            return [(number, value) for _, number, value in self._top_single(study, k)]

    def baseline(self, name: str, *, history: bool = False) -> TrialRecord | None:
        """The study's baseline trial (``launch --baseline``) in any state, or ``None``.

        One indexed query finds it by its user attribute :data:`sweep.config.BASELINE_ATTR`;
        none is made for a study launched without a baseline.
        """
        from sqlalchemy import select

        study = self._find(name)
        if not (study.config or {}).get("baseline"):
            return None
        m = tables()
        trials_t, uattrs_t = m.trials, m.trial_user_attributes
        with self._errors():
            trial_id = self.conn.execute(
                select(trials_t.c.trial_id)
                .select_from(trials_t.join(uattrs_t, uattrs_t.c.trial_id == trials_t.c.trial_id))
                .where(trials_t.c.study_id == study.study_id, uattrs_t.c.key == BASELINE_ATTR)
                .order_by(trials_t.c.number)
                .limit(1)
            ).scalar()
        if trial_id is None:
            return None
        return self._load(study, ids=[trial_id], history=history).get(trial_id)

    def reference(self, name: str) -> ReferenceRecord | None:
        """The study's supervised reference (:data:`sweep.config.REFERENCE_ATTR`), or ``None``."""
        study = self._find(name)
        with self._errors():
            stored = self._study_attr(study, REFERENCE_ATTR)
        if not isinstance(stored, dict):
            return None
        raw_metrics = stored.get("metrics")
        metrics: dict[str, Any] = raw_metrics if isinstance(raw_metrics, dict) else {}
        objectives = objectives_of(study.config, study.directions)
        return ReferenceRecord(
            label=str(stored.get("label") or "logistic"),
            metrics=metrics,
            values=tuple(metrics.get(o["metric"]) for o in objectives) if metrics else None,
            seconds=stored.get("seconds"),
            error=stored.get("error"),
            details={k: v for k, v in stored.items() if k not in ("metrics", "error")},
        )

    def epoch_values(self, name: str) -> dict[int, tuple[str, tuple[tuple[int, float], ...]]]:
        """Each finished trial's objective per epoch, as reported to the pruner (Optuna's
        intermediate values): ``{number: (state, ((step, value), ...))}``, steps in order;
        trials that reported nothing are left out."""
        from sqlalchemy import select

        study = self._find(name)
        m = tables()
        trials_t, steps_t = m.trials, m.trial_intermediate_values
        out: dict[int, tuple[str, list[tuple[int, float]]]] = {}
        with self._errors():
            rows = self.conn.execute(
                select(
                    trials_t.c.number,
                    trials_t.c.state,
                    steps_t.c.step,
                    steps_t.c.intermediate_value,
                    steps_t.c.intermediate_value_type,
                )
                .select_from(steps_t.join(trials_t, trials_t.c.trial_id == steps_t.c.trial_id))
                .where(
                    trials_t.c.study_id == study.study_id,
                    trials_t.c.state.in_(["COMPLETE", "PRUNED"]),
                )
                .order_by(trials_t.c.number, steps_t.c.step)
            )
            for r in rows:
                state = getattr(r.state, "name", str(r.state))
                value = decode_value(r.intermediate_value, r.intermediate_value_type)
                out.setdefault(r.number, (state, []))[1].append((int(r.step), value))
        return {n: (state, tuple(points)) for n, (state, points) in out.items()}

    def confirmations(self, name: str) -> ConfirmationRecord | None:
        """The confirmation runs of study ``name`` (its companion study), or ``None``.

        Raises:
            StudyNotFoundError: no study ``name``.
        """
        self._find(name)
        companion = name + CONFIRM_SUFFIX
        try:
            study = self._find(companion)
        except StudyNotFoundError:
            return None
        with self._errors():
            stored = self._study_attr(study, CONFIRM_ATTR)
        if not isinstance(stored, dict) or stored.get("source") != name:
            return None
        trials = sorted(self._load(study).values(), key=lambda t: t.number)
        jobs = tuple(j for j in stored.get("jobs") or [] if isinstance(j, dict))
        return ConfirmationRecord(study=name, companion=companion, jobs=jobs, trials=tuple(trials))

    def running(self, name: str) -> list[RunningRecord]:
        """The RUNNING trials of study ``name``: start, heartbeat age and epoch progress.

        Heartbeats are written by the database's own ``now()``: their age is measured against
        it, in the database's clock and time zone, never this machine's.
        """
        from sqlalchemy import func
        from sqlalchemy import select

        study = self._find(name)
        m = tables()
        trials_t, beats_t, uattrs_t = m.trials, m.trial_heartbeats, m.trial_user_attributes
        with self._errors():
            rows = self.conn.execute(
                select(trials_t.c.number, trials_t.c.datetime_start, beats_t.c.heartbeat)
                .select_from(
                    trials_t.outerjoin(beats_t, beats_t.c.trial_id == trials_t.c.trial_id)
                )
                .where(trials_t.c.study_id == study.study_id, trials_t.c.state == "RUNNING")
                .order_by(trials_t.c.number)
            ).all()
            if not rows:
                return []
            now = None
            if any(row.heartbeat is not None for row in rows):
                now = self.conn.execute(select(func.now())).scalar()
                now = now.replace(tzinfo=None) if now is not None else None
            progress: dict[int, dict[str, Any]] = {}
            for r in self.conn.execute(
                select(trials_t.c.number, uattrs_t.c.key, uattrs_t.c.value_json)
                .select_from(trials_t.join(uattrs_t, uattrs_t.c.trial_id == trials_t.c.trial_id))
                .where(
                    trials_t.c.study_id == study.study_id,
                    trials_t.c.state == "RUNNING",
                    uattrs_t.c.key.in_([EPOCH_ATTR, "params_full"]),
                )
            ):
                entry = progress.setdefault(r.number, {})
                value = loads_json(r.value_json)
                if r.key == EPOCH_ATTR:
                    entry["epoch"] = value
                elif isinstance(value, dict):
                    entry["epochs"] = value.get("epochs")
        return [
            RunningRecord(
                number=row.number,
                started=self._iso(row.datetime_start),
                heartbeat_age_s=(
                    max(0.0, (now - row.heartbeat).total_seconds())
                    if now is not None and row.heartbeat is not None
                    else None
                ),
                epoch=progress.get(row.number, {}).get("epoch"),
                epochs=progress.get(row.number, {}).get("epochs"),
            )
            for row in rows
        ]

    def pareto_size(self, name: str) -> int:
        """The size of the Pareto set of COMPLETE trials (several objectives)."""
        study = self._find(name)
        with self._errors():
            return len(self._pareto_ids(study))

    def weight_holders(self, name: str) -> list[tuple[int, str, str]]:
        """``(number, state, artifact_id)`` of every trial that ever stored kept weights."""
        from sqlalchemy import select

        study = self._find(name)
        m = tables()
        trials_t, uattrs_t = m.trials, m.trial_user_attributes
        with self._errors():
            rows = self.conn.execute(
                select(trials_t.c.number, trials_t.c.state, uattrs_t.c.value_json)
                .select_from(trials_t.join(uattrs_t, uattrs_t.c.trial_id == trials_t.c.trial_id))
                .where(trials_t.c.study_id == study.study_id, uattrs_t.c.key == WEIGHTS_ATTR)
                .order_by(trials_t.c.number)
            ).all()
        return [(r.number, str(r.state), str(json.loads(r.value_json))) for r in rows]

    def optuna_study(self, name: str) -> optuna.Study:
        """An in-memory ``optuna.Study`` holding study ``name``'s COMPLETE trials (values,
        parameters and their distributions), for Optuna's plots; read on this connection."""
        import optuna
        from sqlalchemy import select

        study = self._find(name)
        m = tables()
        trials_t, values_t, params_t = m.trials, m.trial_values, m.trial_params
        complete = (trials_t.c.study_id == study.study_id) & (trials_t.c.state == "COMPLETE")
        with self._errors():
            numbers: dict[int, int] = dict(
                self.conn.execute(  # type: ignore[arg-type]
                    select(trials_t.c.trial_id, trials_t.c.number)
                    .where(complete)
                    .order_by(trials_t.c.number)
                ).all()
            )
            values: dict[int, dict[int, float]] = {}
            for r in self.conn.execute(
                select(
                    values_t.c.trial_id,
                    values_t.c.objective,
                    values_t.c.value,
                    values_t.c.value_type,
                )
                .select_from(values_t.join(trials_t, trials_t.c.trial_id == values_t.c.trial_id))
                .where(complete)
            ):
                values.setdefault(r.trial_id, {})[r.objective] = decode_value(
                    r.value, r.value_type
                )
            params: dict[int, dict[str, Any]] = {}
            dists: dict[int, dict[str, BaseDistribution]] = {}
            for r in self.conn.execute(
                select(
                    params_t.c.trial_id,
                    params_t.c.param_name,
                    params_t.c.param_value,
                    params_t.c.distribution_json,
                )
                .select_from(params_t.join(trials_t, trials_t.c.trial_id == params_t.c.trial_id))
                .where(complete)
                .order_by(params_t.c.param_id)
            ):
                dist = _distribution(r.distribution_json)
                params.setdefault(r.trial_id, {})[r.param_name] = dist.to_external_repr(
                    r.param_value
                )
                dists.setdefault(r.trial_id, {})[r.param_name] = dist
        directions = [optuna.study.StudyDirection[d.upper()] for d in study.directions]
        out = optuna.create_study(directions=directions or None, study_name=study.name)
        frozen = []
        for trial_id, number in numbers.items():
            by_objective = values.get(trial_id, {})
            if len(by_objective) != len(directions):
                continue
            trial = optuna.trial.create_trial(
                state=optuna.trial.TrialState.COMPLETE,
                values=[by_objective[k] for k in sorted(by_objective)],
                params=params.get(trial_id, {}),
                distributions=dists.get(trial_id, {}),
            )
            trial.number = number
            frozen.append(trial)
        out.add_trials(frozen)
        return out

    # --- internals ----------------------------------------------------------------------------

    def _errors(self) -> Any:
        return storage_errors(self.url, action="read")

    def _iso(self, value: datetime.datetime | None) -> str | None:
        """A stored trial time as ISO 8601 in UTC (explicit ``+00:00``)."""
        if self._schema is None:
            return None
        utc = self._schema.to_utc(value)
        return utc.isoformat() if utc is not None else None

    def _study_attr(self, study: _Study, key: str) -> Any:
        from sqlalchemy import select

        attrs_t = tables().study_user_attributes
        raw = self.conn.execute(
            select(attrs_t.c.value_json).where(
                attrs_t.c.study_id == study.study_id, attrs_t.c.key == key
            )
        ).scalar()
        return loads_json(raw) if raw is not None else None

    def _find(self, name: str) -> _Study:
        """Study ``name`` (cached).

        Raises:
            StudyNotFoundError: no such study (or no Optuna tables at all).
        """
        from sqlalchemy import select

        cached = self._studies.get(name)
        if cached is not None:
            return cached
        if self._schema is None:
            raise StudyNotFoundError(
                f"no study named {name!r} in {mask_url(self.url)}; it holds no studies"
            )
        m = tables()
        studies_t = m.studies
        with self._errors():
            conn = self.conn
            study_id = conn.execute(
                select(studies_t.c.study_id).where(studies_t.c.study_name == name)
            ).scalar()
            if study_id is None:
                known = sorted(conn.execute(select(studies_t.c.study_name)).scalars())
                more = f" (and {len(known) - 20} more)" if len(known) > 20 else ""
                shown = ", ".join(known[:20]) + more
                hint = f"; studies there: {shown}" if known else "; it holds no studies"
                raise StudyNotFoundError(f"no study named {name!r} in {mask_url(self.url)}{hint}")
            dir_t = m.study_directions
            directions = tuple(
                direction_name(d)
                for d in conn.execute(
                    select(dir_t.c.direction)
                    .where(dir_t.c.study_id == study_id)
                    .order_by(dir_t.c.objective)
                ).scalars()
            )
            study = _Study(study_id, name, directions, None)
            config = self._study_attr(study, STUDY_ATTR)
        study.config = config if isinstance(config, dict) else None
        self._studies[name] = study
        return study

    def _top_single(self, study: _Study, limit: int) -> list[tuple[int, int, float]]:
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
        rows = self.conn.execute(
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

    def _pareto_ids(self, study: _Study) -> list[int]:
        """Ids of the Pareto set of COMPLETE trials, sorted by the first objective."""
        from sqlalchemy import select

        m = tables()
        trials_t = m.trials
        values_t = m.trial_values
        n_obj = len(study.directions)
        # The infinity sign as a plain integer: no enum decoding for 10,000s of rows.
        inf = infinity_sign(values_t)
        rows = self.conn.execute(
            select(
                values_t.c.trial_id, trials_t.c.number, values_t.c.objective, values_t.c.value, inf
            )
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
        front = [ids[i] for i in pareto_front([losses[tid] for tid in ids])]
        front.sort(key=lambda tid: (losses[tid][0], numbers[tid]))
        return front

    def _load(
        self,
        study: _Study,
        *,
        ids: Sequence[int] | None = None,
        states: Sequence[str] | None = None,
        history: bool = False,
    ) -> dict[int, TrialRecord]:
        """Trial records keyed by trial id: the given ``ids``, or every trial (in ``states``)."""
        if ids is not None and not ids:
            return {}
        with self._errors():
            rows = _trial_rows(self.conn, study.study_id, ids, states, history, self._iso)
        return {tid: _record(row, history) for tid, row in rows.items()}


def _trial_rows(
    conn: Connection,
    study_id: int,
    ids: Sequence[int] | None,
    states: Sequence[str] | None,
    include_history: bool,
    iso: Any,
) -> dict[int, dict[str, Any]]:
    """Raw trial fields keyed by trial id (see :func:`_record`)."""
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
            "params": {},
            "started": iso(r.datetime_start),
            "completed": iso(r.datetime_complete),
            "user_attrs": {},
        }
    values: dict[int, dict[int, float]] = {}
    for r in selected(
        select(values_t.c.trial_id, values_t.c.objective, values_t.c.value, values_t.c.value_type),
        values_t.c.trial_id,
    ):
        values.setdefault(r.trial_id, {})[r.objective] = decode_value(r.value, r.value_type)
    for tid, by_objective in values.items():
        if tid in trials:
            trials[tid]["values"] = tuple(by_objective[k] for k in sorted(by_objective))
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
        elif r.key == BASELINE_ATTR:
            trial["baseline"] = value
        else:
            trial["user_attrs"][r.key] = value
    # Optuna records the exception of a crashed trial as a system attribute.
    if any(t["state"] == "FAIL" and t.get("fail_reason") is None for t in trials.values()):
        for r in selected(
            select(sattrs_t.c.trial_id, sattrs_t.c.value_json).where(
                sattrs_t.c.key == FAIL_REASON_KEY
            ),
            sattrs_t.c.trial_id,
        ):
            trial = trials.get(r.trial_id)
            if trial is not None and trial.get("fail_reason") is None:
                trial["fail_reason"] = loads_json(r.value_json)
    return trials


def _record(row: dict[str, Any], detailed: bool) -> TrialRecord:
    metrics = row.get("metrics")
    flags = row.get("flags")
    if flags is None:
        flags = []
    return TrialRecord(
        number=row["number"],
        state=row["state"],
        values=row.get("values"),
        params=row["params"],
        params_full=row.get("params_full"),
        metrics=metrics if isinstance(metrics, dict) else {},
        flags=tuple(flags)
        if isinstance(flags, list | tuple)
        else (() if flags is None else (flags,)),
        seconds=row.get("seconds"),
        epochs_run=row.get("epochs_run"),
        elbo_beta=row.get("elbo_beta"),
        worker=row.get("worker"),
        fail_reason=row.get("fail_reason"),
        baseline=row.get("baseline"),
        started=row["started"],
        completed=row["completed"],
        user_attrs=row["user_attrs"],
        history=row.get("history"),
        diagnostics=row.get("diagnostics"),
        figure_sample=row.get("figure_sample"),
        detailed=detailed,
    )


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


# --- one-shot conveniences (one reader, one answer, JSON dicts) -------------------------------


def only_study(url: str) -> str:
    """The storage's one study, for a command given no NAME (confirmation companions apart).

    Raises:
        UsageError: the storage holds no study, or several (they are listed).
    """
    with StudyReader(url) as reader:
        names = set(reader.study_names())
    studies = sorted(
        n for n in names if not (n.endswith(CONFIRM_SUFFIX) and n[: -len(CONFIRM_SUFFIX)] in names)
    )
    if len(studies) == 1:
        return studies[0]
    if not studies:
        raise UsageError(f"no study in {mask_url(url)}: launch one with `sweep launch`")
    more = f" (and {len(studies) - 20} more)" if len(studies) > 20 else ""
    shown = ", ".join(studies[:20]) + more
    raise UsageError(f"{len(studies)} studies in {mask_url(url)} ({shown}): name one")


def list_studies(url: str) -> list[dict[str, Any]]:
    """Every study in the storage as ``sweep studies --format json`` entries."""
    with StudyReader(url) as reader:
        return [s.to_dict() for s in reader.studies()]


def best_trials(
    url: str, name: str, top: int = 5, *, include_history: bool = False
) -> list[dict[str, Any]]:
    """:meth:`StudyReader.best` as trial dicts."""
    with StudyReader(url) as reader:
        return [t.to_dict() for t in reader.best(name, top, history=include_history)]


def baseline_trial(url: str, name: str, *, include_history: bool = False) -> dict[str, Any] | None:
    """:meth:`StudyReader.baseline` as a trial dict, or ``None``."""
    with StudyReader(url) as reader:
        trial = reader.baseline(name, history=include_history)
    return trial.to_dict() if trial is not None else None


def reference_row(url: str, name: str) -> dict[str, Any] | None:
    """:meth:`StudyReader.reference` as a ``best`` column (``ReferenceRecord.to_dict``)."""
    with StudyReader(url) as reader:
        reference = reader.reference(name)
    return reference.to_dict() if reference is not None else None


def list_trials(
    url: str, name: str, states: Sequence[str] | None = None, *, include_history: bool = False
) -> list[dict[str, Any]]:
    """:meth:`StudyReader.trials` as trial dicts, in number order."""
    with StudyReader(url) as reader:
        return [t.to_dict() for t in reader.trials(name, states, history=include_history)]


def trials_by_number(url: str, name: str, numbers: Sequence[int]) -> list[dict[str, Any]]:
    """Trial dicts of ``numbers``, in that order; numbers that do not exist are left out."""
    with StudyReader(url) as reader:
        return [t.to_dict() for t in reader.trials(name, numbers=numbers)]


def study_config(url: str, name: str) -> dict[str, Any]:
    """The stored :class:`sweep.config.StudyConfig` JSON plus ``name`` and ``directions``."""
    with StudyReader(url) as reader:
        return reader.config(name).config_dict()


def trial_by_number(
    url: str, name: str, number: int, *, include_history: bool = True
) -> dict[str, Any]:
    """:meth:`StudyReader.trial` as a trial dict.

    Raises:
        UsageError: the study has no trial of that number (the message gives the range).
    """
    with StudyReader(url) as reader:
        try:
            return reader.trial(name, number, history=include_history).to_dict()
        except TrialNotFoundError as e:
            raise UsageError(str(e)) from None


__all__ = [
    "EPOCH_ATTR",
    "WEIGHTS_ATTR",
    "StudyReader",
    "baseline_trial",
    "best_trials",
    "list_studies",
    "list_trials",
    "loads_json",
    "reference_row",
    "study_config",
    "trial_by_number",
    "trials_by_number",
]
