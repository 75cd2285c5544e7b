"""``sweep confirm``: re-run a study's best trials and its baseline with fresh seeds, on workers.

The runs go to the companion study ``NAME.confirm`` (:mod:`sweep.store.confirm`), never to
``NAME``, so its sampler never sees them. Workers run a companion study like any other: the
worker loop picks :class:`ConfirmObjective` for it (:func:`study_objective`), which takes its
job under the budget lock, trains with the job's parameters and seed, and scores the
validation and the test split (the probe's threshold chosen on the training rows is the one
applied to test). Never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweep.config import RunOptions
from sweep.config import StudyConfig
from sweep.errors import TrialFailed
from sweep.params import TrialParams
from sweep.run.objective import Objective
from sweep.store.confirm import CONFIRM_ATTR
from sweep.store.confirm import add_jobs
from sweep.store.confirm import assign_job
from sweep.store.confirm import companion_name
from sweep.store.confirm import confirm_progress
from sweep.store.confirm import plan_jobs

if TYPE_CHECKING:
    import optuna

    from sweep.run.signals import signals_as_interrupts

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfirmObjective(Objective):
    """The objective of a companion study: run the trial's job, score validation and test."""

    score_test: bool = True

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        try:
            assign_job(trial)  # still under the budget lock: the job is this trial's alone
        except TrialFailed as e:
            trial.set_user_attr("fail_reason", str(e))
            if self.on_trial_created is not None:
                self.on_trial_created()
            raise
        return super().__call__(trial)

    def trial_params(self, trial: optuna.Trial) -> TrialParams:
        """The job's parameters (the source trial's, with the job's seed)."""
        stored = trial.study.user_attrs.get(CONFIRM_ATTR) or {}
        key = trial.user_attrs.get("confirm_job")
        for job in stored.get("jobs", []):
            if job.get("key") == key:
                return TrialParams.from_dict(job["params"])
        raise TrialFailed(f"confirmation job {key!r} is not in the companion study")


def study_objective(
    study: optuna.Study,
    config: StudyConfig,
    data_path: str,
    *,
    env: Mapping[str, str] | None = None,
    signals: signals_as_interrupts | None = None,
) -> Objective:
    """The objective a worker runs for ``study``: confirmation runs for a companion study."""
    objective = Objective.for_study(config, data_path, env=env, signals=signals)
    if CONFIRM_ATTR not in study.user_attrs:
        return objective
    fields = {f.name: getattr(objective, f.name) for f in dataclasses.fields(Objective)}
    return ConfirmObjective(**{**fields, "score_test": True, "artifact_store": None})


def confirm_study(
    url: str,
    name: str,
    top: int,
    seeds: int,
    options: RunOptions | None = None,
    *,
    run: bool = True,
) -> str:
    """Plan and add the confirmation runs of study ``name``, then run them here.

    A repeated call (a larger ``top`` or ``seeds``, or after a kill) adds only the missing
    (trial, seed) jobs and runs whatever is not done; one whose jobs are all done runs nothing.

    Returns:
        The companion study's name.

    Raises:
        OptionError, StudyNotFoundError, StudyConflictError: nothing is written then.
    """
    from sweep.run.launch import run_workers
    from sweep.store.rdb import open_storage

    config, jobs = plan_jobs(url, name, top, seeds)
    companion = add_jobs(url, name, config, jobs)
    if not run:
        return companion
    storage = open_storage(url)
    try:
        finished, budget = confirm_progress(storage, companion)
    finally:
        storage.engine.dispose()
    if finished >= budget:
        _logger.info("study %r: all %d confirmation runs are done", companion, budget)
        return companion
    run_workers(url, companion, options or RunOptions())
    return companion


__all__ = ["ConfirmObjective", "companion_name", "confirm_study", "study_objective"]
