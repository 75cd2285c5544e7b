"""Single-trial and weight-keeping reads for the run layer: one trial by number (or the best),
the best COMPLETE trials' values, the trials that hold kept weights, and the running trials'
progress. Each opens one :class:`~sweep.store.read.StudyReader`; read-only, TensorFlow-free.
"""

from __future__ import annotations

from typing import Any

from sweep.errors import TrialNotFoundError
from sweep.store.read import EPOCH_ATTR
from sweep.store.read import WEIGHTS_ATTR
from sweep.store.read import StudyReader


def find_trial(
    url: str, name: str, number: int | None = None, *, include_history: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trial ``number`` of study ``name`` (``None``: the best COMPLETE trial) and the study config.

    Returns:
        ``(trial, config)``: the trial's JSON dict (``TrialRecord.to_dict``) and the study's
        stored :class:`~sweep.config.StudyConfig` JSON (``{}`` for a study not made by sweep).

    Raises:
        TrialNotFoundError: no such trial, or no COMPLETE trial to call the best.
        StudyNotFoundError, StorageError.
    """
    with StudyReader(url) as reader:
        config = dict(reader.config(name).config or {})
        if number is None:
            best = reader.best(name, 1, history=include_history)
            if not best:
                raise TrialNotFoundError(f"study {name!r} has no COMPLETE trial yet")
            return best[0].to_dict(), config
        return reader.trial(name, number, history=include_history).to_dict(), config


def top_complete(url: str, name: str, k: int) -> list[tuple[int, float]]:
    """``(number, value)`` of the best ``k`` COMPLETE trials by the first objective, best first."""
    with StudyReader(url) as reader:
        return reader.top_values(name, k)


def weight_holders(url: str, name: str) -> list[tuple[int, str, str]]:
    """``(number, state, artifact_id)`` of every trial that ever stored kept weights."""
    with StudyReader(url) as reader:
        return reader.weight_holders(name)


def running_progress(url: str, name: str) -> dict[int, dict[str, Any]]:
    """``{number: {"epoch", "epochs"}}`` for RUNNING trials: the last finished epoch (``None``
    before the first) and the epochs the trial asked for (``None`` if unknown)."""
    with StudyReader(url) as reader:
        return {r.number: {"epoch": r.epoch, "epochs": r.epochs} for r in reader.running(name)}


__all__ = ["EPOCH_ATTR", "WEIGHTS_ATTR", "find_trial", "running_progress", "top_complete"]
