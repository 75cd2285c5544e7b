"""The sampler and pruner a sweep's :class:`~sweep.config.StudyConfig` asks for.

Workers build them from the stored config (:mod:`sweep.run.worker`); the storage layer knows
nothing of sampling. Optuna is imported inside the functions; never imports TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweep.config import MEDIAN_WARMUP_SHARE
from sweep.config import StudyConfig
from sweep.params import TrialParams
from sweep.space import SearchSpace

if TYPE_CHECKING:
    import optuna


def races(config: StudyConfig) -> bool:
    """Whether the study races seeds (``--max-seeds`` above 1, one objective)."""
    return config.max_seeds > 1 and not config.search_space.is_multi_objective


def make_sampler(config: StudyConfig, worker_index: int) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded per worker so that parallel workers do not collide.

    A racing study's sampler learns from seed means (:func:`sweep.run.racing.seed_mean_sampler`).
    """
    sampler = _base_sampler(config, worker_index)
    if races(config):
        from sweep.run.racing import seed_mean_sampler

        return seed_mean_sampler(sampler)
    return sampler


def _base_sampler(config: StudyConfig, worker_index: int) -> optuna.samplers.BaseSampler:
    import optuna

    seed = (config.seed + 7919 * worker_index) % 2**32  # NumPy seeds are 32-bit
    multi = len(config.search_space.directions) > 1
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":  # refuses a conditional space (SearchSpace.grid)
        return optuna.samplers.GridSampler(config.search_space.grid(), seed=seed)
    if config.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if config.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    # group=True samples each set of names that occur together (a conditional space) jointly.
    # A KerasTuner hypermodel's space is define-by-run (conditional scopes): group it too.
    group = not multi and (config.search_space.is_conditional or config.hypermodel is not None)
    return optuna.samplers.TPESampler(
        seed=seed, multivariate=not multi, group=group, constant_liar=True
    )


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    """The study's pruner; epochs are the pruning steps.

    Hyperband's largest resource is the most epochs a trial of the space can run
    (:func:`max_epochs`). A racing study's pruner compares against seed-mean curves.
    """
    pruner = _base_pruner(config)
    if races(config) and config.pruner != "none":
        from sweep.run.racing import seed_mean_pruner

        return seed_mean_pruner(pruner)
    return pruner


def _base_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    import optuna

    if config.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=5, n_warmup_steps=median_warmup(max_epochs(config.search_space))
        )
    if config.pruner == "hyperband":
        epochs = max_epochs(config.search_space)
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 2))
    return optuna.pruners.NopPruner()


def median_warmup(epochs: int) -> int:
    """Epochs a trial of ``epochs`` reports before the median pruner may stop it (at least 1):
    :data:`sweep.config.MEDIAN_WARMUP_SHARE` of them, rounded down."""
    return max(1, int(MEDIAN_WARMUP_SHARE * epochs))


def max_epochs(space: SearchSpace) -> int:
    """The most epochs a trial of ``space`` can run.

    A fixed ``epochs``; else the largest value a searched ``epochs`` can take (the highest
    choice, or the top of an int range on its step grid); else the
    :class:`sweep.params.TrialParams` default.
    """
    if "epochs" in space.fixed:
        return int(space.fixed["epochs"])
    spec = space.search.get("epochs")
    if spec is None:
        return TrialParams().epochs
    if spec["type"] == "categorical":
        return int(max(spec["choices"]))
    low, high, step = int(spec["low"]), int(spec["high"]), int(spec["step"] or 1)
    return high if spec["log"] else low + (high - low) // step * step
