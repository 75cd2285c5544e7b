"""Hyperparameter sweeps for VAEs on binary genomic vectors, stored in an Optuna study database.

Importing ``sweep`` is cheap: TensorFlow loads only when a trial runs (``sweep.run_trial``).
"""

from __future__ import annotations

import os
from typing import Any

# Quiet TensorFlow's C++ start-up chatter and pin Keras to TensorFlow, before either is imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
__all__ = ["TrialParams", "run_trial", "load_dataset", "__version__"]


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
    raise AttributeError(f"module 'sweep' has no attribute {name!r}")
