"""Names and defaults every layer shares: trial states, samplers, pruners, attribute keys, timing.

Each fact lives here once; the CLI, the storage layer, the worker and the reports import it.
Standard library only.
"""

from __future__ import annotations

#: Optuna's trial states, in the order reports list them.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
#: States that count towards a study's budget.
FINISHED_STATES = ("COMPLETE", "PRUNED")
SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("median", "hyperband", "none")

#: The study user attribute that holds a sweep's :class:`sweep.store.study.StudyConfig`.
STUDY_ATTR = "sweep"

#: Trial user attributes a worker writes (all JSON).
TRIAL_ATTRS = (
    "params_full",  # every TrialParams value, searched and fixed
    "metrics",  # flat scalar metrics on the validation split (sweep.train.metrics)
    "history",  # per-epoch curves: losses, KL, learning rate, objective per epoch
    "diagnostics",  # KL per latent dimension, latent normality, collapse flags
    "flags",  # collapse flags as text
    "seconds",  # wall time of the trial, child start-up included
    "train_seconds",  # the engine's own time: training and scoring
    "elbo_beta",  # kl_beta * n_features
    "epochs_run",
    "fail_reason",  # why a FAIL trial failed
    "prune_reason",  # why a PRUNED trial was pruned
    "worker",  # host:pid of the worker that ran it
    "cuda_visible_devices",  # the GPU(s) its worker was given (None: not set)
    "samples_artifact",  # artifact id of the latent/reconstruction sample
)
#: The attributes the engine's result provides (recorded as they come from the child).
RESULT_ATTRS = (
    "metrics",
    "history",
    "diagnostics",
    "flags",
    "seconds",
    "train_seconds",
    "elbo_beta",
    "epochs_run",
)
#: Large attributes that reports load only when asked.
BIG_ATTRS = ("history", "diagnostics")

#: Heartbeat and reconnect defaults (seconds), the same for launch, worker and containers.
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
MAX_RETRY = 3
RECONNECT_TIMEOUT_S = 120.0
WAIT_FOR_DB_S = 60.0
