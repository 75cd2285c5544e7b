"""``sweep confirm``: re-run a study's best trials and its baseline with fresh seeds, on workers.

The runs go to the companion study ``NAME.confirm`` (:mod:`sweep.store.confirm`), never to
``NAME``, so its sampler never sees them. Workers run a companion study like any other: its
trials are confirmation runs (:func:`sweep.run.protocol.trial_kind`), which take their job
under the budget lock, train the built-in VAE or the study's hypermodel with the job's
parameters and seed, and score the validation and the test split. Never imports TensorFlow.
"""

from __future__ import annotations

import logging

from sweep.config import RunOptions
from sweep.log import quiet_optuna
from sweep.run.launch import run_workers
from sweep.run.reference import score_reference_on_test
from sweep.store.confirm import add_jobs
from sweep.store.confirm import companion_name
from sweep.store.confirm import confirm_progress
from sweep.store.confirm import plan_jobs
from sweep.store.rdb import open_storage

_logger = logging.getLogger(__name__)


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
    quiet_optuna()  # no "A new study created in RDB" between sweep's own lines
    config, jobs = plan_jobs(url, name, top, seeds)
    if not config.test_fraction:
        _logger.info(
            "study %r has no test split (test fraction 0): runs are scored on validation only",
            name,
        )
    companion = add_jobs(url, name, config, jobs)
    if not run:
        return companion
    storage = open_storage(url)
    try:
        finished, budget = confirm_progress(storage, companion)
    finally:
        storage.engine.dispose()
    if finished < budget:
        run_workers(url, companion, options or RunOptions())
    else:
        _logger.info("study %r: all %d confirmation runs are done", companion, budget)
    score_reference_on_test(url, name, (options or RunOptions()).data_path)
    return companion


__all__ = ["companion_name", "confirm_study"]
