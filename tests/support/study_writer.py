"""Write sweep studies cheaply through Optuna, no training: for read-path tests and benchmarks.

Each trial gets searched parameters from the tiny space, its objective value, and the user
attributes a real trial has (``params_full``, ``metrics``, ``flags``, ``seconds``, ``history``),
so the SQL reads see what they see on a real study.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

TINY = Path(__file__).resolve().parents[2] / "search_spaces" / "tiny.yaml"


def write_study(
    url: str, name: str, n_trials: int, *, running: int = 0, **config: Any
) -> list[dict[str, Any]]:
    """Create study ``name`` in ``url`` with ``n_trials`` COMPLETE trials (and ``running``
    RUNNING ones, at epoch 1 of 2); return the trials' user attributes, in number order.

    The study has one seed per trial (``max_seeds=1``) unless ``config`` says otherwise."""
    import optuna

    from sweep.config import study_config
    from sweep.params import TrialParams
    from sweep.space import load_space
    from sweep.store.rdb import open_storage
    from sweep.store.study import create_or_reuse_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, create=True)
    space = load_space(TINY)
    summary = {"n_features": 12001, "rows": {"train": 100, "val": 40}}
    create_or_reuse_study(
        storage,
        name,
        study_config(
            space, data_summary=summary, n_trials=max(1, n_trials), **{"max_seeds": 1, **config}
        ),
    )
    study = optuna.load_study(study_name=name, storage=storage)
    rng = random.Random(0)
    dists = {
        "coding_size": optuna.distributions.CategoricalDistribution([4, 8]),
        "kl_beta": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
    }
    written = []
    trials = []
    for i in range(n_trials):
        params = {"coding_size": rng.choice([4, 8]), "kl_beta": 10 ** rng.uniform(-4, -2)}
        auroc = rng.uniform(0.4, 0.9)
        attrs = {
            "params_full": TrialParams.from_dict({**params, "epochs": 2}).to_dict(),
            "metrics": {"expression.auroc": auroc, "expression.f1": rng.random()},
            "flags": [],
            "seconds": 1.0 + i,
            "history": {"loss": [0.5, 0.4], "val_loss": [0.6, 0.5]},
        }
        trials.append(
            optuna.trial.create_trial(
                params=params, distributions=dists, value=auroc, user_attrs=attrs
            )
        )
        written.append(attrs)
    study.add_trials(trials)
    for _ in range(running):
        trial = study.ask()
        trial.set_user_attr("params_full", TrialParams.from_dict({"epochs": 2}).to_dict())
        trial.set_user_attr("epoch", 1)
    return written
