"""What a sweep stores in its Optuna study, and how a study is created or found again.

A sweep study is an ordinary Optuna study plus one study user attribute,
:data:`sweep.config.STUDY_ATTR`, holding a :class:`sweep.config.StudyConfig`: the search space
and its fingerprint, the data file's path and SHA-256, the split, the budget, the sampler, the
pruner and the heartbeat. Any worker that can reach the storage rebuilds the whole sweep from
it. Each trial carries the user attributes named in :data:`sweep.config.TRIAL_ATTRS`. Never imports
TensorFlow; the sampler and pruner a config asks for are built by :mod:`sweep.run.sampling`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import BASELINE_ATTR
from sweep.config import FINISHED_STATES
from sweep.config import REFERENCE_ATTR
from sweep.config import STUDY_ATTR
from sweep.config import Heartbeat
from sweep.config import StudyConfig
from sweep.errors import StudyConflictError
from sweep.errors import StudyNotFoundError
from sweep.errors import UsageError

if TYPE_CHECKING:
    import optuna
    from sqlalchemy.engine import Connection

_logger = logging.getLogger(__name__)


def create_or_reuse_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    config: StudyConfig,
    *,
    force_new: bool = False,
) -> tuple[str, bool]:
    """Create study ``name`` with ``config``, or reuse an identical existing one.

    An existing study with the same space fingerprint, data hash and split hash is reused (a
    repeated ``launch`` continues it). A different one is refused unless ``force_new``, which
    creates a new study under the next free name (``NAME-2``, ``NAME-3``...) and leaves the old
    untouched.

    Returns:
        The study name used and whether it was newly created.

    Raises:
        StudyConflictError: the name is taken by a different sweep or by a non-sweep study.
    """
    import optuna

    check_study_name(name)
    existing = {s.study_name for s in storage.get_all_studies()}
    if name in existing:
        old = load_config(storage, name)
        same_split = not old.split_sha256 or old.split_sha256 == config.split_sha256
        same = (
            old.space_fingerprint == config.space_fingerprint
            and old.data_sha256 == config.data_sha256
            and same_split
        )
        if same and not force_new:
            return name, False
        if not force_new:
            what = (
                "search space"
                if old.space_fingerprint != config.space_fingerprint
                else "data"
                if old.data_sha256 != config.data_sha256
                else "split"
            )
            raise StudyConflictError(
                f"study {name!r} already exists with a different {what}; choose another --study "
                "name, or pass --force-new to create a new study beside it"
            )
        name = _next_free_name(name, existing)
    directions = [optuna.study.StudyDirection[d.upper()] for d in config.search_space.directions]
    study = optuna.create_study(study_name=name, storage=storage, directions=directions)
    set_metric_names(study, config.search_space.metric_names)
    study_id = storage.get_study_id_from_name(name)
    storage.set_study_user_attr(study_id, STUDY_ATTR, config.to_json())
    return name, True


def enqueue_baseline(storage: optuna.storages.BaseStorage, name: str, config: StudyConfig) -> None:
    """Enqueue ``config``'s baseline (WAITING, marked by :data:`sweep.config.BASELINE_ATTR`).

    Call it once, right after the study is created, so that it is trial 0.
    """
    import optuna

    study = optuna.load_study(study_name=name, storage=storage)
    study.enqueue_trial(config.baseline_params, user_attrs={BASELINE_ATTR: config.baseline})


def load_config(storage: optuna.storages.BaseStorage, name: str) -> StudyConfig:
    """The :class:`StudyConfig` of study ``name``.

    Raises:
        StudyNotFoundError: no such study, or it was not made by `sweep`.
    """
    import optuna

    check_study_name(name)
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        known = sorted(s.study_name for s in storage.get_all_studies())
        hint = f"; studies here: {', '.join(known[:10])}" if known else "; this storage has none"
        raise StudyNotFoundError(f"no study named {name!r}{hint}") from None
    attrs = storage.get_study_user_attrs(study_id)
    if STUDY_ATTR not in attrs:
        raise StudyConflictError(
            f"study {name!r} was not created by sweep (it has no sweep settings); "
            "use another --study name"
        )
    del optuna
    return StudyConfig.from_json(attrs[STUDY_ATTR])


def save_config(storage: optuna.storages.BaseStorage, name: str, config: StudyConfig) -> None:
    """Replace the stored :class:`StudyConfig` (used to raise the budget on resume)."""
    study_id = storage.get_study_id_from_name(name)
    storage.set_study_user_attr(study_id, STUDY_ATTR, config.to_json())


def save_reference(
    storage: optuna.storages.BaseStorage, name: str, reference: dict[str, Any]
) -> None:
    """Store the study's supervised reference (:data:`sweep.config.REFERENCE_ATTR`)."""
    study_id = storage.get_study_id_from_name(name)
    storage.set_study_user_attr(study_id, REFERENCE_ATTR, reference)


def load_reference(storage: optuna.storages.BaseStorage, name: str) -> dict[str, Any] | None:
    """The study's stored supervised reference, or ``None`` (launched with ``--reference none``).

    Raises:
        StudyNotFoundError: no such study.
    """
    load_config(storage, name)  # one clear error for a missing study
    attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(name))
    value = attrs.get(REFERENCE_ATTR)
    return dict(value) if isinstance(value, dict) else None


def check_study_name(name: str) -> None:
    """Reject names that would be confusing in a shell or a table."""
    if not name or len(name) > 200 or not name.isprintable() or name.strip() != name:
        raise UsageError(
            f"invalid study name {name!r}: use 1-200 printable characters without leading or "
            "trailing spaces"
        )


def state_counts(study: optuna.Study) -> Counter[str]:
    """Number of trials per state name (COMPLETE, PRUNED, FAIL, RUNNING, WAITING)."""
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def budget_counts(
    storage: optuna.storages.RDBStorage, study_id: int, conn: Connection | None = None
) -> tuple[Counter[str], int]:
    """The study's trials per state name and its budget (``n_trials``), in two small queries.

    A claim's whole read under the budget lock: no trial is loaded, and the budget is the one
    stored now (``resume --n-trials`` raises it for running workers).

    Args:
        storage: The study's storage.
        study_id: The study.
        conn: A connection to read on (the one holding the budget lock on PostgreSQL); its
            transaction is left open, since it holds the lock. ``None``: a connection of
            ``storage``'s own.

    Raises:
        StudyConflictError: the study has no sweep settings.
    """
    from sweep.store._optuna_schema import study_user_attr_json
    from sweep.store._optuna_schema import trial_state_counts

    def read(c: Connection) -> tuple[Counter[str], Any]:
        return (
            Counter(trial_state_counts(c, study_id)),
            study_user_attr_json(c, study_id, STUDY_ATTR),
        )

    if conn is not None:
        counts, settings = read(conn)  # READ COMMITTED: each statement sees the latest commits
    else:
        with storage.engine.connect() as own:
            counts, settings = read(own)
    if not isinstance(settings, dict) or "n_trials" not in settings:
        raise StudyConflictError(f"study id {study_id} has no sweep settings")
    return counts, int(settings["n_trials"])


def requeue_lost_retries(
    study: optuna.Study, storage: optuna.storages.BaseStorage, heartbeat: Heartbeat
) -> list[int]:
    """Queue the retry of each stale trial whose retry was lost; their numbers.

    Optuna's ``fail_stale_trials`` marks a stale trial FAIL and only then runs the heartbeat
    callback that queues its retry. A process killed between the two (a worker's stale-trial
    watcher is as killable as its trial) leaves a FAIL trial with neither a retry nor a
    ``fail_reason``. Such a trial is retried here with the storage's own callback, so
    the retry attributes are Optuna's; a trial that has used up ``max_retry`` is left alone.
    Only trials failed more than a grace period ago count: a live process between its two steps
    is never doubled.
    Call it under the budget lock, so that two workers never repair the same trial.
    """

    callback = storage.get_heartbeat_stale_trial_callback()  # type: ignore[attr-defined]
    if callback is None:
        return []
    lost = lost_retries(study, heartbeat)
    for trial in lost:
        _logger.warning(
            "trial %d failed stale but its retry was never queued: queueing it", trial.number
        )
        callback(study, trial)
    return [t.number for t in lost]


def lost_retries(study: optuna.Study, heartbeat: Heartbeat) -> list[optuna.trial.FrozenTrial]:
    """The stale failures whose retry was lost (what :func:`requeue_lost_retries` queues).

    Read-only: a worker looks without the budget lock and takes it only when there are some.
    """
    import datetime

    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=heartbeat.grace_period_s)
    return [
        t
        for t in trials
        if t.state.name == "FAIL"
        and "fail_reason" not in t.user_attrs
        and t.number not in retried
        and len(t.system_attrs.get("retry_history", [])) < heartbeat.max_retry
        and t.datetime_complete is not None
        and t.datetime_complete < cutoff  # naive local time, as Optuna's RDBStorage writes it
    ]


def fail_unwatched_trials(
    study: optuna.Study, storage: optuna.storages.RDBStorage, heartbeat: Heartbeat
) -> list[int]:
    """Fail the RUNNING trials that no heartbeat watches and that started a grace period ago.

    Such a trial (from ``study.ask()`` in a plain Optuna script, an older `sweep`, a restored
    backup) would hold its budget slot forever: Optuna's stale check skips trials without a
    heartbeat row. Each one older than the grace period, by the database's clock, gets a
    heartbeat row that is already stale, and Optuna's ``fail_stale_trials`` fails it and queues
    its retry under the study's rules, as for a worker that died. Younger ones are left to
    their owner. Call it under the budget lock, when a worker starts: not on every claim.
    Returns the failed trials' numbers.
    """
    import datetime

    import optuna

    from sweep.store._optuna_schema import add_stale_heartbeat
    from sweep.store._optuna_schema import check_schema
    from sweep.store._optuna_schema import database_utc_now
    from sweep.store._optuna_schema import unwatched_running_trials

    study_id = storage.get_study_id_from_name(study.study_name)
    grace = datetime.timedelta(seconds=heartbeat.grace_period_s)
    with storage.engine.begin() as conn:
        schema = check_schema(conn, storage.engine.url)
        now = database_utc_now(conn)
        stray = []
        for trial_id, number, started in unwatched_running_trials(conn, study_id):
            started_utc = (
                schema.to_utc(started)
                if schema is not None
                else started.replace(tzinfo=datetime.timezone.utc)
            )
            if started_utc is not None and now - started_utc > grace:
                add_stale_heartbeat(conn, trial_id, heartbeat.grace_period_s)
                stray.append(number)
    if stray:
        _logger.warning(
            "trial(s) %s were RUNNING with no heartbeat for over %d s: failing them",
            ", ".join(map(str, stray)),
            heartbeat.grace_period_s,
        )
        optuna.storages.fail_stale_trials(study)
    return stray


def finished_count(counts: Counter[str]) -> int:
    """Trials that count towards the budget (:data:`sweep.config.FINISHED_STATES`)."""
    return sum(counts[state] for state in FINISHED_STATES)


def _next_free_name(name: str, existing: set[str]) -> str:
    index = 2
    while f"{name}-{index}" in existing:
        index += 1
    return f"{name}-{index}"


def set_metric_names(study: optuna.Study, names: Sequence[str]) -> None:
    """Name the objectives (optuna-dashboard shows them instead of ``Objective 0``)."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(names))
