"""The objective: one Optuna trial, of any kind, run as one child process.

This is the only module that knows both an Optuna trial and the trial protocol
(:mod:`sweep.run.protocol`). For every kind of trial (:class:`~sweep.run.protocol.TrialKind`)
the steps are the same: take a confirmation job (confirmation runs, under the budget lock),
hand the budget slot back, build the :class:`~sweep.run.protocol.TrialRequest` (the VAE's
parameters suggested from the search space, or a hypermodel's ``hp`` calls answered
define-by-run), run it in a child while reporting every epoch's objective to the pruner, and
record the :class:`~sweep.run.protocol.TrialOutcome` on the trial. Failures stay honest: a
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

from sweep.config import StudyConfig
from sweep.dialects import suggest_hp
from sweep.errors import TrialFailed
from sweep.log import plain
from sweep.names import headline_values
from sweep.names import quick_metric_names
from sweep.params import TrialParams
from sweep.run.gpus import TRIALS_PER_GPU_ENV
from sweep.run.hypermodel import check_hypermodel_file
from sweep.run.hypermodel import hypermodel_call
from sweep.run.isolation import AskHandler
from sweep.run.isolation import EpochHandler
from sweep.run.isolation import SparePool
from sweep.run.isolation import run_in_child
from sweep.run.protocol import DataSplit
from sweep.run.protocol import TrialKind
from sweep.run.protocol import TrialOutcome
from sweep.run.protocol import TrialRequest
from sweep.run.protocol import trial_kind
from sweep.run.signals import Interrupted
from sweep.run.signals import signals_as_interrupts
from sweep.seeds import RACE_ATTR
from sweep.seeds import SEED_INDEX_ATTR
from sweep.seeds import race_seed
from sweep.space import SearchSpace
from sweep.store.confirm import ConfirmJob
from sweep.store.confirm import assign_job
from sweep.store.lookup import EPOCH_ATTR
from sweep.store.rdb import set_user_attrs

if TYPE_CHECKING:
    import optuna

_logger = logging.getLogger(__name__)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Objective:
    """Run one Optuna trial in a child process; called by ``study.optimize``.

    Attributes:
        kind: What the study's trials are (:func:`sweep.run.protocol.trial_kind`).
        space: The study's search space (parameters and objective metrics).
        split: The local data file (already checked against the study's SHA-256) and the
            study's split; each trial's process refuses another split.
        hypermodel: The study's hypermodel spec (hypermodel studies only).
        seed: The study's seed; trial ``n`` of a hypermodel fits with seed ``seed + n``.
        epoch_metrics: Metrics the child measures after every epoch; the first is reported to
            the pruner. Empty: no pruning.
        env: Extra environment for the child process.
        artifact_store: An Optuna artifact store for the samples file, or ``None``.
        worker_id: Recorded as the trial's ``worker`` attribute.
        signals: The worker's signal handling. Signals are resumed once the trial exists and
            deferred again before returning, so Optuna records the outcome uninterrupted.
        on_trial_created: Called once Optuna has created the trial (and a confirmation run has
            its job): the worker hands its budget slot over here (releases the budget lock)
            before training starts.
        spares: The worker's trial processes with a warm spare; ``None``: a cold child per
            trial (:func:`sweep.run.isolation.run_in_child`).
        keep_weights: Keep the weights of this many best trials (:mod:`sweep.run.weights`).
        maximize: Whether the (first) objective is maximised; ranks kept weights.
        storage_url: The study's storage, for ranking kept weights (unmasked; never printed).
    """

    kind: TrialKind
    space: SearchSpace
    split: DataSplit
    hypermodel: Mapping[str, Any] | None = None
    seed: int = 0
    epoch_metrics: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    artifact_store: Any = None
    worker_id: str = field(default_factory=_worker_id)
    signals: signals_as_interrupts | None = None
    on_trial_created: Callable[[], None] | None = None
    spares: SparePool | None = None
    keep_weights: int = 0
    maximize: bool = True
    storage_url: str = ""

    @classmethod
    def for_study(
        cls,
        config: StudyConfig,
        study_attrs: Mapping[str, Any],
        data_path: str,
        *,
        env: Mapping[str, str] | None = None,
        signals: signals_as_interrupts | None = None,
        spares: SparePool | None = None,
        storage_url: str = "",
    ) -> Objective:
        """The objective of a study: its kind, space, split, pruning metric and artifacts.

        Raises:
            HypermodelError: a hypermodel study whose file is missing or differs.
        """
        kind = trial_kind(config.hypermodel, study_attrs)
        if kind.model == "hypermodel":
            check_hypermodel_file(config)
        # Confirmation runs keep no samples or weights, and nothing prunes them.
        store = None if kind.confirm else artifact_store(config, storage_url)
        keep = config.keep_weights if store is not None and kind.model == "vae" else 0
        return cls(
            kind=kind,
            space=config.search_space,
            split=DataSplit.of(config, data_path, config.split_sha256),
            hypermodel=config.hypermodel,
            seed=config.seed,
            epoch_metrics=() if kind.confirm else pruning_metrics(config),
            env=dict(env or {}),
            artifact_store=store,
            signals=signals,
            spares=spares,
            keep_weights=keep,
            maximize=config.search_space.directions[0] == "maximize",
            storage_url=storage_url,
        )

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
            try:
                job = self._take_job(trial)
            finally:
                if self.on_trial_created is not None:
                    self.on_trial_created()  # the slot (and the job) are this trial's now
            if self.signals is not None:
                self.signals.resume()
            return self._run(trial, job)
        except TrialFailed as e:
            trial.set_user_attr("fail_reason", plain(str(e)))
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

    def _take_job(self, trial: optuna.Trial) -> ConfirmJob | None:
        """A confirmation run's job, taken while the budget lock is still held."""
        return assign_job(trial) if self.kind.confirm else None

    def request(self, trial: optuna.Trial, job: ConfirmJob | None, tmp: str) -> TrialRequest:
        """The child's request for ``trial`` (parameters suggested or taken from ``job``).

        An extra seed of a racing study (:mod:`sweep.run.racing`) has its configuration's
        parameters (queued as fixed) and its seed index's seed.
        """
        epoch_metrics = self.epoch_metrics
        seed_index = (
            trial.user_attrs.get(SEED_INDEX_ATTR) if RACE_ATTR in trial.user_attrs else None
        )
        if seed_index is not None:
            trial.set_user_attr("seed", race_seed(int(seed_index)))
        if self.kind.model == "hypermodel":
            assert self.hypermodel is not None
            values = None if job is None else {k: v for k, v in job.params.items() if k != "seed"}
            seed = job.seed if job is not None else (self.seed + trial.number) % 2**31
            if seed_index is not None:
                seed = race_seed(int(seed_index))
            return TrialRequest(
                kind=self.kind,
                split=self.split,
                hypermodel=hypermodel_call(self.hypermodel, seed=seed, values=values),
                epoch_metrics=epoch_metrics,
            )
        params = (
            TrialParams.from_dict(job.params) if job is not None else self.space.suggest(trial)
        )
        if seed_index is not None:
            params = dataclasses.replace(params, seed=race_seed(int(seed_index)))
        trial.set_user_attr("params_full", params.to_dict())
        return TrialRequest(
            kind=self.kind,
            split=self.split,
            params=params.to_dict(),
            epoch_metrics=epoch_metrics,
            samples_path=(
                os.path.join(tmp, f"trial-{trial.number}-samples.npz")
                if self.artifact_store is not None
                else None
            ),
            weights_path=(
                os.path.join(tmp, f"trial-{trial.number}.weights.h5")
                if self._keeps_weights
                else None
            ),
        )

    def _run(self, trial: optuna.Trial, job: ConfirmJob | None) -> float | list[float]:
        started = time.monotonic()
        environ = {**os.environ, **self.env}
        gpu = environ.get("CUDA_VISIBLE_DEVICES")
        sharing = environ.get(TRIALS_PER_GPU_ENV)
        set_user_attrs(
            trial,
            {
                "worker": self.worker_id,
                "cuda_visible_devices": gpu,
                "gpu": gpu if sharing else None,
                "trials_per_gpu": int(sharing) if sharing else None,
            },
        )
        with tempfile.TemporaryDirectory(prefix="sweep-trial-") as tmp:
            request = self.request(trial, job, tmp)
            storage_s = time.monotonic() - started
            on_epoch = self._pruning_reporter(trial)
            on_ask: AskHandler | None = None
            if request.hypermodel is not None and request.hypermodel.values is None:

                def on_ask(question: Mapping[str, Any]) -> Any:
                    return suggest_hp(trial, question)

            if self.spares is not None:
                outcome = self.spares.run(request, on_epoch=on_epoch, on_ask=on_ask)
            else:
                outcome = run_in_child(request, on_epoch=on_epoch, env=self.env, on_ask=on_ask)
            child_s = time.monotonic() - started - storage_s
            stamp = time.monotonic()
            self._record(trial, outcome, seconds=time.monotonic() - started)
            storage_s += time.monotonic() - stamp
            stamp = time.monotonic()
            if request.samples_path and os.path.exists(request.samples_path):
                from optuna.artifacts import upload_artifact

                artifact_id = upload_artifact(
                    artifact_store=self.artifact_store,
                    file_path=request.samples_path,
                    study_or_trial=trial,
                )
                trial.set_user_attr("samples_artifact", artifact_id)
            artifact_s = time.monotonic() - stamp
            values = self._objective_values(outcome)
            if request.weights_path and isinstance(values, float):
                from sweep.run.weights import keep_if_best

                keep_if_best(
                    trial,
                    value=values,
                    maximize=self.maximize,
                    keep=self.keep_weights,
                    weights_file=request.weights_path,
                    store=self.artifact_store,
                    storage_url=self.storage_url,
                )
        timing = dict(outcome.timing)
        timing.update(
            child=round(child_s, 4),
            storage_writes=round(storage_s, 4),
            artifact_writes=round(artifact_s + float(timing.get("samples_write", 0.0)), 4),
            objective=round(time.monotonic() - started, 4),
        )
        trial.set_user_attr("timing", timing)
        return values

    def _record(self, trial: optuna.Trial, outcome: TrialOutcome, *, seconds: float) -> None:
        """Store what every kind measured, then what only this kind has, then the scalars.

        In one transaction: a trial writes some 25 attributes, and one connection each was most
        of a claim's storage time with many workers (benchmarks/db_scale.py).
        """
        attrs: dict[str, Any] = {
            "metrics": dict(outcome.metrics),
            "history": dict(outcome.history),
            "epochs_run": outcome.epochs_run,
            "train_seconds": outcome.seconds,
            "seconds": seconds,
        }
        if outcome.test_metrics:
            attrs["test_metrics"] = dict(outcome.test_metrics)
        if outcome.hyperparameters is not None:
            attrs["hyperparameters"] = dict(outcome.hyperparameters)
            attrs["params_full"] = dict(outcome.hyperparameters.get("values") or {})
        attrs.update(outcome.extra)
        # One scalar per headline metric, named by its metric key: optuna-dashboard lists,
        # sorts and plots numbers only (the JSON ``metrics`` above is one truncated string).
        attrs.update(headline_values(outcome.metrics, outcome.history))
        set_user_attrs(trial, attrs)

    def _pruning_reporter(self, trial: optuna.Trial) -> EpochHandler:
        """Report each epoch's objective to the pruner; raise ``TrialPruned`` when told to."""
        import optuna

        metric = self.epoch_metrics[0] if self.epoch_metrics else None
        prunable = RACE_ATTR not in trial.user_attrs  # an extra seed is raced, not pruned

        def on_epoch(epoch: int, values: Mapping[str, Any]) -> None:
            trial.set_user_attr(EPOCH_ATTR, epoch + 1)  # for `sweep status --watch`
            if metric is None:
                return
            value = values.get(metric)
            if value is None or not math.isfinite(float(value)):
                return
            trial.report(float(value), epoch)
            if prunable and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: {metric}={value:.4g}")

        return on_epoch

    def _objective_values(self, outcome: TrialOutcome) -> float | list[float]:
        values = []
        for metric in self.space.metric_names:
            value = outcome.metrics.get(metric)
            if value is None or not math.isfinite(float(value)):
                known = ", ".join(sorted(outcome.metrics)) or "none"
                raise TrialFailed(
                    f"objective metric {metric} is undefined for this trial (metrics: {known})"
                )
            values.append(float(value))
        return values[0] if len(values) == 1 else values


def spare_pool(
    config: StudyConfig, data_path: str, env: Mapping[str, str] | None = None, *, spare: bool
) -> SparePool:
    """The worker's trial processes for ``config``'s data and split (close it when done)."""
    return SparePool(DataSplit.of(config, data_path), env, spare=spare)


def pruning_metrics(config: StudyConfig) -> tuple[str, ...]:
    """The metric to measure after every epoch for the pruner: ``(objective,)`` or ``()``.

    Empty when the study has no pruner or has several objectives; for the VAE also when its
    objective is measured only after training (a warning says so). A hypermodel reports its
    Keras logs every epoch, the objective among them.
    """
    space = config.search_space
    if config.pruner == "none" or space.is_multi_objective:
        return ()
    metric = space.metric_names[0]
    if config.hypermodel:
        return (metric,)
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


def artifact_store(config: StudyConfig, storage_url: str = "") -> Any:
    """The study's artifact store (a private folder, found by :func:`sweep.store.artifacts.locate`
    for ``storage_url``), or ``None`` when it keeps no samples."""
    from sweep.store.artifacts import locate
    from sweep.store.artifacts import make_folder

    located = locate(storage_url, config.artifacts_dir)
    if located is None:
        return None
    from optuna.artifacts import FileSystemArtifactStore

    return FileSystemArtifactStore(str(make_folder(located.writable)))
