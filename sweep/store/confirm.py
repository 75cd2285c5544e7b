"""Confirmation runs in the database: the companion study, its jobs, and who runs which.

``sweep confirm NAME`` re-runs the best trials of study ``NAME`` (and its baseline) with fresh
seeds. Those runs must not feed ``NAME``'s sampler, so they live in a **companion study**,
``NAME.confirm``, in the same storage: an ordinary sweep study (its :class:`StudyConfig` is
``NAME``'s, with the budget set to the number of jobs, no pruner and no samples), so workers,
heartbeats, the stale-trial retry, the budget lock and ``resume`` work on it unchanged. One more
study user attribute, :data:`CONFIRM_ATTR`, holds its jobs: one per (source trial, seed), each
with the source trial's full parameters and the new seed.

Who runs which job is decided under the companion's budget lock when a worker starts a trial
(:func:`assign_job`): a trial re-queued after a stale heartbeat keeps its job; a new trial takes
the first job that has no COMPLETE, RUNNING or WAITING trial. So every job runs, and none is
COMPLETE twice, whatever kills or restarts happen. Never imports TensorFlow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import CONFIRM_ATTR
from sweep.config import STUDY_ATTR
from sweep.config import StudyConfig
from sweep.config import check as check_option
from sweep.errors import StudyConflictError
from sweep.errors import TrialFailed
from sweep.errors import UsageError
from sweep.params import TrialParams
from sweep.store.lock import budget_lock
from sweep.store.study import finished_count
from sweep.store.study import load_config
from sweep.store.study import set_metric_names
from sweep.store.study import state_counts

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)

#: The companion study of ``NAME`` is ``NAME`` + this suffix.
CONFIRM_SUFFIX = ".confirm"
#: Trial user attributes of a confirmation run.
JOB_ATTR = "confirm_job"  # the job's key, "SOURCE:SEED_INDEX"
SOURCE_ATTR = "confirm_source"  # the source trial's number in NAME
SEED_ATTR = "confirm_seed"  # the seed it ran with
#: Seed index i runs with seed SEED_BASE + i, the same for every confirmed trial (paired runs).
SEED_BASE = 1000
#: The states in which a job counts as taken (run, running or queued).
_TAKEN = ("COMPLETE", "RUNNING", "WAITING")


def companion_name(name: str) -> str:
    """The companion study of study ``name``."""
    return f"{name}{CONFIRM_SUFFIX}"


@dataclass(frozen=True)
class ConfirmJob:
    """One confirmation run: a source trial's parameters with a fresh seed.

    Attributes:
        source: The source trial's number in the main study.
        seed_index: Which of the fresh seeds (0, 1, ...).
        params: Every :class:`sweep.params.TrialParams` value, ``seed`` replaced.
        baseline: The baseline's name when the source is the study's baseline trial.
    """

    source: int
    seed_index: int
    params: dict[str, Any]
    baseline: str | None = None

    @property
    def key(self) -> str:
        """``"SOURCE:SEED_INDEX"``, unique within a companion study."""
        return f"{self.source}:{self.seed_index}"

    @property
    def seed(self) -> int:
        return int(self.params["seed"])

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "source": self.source,
            "seed_index": self.seed_index,
            "seed": self.seed,
            "baseline": self.baseline,
            "params": self.params,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfirmJob:
        return cls(
            source=int(data["source"]),
            seed_index=int(data["seed_index"]),
            params=dict(data["params"]),
            baseline=data.get("baseline"),
        )


def confirm_seed(seed_index: int) -> int:
    """The seed of seed index ``seed_index`` (the same for every confirmed trial)."""
    return SEED_BASE + seed_index


def plan_jobs(
    url: str, name: str, top: int, seeds: int, overrides: Mapping[str, Any] | None = None
) -> tuple[StudyConfig, list[ConfirmJob]]:
    """The jobs that confirm study ``name``: its ``top`` best trials and baseline, ``seeds`` each.

    ``overrides`` (``confirm --set``, e.g. ``{"epochs": 2}``) replace those parameters in every
    job, baseline included, so the confirmed trials stay comparable with each other.

    One objective: the ``top`` best COMPLETE trials. Several: the Pareto set, sorted by the first
    objective; when it has more than ``top`` trials, ``top`` of them evenly spread along it (both
    ends included), so the confirmed set covers the trade-off. The baseline trial (user
    attribute ``baseline``) is always added, whatever its state.

    Raises:
        OptionError: ``top`` or ``seeds`` is below 1.
        ParamError: an override is not a valid parameter value.
        UsageError: overrides given for a KerasTuner hypermodel study.
        StudyNotFoundError: no such study.
        StudyConflictError: ``name`` is itself a companion study, or has no COMPLETE trial.
    """
    from sweep.store.rdb import open_storage
    from sweep.store.read import baseline_trial
    from sweep.store.read import best_trials

    check_option("confirm.top", top)
    check_option("confirm.seeds", seeds)
    storage = open_storage(url)
    try:
        config = load_config(storage, name)
        attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(name))
    finally:
        storage.engine.dispose()
    if CONFIRM_ATTR in attrs:
        source = attrs[CONFIRM_ATTR].get("source")
        raise StudyConflictError(
            f"study {name!r} holds confirmation runs of {source!r}; confirm {source!r} instead"
        )
    if overrides and config.hypermodel is not None:
        raise UsageError(
            f"confirm --set: study {name!r} runs a KerasTuner hypermodel, whose runs keep "
            "their trials' values; --set applies to the built-in VAE"
        )
    multi = len(config.search_space.directions) > 1
    best = best_trials(url, name, top)
    if not best:
        raise StudyConflictError(
            f"study {name!r} has no COMPLETE trial to confirm; run it first (`sweep resume "
            f"{name}`)"
        )
    if multi and len(best) > top:
        best = [best[i] for i in _spread(len(best), top)]
    sources = [(t, None) for t in best]
    baseline = baseline_trial(url, name)
    if baseline is not None and baseline["number"] not in {t["number"] for t in best}:
        sources.append((baseline, baseline.get("baseline")))
    elif baseline is not None:
        sources = [(t, t.get("baseline")) for t, _ in sources]
    jobs = []
    for trial, baseline_name in sources:
        params = {**_source_params(trial, config), **(overrides or {})}
        if overrides:
            TrialParams.from_dict(params)  # a value the VAE cannot take fails here, not per run
        for index in range(seeds):
            jobs.append(
                ConfirmJob(
                    source=int(trial["number"]),
                    seed_index=index,
                    params={**params, "seed": confirm_seed(index)},
                    baseline=baseline_name,
                )
            )
    return config, jobs


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices evenly spread over ``range(n)``, both ends included (``k <= n``)."""
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _source_params(trial: Mapping[str, Any], config: StudyConfig) -> dict[str, Any]:
    """Every parameter the source trial ran with (a never-run baseline: its enqueued values)."""
    full = trial.get("params_full")
    if isinstance(full, dict) and full:
        return dict(full)
    import optuna

    space = config.search_space
    fixed = optuna.trial.FixedTrial({**config.baseline_params, **(trial.get("params") or {})})
    return space.suggest(fixed).to_dict()


def add_jobs(url: str, name: str, config: StudyConfig, jobs: Sequence[ConfirmJob]) -> str:
    """Create or extend the companion study of ``name`` with ``jobs``; returns its name.

    Jobs it already has (same source trial and seed index) are kept as they are; only the
    missing ones are added, and the budget becomes the number of jobs. Done under the
    companion's budget lock, so workers already running see a consistent job list.

    Raises:
        StudyConflictError: a study named like the companion exists but is not one of ``name``.
    """
    import optuna

    from sweep.store.rdb import open_storage

    companion = companion_name(name)
    storage = open_storage(url)
    try:
        existing = {s.study_name for s in storage.get_all_studies()}
        if companion not in existing:
            try:
                created = optuna.create_study(
                    study_name=companion,
                    storage=storage,
                    directions=[
                        optuna.study.StudyDirection[d.upper()]
                        for d in config.search_space.directions
                    ],
                )
                set_metric_names(created, config.search_space.metric_names)
            except optuna.exceptions.DuplicatedStudyError:
                pass  # another `sweep confirm` created it just now
        study_id = storage.get_study_id_from_name(companion)
        with budget_lock(storage, companion):
            attrs = storage.get_study_user_attrs(study_id)
            stored = attrs.get(CONFIRM_ATTR)
            if companion in existing and (not stored or stored.get("source") != name):
                raise StudyConflictError(
                    f"study {companion!r} exists but holds no confirmation runs of {name!r}; "
                    "rename it to confirm this study"
                )
            old = [ConfirmJob.from_json(j) for j in (stored or {}).get("jobs", [])]
            keys = {j.key for j in old}
            new = [j for j in jobs if j.key not in keys]
            everything = old + new
            companion_config = config.replace(
                n_trials=len(everything),
                pruner="none",
                sampler="random",  # never asked: confirmation runs suggest nothing
                artifacts_dir=None,
                baseline=None,
                baseline_params={},
                baseline_differs={},
            )
            storage.set_study_user_attr(study_id, STUDY_ATTR, companion_config.to_json())
            storage.set_study_user_attr(
                study_id,
                CONFIRM_ATTR,
                {"source": name, "jobs": [j.to_json() for j in everything]},
            )
    finally:
        storage.engine.dispose()
    _logger.info(
        "study %r: %d confirmation runs (%d new) of study %r",
        companion,
        len(everything),
        len(new),
        name,
    )
    return companion


def confirm_progress(storage: optuna.storages.BaseStorage, companion: str) -> tuple[int, int]:
    """``(finished, budget)`` of a companion study."""
    import optuna

    config = load_config(storage, companion)
    study = optuna.load_study(study_name=companion, storage=storage)
    return finished_count(state_counts(study)), config.n_trials


def assign_job(trial: optuna.Trial) -> ConfirmJob:
    """The job ``trial`` of a companion study runs; records it on the trial.

    Call it while holding the companion's budget lock (a worker does, until its objective
    starts). A trial that carries a job (re-queued after a stale heartbeat) keeps it unless
    another trial already completed it or runs it; otherwise the trial takes the first job
    with no COMPLETE, RUNNING or WAITING trial.

    Raises:
        TrialFailed: every job is done or taken (the trial is recorded FAIL, nothing runs).
    """
    import optuna

    study = trial.study
    stored = study.user_attrs.get(CONFIRM_ATTR) or {}
    jobs = [ConfirmJob.from_json(j) for j in stored.get("jobs", [])]
    states = tuple(optuna.trial.TrialState[s] for s in _TAKEN)
    others = [
        t for t in study.get_trials(deepcopy=False, states=states) if t.number != trial.number
    ]
    busy = {t.user_attrs.get(JOB_ATTR) for t in others if t.state.name != "WAITING"}
    taken = {t.user_attrs.get(JOB_ATTR) for t in others}
    wanted = trial.user_attrs.get(JOB_ATTR)
    by_key = {j.key: j for j in jobs}
    if wanted in by_key and wanted not in busy:
        job = by_key[wanted]
    else:
        free = [j for j in jobs if j.key not in taken]
        if not free:
            raise TrialFailed(
                "nothing left to confirm: every (trial, seed) is done, running or queued"
                + (f" (job {wanted} already is)" if wanted else "")
            )
        job = free[0]
    trial.set_user_attr(JOB_ATTR, job.key)
    trial.set_user_attr(SOURCE_ATTR, job.source)
    trial.set_user_attr(SEED_ATTR, job.seed)
    if job.baseline:
        trial.set_user_attr("confirm_baseline", job.baseline)
    return job


def is_companion(attrs: Mapping[str, Any]) -> bool:
    """Whether study user attributes ``attrs`` belong to a companion study."""
    return CONFIRM_ATTR in attrs


__all__ = [
    "CONFIRM_ATTR",
    "CONFIRM_SUFFIX",
    "ConfirmJob",
    "add_jobs",
    "assign_job",
    "companion_name",
    "confirm_progress",
    "plan_jobs",
]
