"""Racing in the study: queue extra seeds, and let the sampler and pruner see seed means.

:func:`queue_seeds` runs under the budget lock at every claim: it reads the study's trials,
applies :func:`sweep.seeds.race` and enqueues each chosen configuration's next seed as a
WAITING trial with the configuration's parameters. The plan is a function of the stored
trials, so a worker killed at any point loses nothing: the next claim plans again, and a seed
already queued, running or done (or failed and retried under the same index) is never queued
twice. :class:`SeedMeanSampler` and :class:`SeedMeanPruner` wrap Optuna's: they see one trial
per configuration whose value (and per-epoch values) are the means over its seeds.
Never imports TensorFlow.
"""

from __future__ import annotations

import copy
import logging
import math
import statistics
from collections import Counter
from collections.abc import Container
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from sweep.seeds import RACE_ATTR
from sweep.seeds import SEED_INDEX_ATTR
from sweep.seeds import Configuration
from sweep.seeds import configurations
from sweep.seeds import race
from sweep.seeds import ranked
from sweep.seeds import seed_run

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

_logger = logging.getLogger(__name__)


def is_extra_seed(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is an extra seed of another trial's configuration."""
    return RACE_ATTR in trial.user_attrs


def study_configurations(trials: Sequence[FrozenTrial]) -> list[Configuration]:
    """The configurations of a study's trials (:func:`sweep.seeds.configurations`)."""
    return configurations(seed_run(t) for t in trials)


def queue_seeds(study: optuna.Study, *, max_seeds: int) -> list[tuple[int, int]]:
    """Enqueue the extra seeds racing asks for now; ``(configuration, seed index)`` of each.

    Call it under the study's budget lock, so two workers never queue the same seed.
    """
    trials = study.get_trials(deepcopy=False)
    maximize = study.direction.name == "MAXIMIZE"
    configs = {c.number: c for c in study_configurations(trials)}
    by_number = {t.number: t for t in trials}
    queued = []
    for number in race(list(configs.values()), maximize=maximize, max_seeds=max_seeds):
        index = configs[number].next_index
        study.enqueue_trial(
            dict(by_number[number].params),
            user_attrs={RACE_ATTR: number, SEED_INDEX_ATTR: index},
        )
        queued.append((number, index))
    if queued:
        _logger.debug("racing queued seeds %s", queued)
    return queued


def work_left(trials: Sequence[FrozenTrial], *, max_seeds: int, maximize: bool) -> bool:
    """Whether a racing study still has seeds to run: queued or running, or asked for now."""
    if any(is_extra_seed(t) and t.state.name in ("WAITING", "RUNNING") for t in trials):
        return True
    return bool(race(study_configurations(trials), maximize=maximize, max_seeds=max_seeds))


def configuration_states(trials: Sequence[FrozenTrial]) -> Counter[str]:
    """Trials per state, extra seeds apart (what ``--n-trials`` counts)."""
    return Counter(t.state.name for t in trials if not is_extra_seed(t))


def incumbent(study: optuna.Study) -> Configuration | None:
    """The configuration with the best seed mean, or ``None`` before any is complete."""
    configs = study_configurations(study.get_trials(deepcopy=False))
    if not configs:
        return None
    return ranked(configs, maximize=study.direction.name == "MAXIMIZE")[0]


def epochs_spent(trials: Sequence[FrozenTrial]) -> int:
    """Epochs trained by every trial, seeds and pruned ones included (``--budget-epochs``)."""
    from sweep.store.lookup import EPOCH_ATTR

    total = 0
    for t in trials:
        ran = t.user_attrs.get("epochs_run") or t.user_attrs.get(EPOCH_ATTR) or 0
        total += int(ran)
    return total


class _SeedMeanStudy:
    """A study whose trial lists show one trial per configuration, valued by its seed mean."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def get_trials(
        self, deepcopy: bool = True, states: Container[Any] | None = None
    ) -> list[FrozenTrial]:
        return self._means(self._study.get_trials(deepcopy=False), states)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[Any] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        trials = self._study._get_trials(deepcopy=False, use_cache=use_cache)
        return self._means(trials, states)

    @staticmethod
    def _means(trials: Sequence[FrozenTrial], states: Container[Any] | None) -> list[FrozenTrial]:
        seeds: dict[int, list[FrozenTrial]] = {}
        for t in trials:
            race_of = t.user_attrs.get(RACE_ATTR)
            if race_of is not None and t.state.name == "COMPLETE":
                seeds.setdefault(int(race_of), []).append(t)
        out = []
        for t in trials:
            if RACE_ATTR in t.user_attrs or (states is not None and t.state not in states):
                continue
            extra = seeds.get(t.number)
            if extra and t.values is not None:
                t = copy.copy(t)
                runs = [t, *extra]
                t.values = [
                    statistics.fmean(r.values[i] for r in runs) for i in range(len(t.values))
                ]
                t.intermediate_values = _mean_curves([r.intermediate_values for r in runs])
            out.append(t)
        return out


def _seed_means(study: optuna.Study) -> optuna.Study:
    """``study`` as the wrapped sampler or pruner sees it (an Optuna study in all but lists)."""
    return cast("optuna.Study", _SeedMeanStudy(study))


def _mean_curves(curves: Sequence[dict[int, float]]) -> dict[int, float]:
    steps = sorted({s for c in curves for s in c})
    means = {}
    for step in steps:
        values = [c[step] for c in curves if step in c and math.isfinite(c[step])]
        if values:
            means[step] = statistics.fmean(values)
    return means


def seed_mean_sampler(base: optuna.samplers.BaseSampler) -> optuna.samplers.BaseSampler:
    """``base``, learning from seed means (one trial per configuration)."""
    import optuna

    class SeedMeanSampler(optuna.samplers.BaseSampler):
        """Optuna's sampler over configurations valued by their seed means."""

        def __init__(self) -> None:
            self.base = base

        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            return base.infer_relative_search_space(_seed_means(study), trial)

        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            return base.sample_relative(_seed_means(study), trial, search_space)

        def sample_independent(
            self, study: Any, trial: Any, param_name: str, param_distribution: Any
        ) -> Any:
            return base.sample_independent(
                _seed_means(study), trial, param_name, param_distribution
            )

        def before_trial(self, study: Any, trial: Any) -> None:
            base.before_trial(_seed_means(study), trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            base.after_trial(_seed_means(study), trial, state, values)

        def reseed_rng(self) -> None:
            base.reseed_rng()

    return SeedMeanSampler()


def seed_mean_pruner(base: optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    """``base``, comparing a trial's curve against the configurations' mean curves."""
    import optuna

    class SeedMeanPruner(optuna.pruners.BasePruner):
        """Optuna's pruner over configurations' seed-mean curves."""

        def __init__(self) -> None:
            self.base = base

        def prune(self, study: Any, trial: Any) -> bool:
            return bool(base.prune(_seed_means(study), trial))

    return SeedMeanPruner()
