"""``launch --keep-weights K``: keep the weights of the K best trials in the artifact store.

After a trial has its objective value, :func:`keep_if_best` compares it with the best K
COMPLETE trials in the database: a trial among the new top K uploads its weights (an Optuna
artifact, id in the trial user attribute :data:`~sweep.store.lookup.WEIGHTS_ATTR`), and every
finished trial that has dropped out of the top K loses its weights. Safe with several workers:
RUNNING trials' weights are never deleted (their value is not in the database yet), deleting
weights already gone is fine, and whichever trial finishes next removes any surplus that two
trials finishing at once left behind. Ranking uses the first objective (``launch`` refuses
``--keep-weights`` for several objectives).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING
from typing import Any

from sweep.store.lookup import WEIGHTS_ATTR
from sweep.store.lookup import top_complete
from sweep.store.lookup import weight_holders

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)


def keep_if_best(
    trial: optuna.Trial,
    *,
    value: float,
    maximize: bool,
    keep: int,
    weights_file: str,
    store: Any,
    storage_url: str,
) -> bool:
    """Upload ``weights_file`` if ``trial`` is among the ``keep`` best; prune the others.

    Returns:
        Whether this trial's weights were kept.
    """
    if keep <= 0 or store is None or not os.path.exists(weights_file):
        return False
    from optuna.artifacts import upload_artifact

    name = trial.study.study_name
    top = top_complete(storage_url, name, keep)
    beats = (lambda a, b: a > b) if maximize else (lambda a, b: a < b)
    kept = len(top) < keep or beats(value, top[-1][1])
    if kept:
        artifact_id = upload_artifact(
            artifact_store=store, file_path=weights_file, study_or_trial=trial
        )
        trial.set_user_attr(WEIGHTS_ATTR, artifact_id)
        survivors = {number for number, _ in top[: keep - 1]}
    else:
        survivors = {number for number, _ in top}
    prune_weights(storage_url, name, store, survivors)
    return kept


def prune_weights(storage_url: str, name: str, store: Any, survivors: set[int]) -> int:
    """Delete the kept weights of finished trials not in ``survivors``; return how many went."""
    from optuna.artifacts.exceptions import ArtifactNotFound

    removed = 0
    for number, state, artifact_id in weight_holders(storage_url, name):
        if state == "RUNNING" or number in survivors:
            continue
        try:
            store.remove(artifact_id)
        except ArtifactNotFound:
            continue  # another worker deleted it first
        removed += 1
        _logger.debug("deleted the weights of trial %d (left the top)", number)
    return removed


def has_artifact(store: Any, artifact_id: str) -> bool:
    """Whether ``artifact_id`` is still in ``store``."""
    from optuna.artifacts.exceptions import ArtifactNotFound

    try:
        store.open_reader(artifact_id).close()
    except ArtifactNotFound:
        return False
    return True
