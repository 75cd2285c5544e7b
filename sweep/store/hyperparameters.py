"""``sweep best NAME --as-hyperparameters FILE``: the best trial as a KerasTuner config.

Writes ``keras_tuner.HyperParameters.get_config()`` JSON (``{"space": [...], "values": {...}}``)
by hand, so this read command never imports KerasTuner or TensorFlow;
``hypermodel.build(keras_tuner.HyperParameters.from_config(json.load(f)))`` rebuilds the model.

* A hypermodel study's trial keeps the config its ``hp`` recorded (user attribute
  ``hyperparameters``: every declared hyperparameter with its range, step, sampling, default
  and conditions, and the trial's active values), written as it is.
* A built-in VAE study's trial has its searched values written as ``Fixed`` entries, which
  :class:`sweep.train.kerastuner.NotesVAE` (or any ``build`` that declares those names) takes.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sweep.dialects import fixed_hp_config
from sweep.errors import StudyConflictError
from sweep.errors import UsageError
from sweep.store.read import best_trials


def best_hyperparameters(url: str, name: str) -> tuple[int, dict[str, Any]]:
    """The best trial's number and its ``HyperParameters.get_config()`` form.

    Raises:
        StudyNotFoundError: no such study.
        StudyConflictError: the study has no COMPLETE trial yet.
        UsageError: the study has several objectives (no single best trial).
    """
    rows = best_trials(url, name, 1)
    if not rows:
        raise StudyConflictError(f"study {name!r} has no COMPLETE trial yet")
    if len(rows) > 1 or len(rows[0].get("values") or []) > 1:
        raise UsageError(
            f"study {name!r} has several objectives, so no single best trial; "
            "--as-hyperparameters needs a single-objective study"
        )
    row = rows[0]
    stored = row["user_attrs"].get("hyperparameters")
    if isinstance(stored, dict) and "space" in stored and "values" in stored:
        return int(row["number"]), stored
    return int(row["number"]), fixed_hp_config(row["params"])


def write_best_hyperparameters(url: str, name: str, path: str | Path) -> int:
    """Write the best trial's config as JSON to ``path`` (atomically). Returns its number.

    Raises:
        UsageError: ``path`` cannot be written (one line), and as :func:`best_hyperparameters`.
    """
    number, config = best_hyperparameters(url, name)
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        os.replace(tmp, target)
    except OSError as e:
        raise UsageError(f"--as-hyperparameters: cannot write '{path}': {e.strerror}") from None
    return number
