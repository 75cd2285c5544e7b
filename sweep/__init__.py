"""Hyperparameter sweeps for VAEs on binary genomic vectors, stored in an Optuna study database.

Importing ``sweep`` is cheap: TensorFlow loads only when a trial runs (``sweep.run_trial``) or a
model is rebuilt (``sweep.load_model``), pandas only in ``sweep.load_trials``/``load_history``.
"""

from __future__ import annotations

import os
from typing import Any

from sweep._version import __version__

# Quiet TensorFlow's C++ start-up chatter and pin Keras to TensorFlow, before either is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__all__ = [
    "TrialParams",
    "run_trial",
    "load_dataset",
    "load_model",
    "load_trials",
    "load_history",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name == "TrialParams":
        from sweep.params import TrialParams

        return TrialParams
    if name == "run_trial":
        from sweep.train.engine import run_trial

        return run_trial
    if name == "load_dataset":
        from sweep.train.data import load_dataset

        return load_dataset
    if name == "load_model":  # TensorFlow loads when it is called
        from sweep.train.export import load_model

        return load_model
    if name in ("load_trials", "load_history"):  # pandas loads when it is called
        from sweep.store import frames

        return getattr(frames, name)
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API, lazy names included (``dir(sweep)`` and tab completion list them)."""
    return sorted({*globals(), *__all__})
