"""An :class:`~sweep.run.objective.Objective` on the tiny space, for a stand-in trial child."""

from __future__ import annotations

import dataclasses
from typing import Any

from sweep.config import RESULT_ATTRS
from sweep.run.objective import Objective
from sweep.space import load_space
from tests.support.cli import TINY_SPACE


def trial_result(auroc: float) -> dict[str, Any]:
    """What a finished trial's child returns: every result attribute, this AUROC, 2 epochs."""
    result: dict[str, Any] = {key: None for key in RESULT_ATTRS}
    return {**result, "metrics": {"expression.auroc": auroc}, "seconds": 1.5, "epochs_run": 2}


def tiny_objective(**changes: Any) -> Objective:
    """The objective over the tiny space (its data is never read), with ``changes``."""
    base = Objective(
        space=load_space(TINY_SPACE),
        data_path="unused.npz",
        val_fraction=0.2,
        test_fraction=0.0,
        split_seed=0,
        epoch_metrics=("expression.auroc",),
    )
    return dataclasses.replace(base, **changes)
