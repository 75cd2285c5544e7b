"""An :class:`~sweep.run.objective.Objective` on the tiny space, for a stand-in trial child."""

from __future__ import annotations

import dataclasses
from typing import Any

from sweep.run.objective import Objective
from sweep.run.protocol import DataSplit
from sweep.run.protocol import TrialKind
from sweep.run.protocol import TrialOutcome
from sweep.space import load_space
from tests.support.cli import TINY_SPACE


def trial_result(auroc: float) -> TrialOutcome:
    """What a finished VAE trial's child returns: this AUROC, 2 epochs, no diagnostics."""
    extra = {"diagnostics": {}, "flags": [], "elbo_beta": 0.1, "figure_sample": {}}
    return TrialOutcome(
        metrics={"expression.auroc": auroc}, seconds=1.5, epochs_run=2, extra=extra
    )


def tiny_objective(**changes: Any) -> Objective:
    """The VAE objective over the tiny space (its data is never read), with ``changes``."""
    base = Objective(
        kind=TrialKind(),
        space=load_space(TINY_SPACE),
        split=DataSplit("unused.npz", 0.2, 0.0, 0),
        epoch_metrics=("expression.auroc",),
    )
    return dataclasses.replace(base, **changes)
