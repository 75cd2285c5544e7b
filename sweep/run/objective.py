"""The objective: one Optuna trial run as one child process of the trial engine.

This is the only module that knows both an Optuna trial and the engine's child protocol
(:mod:`sweep.run.isolation`). For each trial it suggests the parameters from the search space,
records who ran it, trains in a child process while reporting every epoch's objective to the
pruner, records the result's attributes (:data:`sweep.config.RESULT_ATTRS`), uploads the
samples artifact and returns the objective values. Failures stay honest: a
:class:`~sweep.errors.TrialFailed` or an interrupt is raised (Optuna records FAIL, with
``fail_reason``), a pruned trial raises ``optuna.TrialPruned`` (with ``prune_reason``). Never
imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import tempfile
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sweep.config import HEADLINE_ATTRS
from sweep.config import RESULT_ATTRS
from sweep.config import StudyConfig
from sweep.errors import TrialFailed
from sweep.names import quick_metric_names
from sweep.params import TrialParams
from sweep.run.gpus import TRIALS_PER_GPU_ENV
from sweep.run.isolation import EpochHandler
from sweep.run.isolation import Preload
from sweep.run.isolation import SparePool
from sweep.run.isolation import TrialRequest
from sweep.run.isolation import run_in_child
from sweep.run.signals import Interrupted
from sweep.run.signals import signals_as_interrupts
from sweep.space import SearchSpace
from sweep.store.lookup import EPOCH_ATTR

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Objective:
    """Run one Optuna trial in a child process; called by ``study.optimize``.

    Attributes:
        space: The study's search space (parameters and objective metrics).
        data_path: The local data file (already checked against the study's SHA-256).
        val_fraction: Validation share, as stored in the study.
        test_fraction: Test share, as stored in the study.
        split_seed: Seed of the split, as stored in the study.
        split_sha256: The study's split hash; each trial's process refuses another split.
        epoch_metrics: Metrics the child measures after every epoch; the first is reported to
            the pruner. Empty: no pruning.
        env: Extra environment for the child process.
        artifact_store: An Optuna artifact store for the samples file, or ``None``.
        worker_id: Recorded as the trial's ``worker`` attribute.
        signals: The worker's signal handling. Signals are resumed once the trial exists and
            deferred again before returning, so Optuna records the outcome uninterrupted.
        on_trial_created: Called first, once Optuna has created the trial: the worker hands
            its budget slot over here (releases the budget lock) before training starts.
        score_test: Also score the test split and record it as ``test_metrics`` (confirmation
            runs only, :mod:`sweep.run.confirm`; a sweep's trials never see the test split).
        spares: The worker's trial processes with a warm spare; ``None``: a cold child per
            trial (:func:`sweep.run.isolation.run_in_child`).
        keep_weights: Keep the weights of this many best trials (:mod:`sweep.run.weights`).
        maximize: Whether the (first) objective is maximised; ranks kept weights.
        storage_url: The study's storage, for ranking kept weights (unmasked; never printed).
    """

    space: SearchSpace
    data_path: str
    val_fraction: float
    test_fraction: float
    split_seed: int
    split_sha256: str = ""
    epoch_metrics: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    artifact_store: Any = None
    worker_id: str = field(default_factory=_worker_id)
    signals: signals_as_interrupts | None = None
    on_trial_created: Callable[[], None] | None = None
    score_test: bool = False
    spares: SparePool | None = None
    keep_weights: int = 0
    maximize: bool = True
    storage_url: str = ""

    @classmethod
    def for_study(
        cls,
        config: StudyConfig,
        data_path: str,
        *,
        env: Mapping[str, str] | None = None,
        signals: signals_as_interrupts | None = None,
        spares: SparePool | None = None,
        storage_url: str = "",
    ) -> Objective:
        """The objective of a study: its space, split, pruning metric and artifact store.

        A study of a KerasTuner hypermodel gets its own kind of trial
        (:class:`sweep.run.hypermodel.HypermodelObjective`).
        """
        if config.hypermodel is not None:
            from sweep.run.hypermodel import HypermodelObjective

            return HypermodelObjective.for_hypermodel_study(
                config, data_path, env=env, signals=signals
            )
        common = study_fields(config, data_path, env=env, signals=signals)
        return cls(
            **common,
            epoch_metrics=pruning_metrics(config),
            spares=spares,
            keep_weights=config.keep_weights if common["artifact_store"] is not None else 0,
            maximize=config.search_space.directions[0] == "maximize",
            storage_url=storage_url,
        )

    def with_storage(self, storage_url: str) -> Objective:
        """A copy that knows the study's storage (to rank kept weights)."""
        return dataclasses.replace(self, storage_url=storage_url)

    @property
    def _keeps_weights(self) -> bool:
        return self.keep_weights > 0 and self.artifact_store is not None and bool(self.storage_url)

    def with_hook(self, on_trial_created: Callable[[], None] | None) -> Objective:
        """A copy that calls ``on_trial_created`` once Optuna has created the trial."""
        return dataclasses.replace(self, on_trial_created=on_trial_created)

    def __call__(self, trial: optuna.Trial) -> float | list[float]:
        """Run ``trial``; return its objective value(s).

        Raises:
            TrialFailed: the trial failed (``fail_reason`` is recorded).
            optuna.TrialPruned: the pruner stopped it (``prune_reason`` is recorded).
            Interrupted: SIGINT/SIGTERM (``fail_reason`` is ``interrupted by SIGTERM``...).
        """
        import optuna

        try:
            if self.on_trial_created is not None:
                self.on_trial_created()
            if self.signals is not None:
                self.signals.resume()
            return self._run(trial)
        except TrialFailed as e:
            trial.set_user_attr("fail_reason", str(e))
            raise
        except optuna.TrialPruned as e:
            trial.set_user_attr("prune_reason", str(e))
            raise
        except Interrupted as e:
            trial.set_user_attr("fail_reason", f"interrupted by {e.signal_name}")
            raise
        finally:
            if self.signals is not None:
                self.signals.defer()  # until Optuna has recorded this trial's outcome

    def trial_params(self, trial: optuna.Trial) -> TrialParams:
        """The parameters ``trial`` runs with: suggested from the space."""
        return self.space.suggest(trial)

    def _run(self, trial: optuna.Trial) -> float | list[float]:
        started = time.monotonic()
        params = self.trial_params(trial)
        gpu = {**os.environ, **self.env}.get("CUDA_VISIBLE_DEVICES")
        sharing = {**os.environ, **self.env}.get(TRIALS_PER_GPU_ENV)
        trial.set_user_attr("worker", self.worker_id)
        trial.set_user_attr("cuda_visible_devices", gpu)
        trial.set_user_attr("gpu", gpu if sharing else None)
        trial.set_user_attr("trials_per_gpu", int(sharing) if sharing else None)
        trial.set_user_attr("params_full", params.to_dict())
        storage_s = time.monotonic() - started
        with tempfile.TemporaryDirectory(prefix="sweep-trial-") as tmp:
            samples = os.path.join(tmp, f"trial-{trial.number}-samples.npz")
            weights = os.path.join(tmp, f"trial-{trial.number}.weights.h5")
            request = TrialRequest(
                params=params.to_dict(),
                data_path=self.data_path,
                val_fraction=self.val_fraction,
                test_fraction=self.test_fraction,
                split_seed=self.split_seed,
                split_sha256=self.split_sha256,
                epoch_metrics=self.epoch_metrics,
                samples_path=samples if self.artifact_store is not None else None,
                score_test=self.score_test,
                weights_path=weights if self._keeps_weights else None,
            )
            on_epoch = self._pruning_reporter(trial)
            if self.spares is not None:
                result = self.spares.run(request, on_epoch=on_epoch)
            else:
                result = run_in_child(request, on_epoch=on_epoch, env=self.env)
            child_s = time.monotonic() - started - storage_s
            result = {
                **result,
                "train_seconds": result["seconds"],
                "seconds": time.monotonic() - started,
            }
            stamp = time.monotonic()
            for key in RESULT_ATTRS:
                if key in result:
                    trial.set_user_attr(key, result[key])
            if result.get("test_metrics"):
                trial.set_user_attr("test_metrics", result["test_metrics"])
            for attr, metric in HEADLINE_ATTRS.items():
                value = result["metrics"].get(metric)
                if isinstance(value, int | float) and math.isfinite(value):
                    trial.set_user_attr(attr, value)
            storage_s += time.monotonic() - stamp
            stamp = time.monotonic()
            if self.artifact_store is not None and os.path.exists(samples):
                from optuna.artifacts import upload_artifact

                artifact_id = upload_artifact(
                    artifact_store=self.artifact_store,
                    file_path=samples,
                    study_or_trial=trial,
                )
                trial.set_user_attr("samples_artifact", artifact_id)
            artifact_s = time.monotonic() - stamp
            values = self._objective_values(result)
            if self._keeps_weights and isinstance(values, float):
                from sweep.run.weights import keep_if_best

                keep_if_best(
                    trial,
                    value=values,
                    maximize=self.maximize,
                    keep=self.keep_weights,
                    weights_file=weights,
                    store=self.artifact_store,
                    storage_url=self.storage_url,
                )
        timing = dict(result.get("timing") or {})
        timing.update(
            child=round(child_s, 4),
            storage_writes=round(storage_s, 4),
            artifact_writes=round(artifact_s + float(timing.get("samples_write", 0.0)), 4),
            objective=round(time.monotonic() - started, 4),
        )
        trial.set_user_attr("timing", timing)
        return values

    def _pruning_reporter(self, trial: optuna.Trial) -> EpochHandler:
        """Report each epoch's objective to the pruner; raise ``TrialPruned`` when told to."""
        import optuna

        metric = self.epoch_metrics[0] if self.epoch_metrics else None

        def on_epoch(epoch: int, values: Mapping[str, Any]) -> None:
            trial.set_user_attr(EPOCH_ATTR, epoch + 1)  # for `sweep status --watch`
            if metric is None:
                return
            value = values.get(metric)
            if value is None or not math.isfinite(float(value)):
                return
            trial.report(float(value), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: {metric}={value:.4g}")

        return on_epoch

    def _objective_values(self, result: Mapping[str, Any]) -> float | list[float]:
        values = []
        for metric in self.space.metric_names:
            value = result["metrics"].get(metric)
            if value is None or not math.isfinite(float(value)):
                raise TrialFailed(f"objective metric {metric} is undefined for this trial")
            values.append(float(value))
        return values[0] if len(values) == 1 else values


def spare_pool(
    config: StudyConfig, data_path: str, env: Mapping[str, str] | None = None, *, spare: bool
) -> SparePool:
    """The worker's trial processes for ``config``'s data and split (close it when done)."""
    preload = Preload(data_path, config.val_fraction, config.test_fraction, config.split_seed)
    return SparePool(preload, env, spare=spare)


def study_fields(
    config: StudyConfig,
    data_path: str,
    *,
    env: Mapping[str, str] | None = None,
    signals: signals_as_interrupts | None = None,
) -> dict[str, Any]:
    """The :class:`Objective` fields every kind of trial of a study shares: its space, data
    file, split, artifact store, environment and signals."""
    return {
        "space": config.search_space,
        "data_path": data_path,
        "val_fraction": config.val_fraction,
        "test_fraction": config.test_fraction,
        "split_seed": config.split_seed,
        "split_sha256": config.split_sha256,
        "env": dict(env or {}),
        "artifact_store": artifact_store(config),
        "signals": signals,
    }


def pruning_metrics(config: StudyConfig) -> tuple[str, ...]:
    """The metric to measure after every epoch for the pruner: ``(objective,)`` or ``()``.

    Empty when the study has no pruner, has several objectives, or its objective is measured
    only after training (a warning says so).
    """
    space = config.search_space
    if config.pruner == "none" or space.is_multi_objective:
        return ()
    # Metric names only; moves to the stdlib-only sweep.names (this import pulls in sklearn).

    metric = space.metric_names[0]
    sections = [s["name"] for s in config.data_summary.get("sections", [])]
    per_epoch = quick_metric_names(sections) if sections else []
    if metric not in per_epoch:
        _logger.warning(
            "pruning is off: the objective %s is only measured after training (per-epoch "
            "metrics: expression.*, expression_hidden.*, section.*.output_mse/count_mse)",
            metric,
        )
        return ()
    return (metric,)


def artifact_store(config: StudyConfig) -> Any:
    """The study's artifact store (a private folder), or ``None`` when it keeps no samples."""
    if not config.artifacts_dir:
        return None
    from optuna.artifacts import FileSystemArtifactStore

    os.makedirs(config.artifacts_dir, mode=0o700, exist_ok=True)
    return FileSystemArtifactStore(config.artifacts_dir)
