"""The trial engine: train one VAE on one dataset and score it on the untouched validation split.

``run_trial`` is the single entry point used by ``sweep trial``, by sweep workers (in a child
process per trial) and by users from Python. It puts the data layer and the training plan
(:mod:`sweep.train.plan`: model, optimizer, KL schedule, callbacks) together, and knows nothing
of Optuna. Importing it does not load TensorFlow; :func:`run_trial` does.

Scoring uses the posterior mean: every validation row is encoded to ``z_mean`` and decoded from
it, once with the full input and, for the label-hidden probe (``expression_hidden.*``), once with
the label bit set to 0 and once set to 1 (the probe is the mean of the two), so the metrics do
not depend on sampling noise, gamma, alpha or beta. The probe's threshold
(``expression_hidden.threshold``) is chosen on the training split. The test split is never read
here unless ``EngineOptions.score_test`` asks for it after training (``sweep trial
--score-test``): no training step, callback, pruning report or objective sees it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import sweep.figure_data as figure_data
from sweep.errors import TrialFailed
from sweep.params import TrialParams
from sweep.train.data import Dataset
from sweep.train.data import load_dataset
from sweep.train.metrics import Evaluation
from sweep.train.metrics import choose_threshold
from sweep.train.metrics import evaluate
from sweep.train.metrics import label_hidden_probe
from sweep.train.metrics import quick_metrics
from sweep.train.metrics import reconstruction_and_probe

EpochCallback = Callable[[int, Mapping[str, Any]], None]
"""``on_epoch(epoch, values)``, see :func:`run_trial`."""


@dataclass(frozen=True)
class EngineOptions:
    """How a trial runs (not what it learns): compilation, threads, what it keeps.

    The defaults are the fastest combination measured on a 2-core CPU that keeps the model's
    maths (``benchmarks/trial_speed.py``, ``benchmarks/RESULTS.md``).

    Attributes:
        jit_compile: Passed to ``Model.compile``; ``"auto"`` lets Keras decide (no XLA on a CPU,
            where XLA measured slower).
        intra_op_threads: TensorFlow intra-op threads; ``None`` keeps TensorFlow's default.
        inter_op_threads: TensorFlow inter-op threads; ``None`` keeps TensorFlow's default.
        fused_adam: Update with :class:`sweep.train.plan.FusedAdam`: the same Adam in one fused
            kernel per variable (the update is memory-bound and dominated the step).
        sparse_input: Compute the first encoder layer over the input's nonzeros only
            (:class:`sweep.train.model.SparseInputDense`, same maths); off: slower at batch 32.
        mixed_bfloat16: Compute the Dense layers in bfloat16 (float32 weights, sampling, sigmoid
            and loss). Changes the maths slightly, so off by default.
        steps_per_execution: Training steps per ``tf.function`` call (``Model.compile``).
        sample_rows: Validation rows whose codes and reconstructions are kept in the result.
        score_every_epoch: Score the validation split after every epoch with
            :func:`sweep.train.metrics.quick_metrics` (for pruning and per-epoch curves); costs
            one validation pass per epoch (``VAE.scoring_outputs``).
        score_test: After training, also score the test split (``TrialResult.test_metrics``);
            for ``sweep trial --score-test`` only, never in a sweep.
        gpu_memory_mb: Cap each visible GPU at this many MiB for this process (a logical
            device); ``None``: memory growth (allocate on demand).
        weights_path: After training, save the encoder's and decoder's weights there (a
            ``.weights.h5`` file, :func:`sweep.train.export.save_weights`); ``None``: not saved.
    """

    jit_compile: bool | str = "auto"
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    fused_adam: bool = True
    sparse_input: bool = False
    mixed_bfloat16: bool = False
    steps_per_execution: int = 1
    sample_rows: int = 64
    score_every_epoch: bool = False
    score_test: bool = False
    gpu_memory_mb: int | None = None
    weights_path: str | None = None


@dataclass
class TrialResult:
    """Everything one trial measured. ``to_json()`` drops only the sample arrays.

    ``metrics`` are on the validation split; ``test_metrics`` (``test.`` + the same keys) is
    filled only when ``EngineOptions.score_test`` asked for it.
    """

    params: TrialParams
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    diagnostics: dict[str, Any]
    flags: tuple[str, ...]
    epochs_run: int
    seconds: float
    n_features: int
    elbo_beta: float
    data_summary: dict[str, Any]
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    test_metrics: dict[str, Any] = field(default_factory=dict)
    figure_sample: dict[str, Any] = field(default_factory=dict, repr=False)
    timing: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        test = {"test_metrics": self.test_metrics} if self.test_metrics else {}
        return {
            "params": self.params.to_dict(),
            "metrics": self.metrics,
            "history": self.history,
            "diagnostics": self.diagnostics,
            "flags": list(self.flags),
            "epochs_run": self.epochs_run,
            "seconds": self.seconds,
            "n_features": self.n_features,
            "elbo_beta": self.elbo_beta,
            "data": self.data_summary,
            "figure_sample": self.figure_sample,
            "timing": self.timing,
            **test,
        }


def run_trial(
    params: TrialParams | Mapping[str, Any] | None = None,
    data: Dataset | str | Path | None = None,
    *,
    on_epoch: EpochCallback | None = None,
    options: EngineOptions | None = None,
    model: Any = None,
    callbacks: Sequence[Any] = (),
) -> TrialResult:
    """Train the VAE described by ``params`` on ``data`` and score it on the validation split.

    Args:
        params: Hyperparameters (a mapping is validated through ``TrialParams.from_dict``);
            ``None`` uses the notes' defaults.
        data: A loaded dataset or a path to an ``.npz``; ``None`` uses the bundled K562 data.
        on_epoch: Called after each epoch with ``(epoch, values)``: the Keras logs, plus every
            validation metric when ``options.score_every_epoch`` is set. It may raise to stop
            the trial (``optuna.TrialPruned``, say); the exception propagates unchanged.
        options: Engine options; defaults to :class:`EngineOptions`.
        model: A VAE already built for ``params`` (:func:`sweep.train.plan.build_vae`, e.g. by
            a KerasTuner ``build``) to train instead of building one.
        callbacks: Extra Keras callbacks for ``fit`` (e.g. KerasTuner's own).

    Returns:
        The trial's metrics, per-epoch history, diagnostics, a small sample of codes and the
        seconds spent in each stage (``timing``, see :data:`ENGINE_STAGES`).

    Raises:
        TrialFailed: when the loss or the outputs become NaN or infinite.
        DataError: when ``data`` is a path to an invalid file.
    """
    started = time.perf_counter()
    options = options or EngineOptions()
    if params is None:
        params = TrialParams()
    elif not isinstance(params, TrialParams):
        params = TrialParams.from_dict(params)
    if not isinstance(data, Dataset):
        data = load_dataset(data if data is not None else _bundled())

    clock = _Clock()
    keras = configure_tensorflow(options)
    from sweep.train.plan import EpochClock
    from sweep.train.plan import EpochReport
    from sweep.train.plan import build_vae
    from sweep.train.plan import training_callbacks

    clock.lap("imports")
    train_rows = data.training_rows(params.dataset, params.seed)
    clock.lap("balance")
    if model is None:
        keras.backend.clear_session()
        model = build_vae(
            params,
            data.n_features,
            jit_compile=options.jit_compile,
            fused_adam=options.fused_adam,
            sparse_input=options.sparse_input,
            mixed_bfloat16=options.mixed_bfloat16,
            steps_per_execution=options.steps_per_execution,
        )

    callbacks = [*training_callbacks(params), *callbacks]
    per_epoch: dict[str, list[float]] = {}
    scoring = _Clock()
    if on_epoch is not None or options.score_every_epoch:
        score = (
            scoring.timed("epoch_scoring", partial(_quick_score, data=data))
            if options.score_every_epoch
            else None
        )
        callbacks.append(EpochReport(on_epoch, score, per_epoch))
    epoch_clock = EpochClock()
    callbacks.insert(0, epoch_clock)
    clock.lap("build")

    history = model.fit(
        _batches(train_rows, params.batch_size, params.seed, shuffle=True),
        validation_data=_batches(data.val, 256, params.seed, shuffle=False),
        epochs=params.epochs,
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        callbacks=callbacks,
        verbose=0,
    )
    clock.lap("fit")
    threshold = hidden_threshold(model, data)
    evaluation = score_split(model, data, data.val, threshold, "validation")
    test_metrics: dict[str, Any] = {}
    if options.score_test and data.test is not None:
        tested = score_split(model, data, data.test, threshold, "test")
        test_metrics = {f"test.{k}": v for k, v in tested.metrics.items()}
    curves = {k: [float(v) for v in values] for k, values in history.history.items()}
    curves.update(per_epoch)
    clock.lap("final_metrics")
    samples = _samples(model, data, options.sample_rows)
    if options.weights_path:
        from sweep.train.export import save_weights

        save_weights(model, options.weights_path)
    figure_sample = _figure_sample(model, data, evaluation.diagnostics, params.seed)
    clock.lap("samples")
    return TrialResult(
        params=params,
        metrics=evaluation.metrics,
        history=curves,
        diagnostics=evaluation.diagnostics,
        flags=evaluation.flags,
        epochs_run=len(history.epoch),
        seconds=time.perf_counter() - started,
        n_features=data.n_features,
        elbo_beta=params.kl_beta * data.n_features,
        data_summary=data.summary(),
        samples=samples,
        test_metrics=test_metrics,
        figure_sample=figure_sample,
        timing=_stages(clock.seconds, scoring.seconds, epoch_clock.seconds),
    )


def preflight(params: TrialParams, data: Dataset) -> list[str]:
    """Build the VAE for ``params`` and train it one step on one batch of ``data``.

    What a launch checks before it creates a study: the model builds for the data's width and
    a training step runs with a finite loss. Returns the metric names a trial reports.

    Raises:
        TrialFailed: the loss of the step is not finite.
    """
    import math

    from sweep.names import metric_names
    from sweep.train.plan import build_vae

    keras = configure_tensorflow(EngineOptions())
    keras.backend.clear_session()
    model = build_vae(params, data.n_features)
    rows = data.training_rows(params.dataset, params.seed)[: params.batch_size]
    history = model.fit(_batches(rows, len(rows), params.seed, shuffle=False), epochs=1, verbose=0)
    loss = float(history.history["loss"][-1])
    if not math.isfinite(loss):
        raise TrialFailed(f"the first training step's loss is {loss}")
    return metric_names([s.name for s in data.sections])


ENGINE_STAGES = (
    "imports",
    "balance",
    "build",
    "first_step",
    "training",
    "epoch_scoring",
    "final_metrics",
    "samples",
)
"""The stages of ``TrialResult.timing``, in order (seconds each):

``imports`` (TensorFlow and the plan, when not yet imported), ``balance`` (the training rows of
``params.dataset``), ``build`` (model and optimizer), ``first_step`` (how much longer the first
epoch took than the median later one: graph tracing), ``training`` (the rest of ``fit``,
validation loss included), ``epoch_scoring`` (per-epoch validation scores for the pruner),
``final_metrics`` (threshold, metrics, diagnostics) and ``samples`` (the kept codes)."""


class _Clock:
    """Seconds per named stage, from cheap ``perf_counter`` laps."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now

    def timed(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function``, adding its run time to ``stage``."""

        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed

        return run


def _stages(
    laps: Mapping[str, float], scoring: Mapping[str, float], epochs: list[float]
) -> dict[str, float]:
    """Split ``fit`` into first-step tracing, per-epoch scoring and the rest (training)."""
    epoch_scoring = scoring.get("epoch_scoring", 0.0)
    first_step = 0.0
    if len(epochs) > 1:
        later = sorted(epochs[1:])
        first_step = max(0.0, epochs[0] - later[len(later) // 2])
    training = max(0.0, laps.get("fit", 0.0) - epoch_scoring - first_step)
    timing = {
        "imports": laps.get("imports", 0.0),
        "balance": laps.get("balance", 0.0),
        "build": laps.get("build", 0.0),
        "first_step": first_step,
        "training": training,
        "epoch_scoring": epoch_scoring,
        "final_metrics": laps.get("final_metrics", 0.0),
        "samples": laps.get("samples", 0.0),
    }
    return {k: round(v, 4) for k, v in timing.items()}


def _bundled() -> Path:
    from sweep.train.data import BUNDLED_DATA

    return BUNDLED_DATA


_CONFIGURED: list[bool] = []


def configure_tensorflow(options: EngineOptions) -> Any:
    """Import Keras on TensorFlow quietly; set threads and GPU memory once per process.

    GPU memory: a logical device of ``options.gpu_memory_mb`` MiB per visible GPU, else memory
    growth. Returns the ``keras`` module.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf

    if _CONFIGURED:
        return keras
    _CONFIGURED.append(True)
    try:
        if options.intra_op_threads:
            tf.config.threading.set_intra_op_parallelism_threads(options.intra_op_threads)
        if options.inter_op_threads:
            tf.config.threading.set_inter_op_parallelism_threads(options.inter_op_threads)
        for gpu in tf.config.list_physical_devices("GPU"):
            if options.gpu_memory_mb:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=options.gpu_memory_mb)]
                )
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
    except (RuntimeError, ValueError):
        pass  # TensorFlow already initialised in this process: settings are fixed by then.
    return keras


def _batches(rows: np.ndarray, batch_size: int, seed: int, *, shuffle: bool) -> Any:
    """A tf.data pipeline over uint8 rows; the model casts each batch to float32."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(rows)
    if shuffle:
        dataset = dataset.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def decode_split(
    model: Any, rows: np.ndarray, label_column: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``model.reconstruct(rows)``, the label-hidden probe and, where they come free, the codes.

    One pass with a shared first layer where the model can decode the label alone
    (``VAE.scoring_outputs``); otherwise two full decoder passes and no codes.
    """
    if getattr(model, "decodes_label_alone", False):
        probs, z_mean, z_log_var, off, on = model.scoring_outputs(rows)
        return probs, label_hidden_probe(off, on), (z_mean, z_log_var)
    probs, probe = reconstruction_and_probe(model.reconstruct, rows, label_column)
    return probs, probe, None


def hidden_threshold(model: Any, data: Dataset) -> float | None:
    """The label-hidden probe's F1-maximising threshold on the training split (as in the file,
    not balanced); validation and test rows play no part."""
    scores = label_hidden_probe(*model.label_outputs(data.train))  # label-only where it can
    if not np.all(np.isfinite(scores)):
        raise TrialFailed("non-finite label-hidden reconstruction on the training split")
    return choose_threshold(data.train[:, data.label_column], scores)


def score_split(
    model: Any, data: Dataset, rows: np.ndarray, threshold: float | None, split: str
) -> Evaluation:
    """Evaluate ``rows`` (a whole split) from the posterior mean."""
    probs, label_hidden, codes = decode_split(model, rows, data.label_column)
    z_mean, z_log_var = codes if codes is not None else model.encode(rows)
    arrays = (
        ("reconstruction", probs),
        ("label-hidden reconstruction", label_hidden),
        ("latent mean", z_mean),
        ("latent log-variance", z_log_var),
    )
    for name, array in arrays:
        if not np.all(np.isfinite(array)):
            raise TrialFailed(f"non-finite {name} on the {split} split")
    return evaluate(
        rows, probs, label_hidden, z_mean, z_log_var, data.sections, hidden_threshold=threshold
    )


def _quick_score(model: Any, data: Dataset) -> dict[str, Any]:
    """Per-epoch validation metrics: expression and section MSEs (see ``quick_metrics``)."""
    probs, label_hidden, _ = decode_split(model, data.val, data.label_column)
    if not (np.all(np.isfinite(probs)) and np.all(np.isfinite(label_hidden))):
        raise TrialFailed("non-finite reconstruction on the validation split")
    return quick_metrics(data.val, probs, label_hidden, data.sections)


def _samples(model: Any, data: Dataset, rows: int) -> dict[str, np.ndarray]:
    """The first ``rows`` validation rows with their codes and reconstructions."""
    if rows <= 0:
        return {}
    x = data.val[:rows]
    reconstruction, z_mean, z_log_var = model.reconstruct_and_encode(x)
    return {
        "x": x,
        "z_mean": z_mean.astype(np.float32),
        "z_log_var": z_log_var.astype(np.float32),
        "reconstruction": reconstruction.astype(np.float16),
    }


def _figure_sample(
    model: Any, data: Dataset, diagnostics: Mapping[str, Any], seed: int
) -> dict[str, Any]:
    """The small sample behind the trial's figures (:mod:`sweep.figure_data`)."""
    rows = data.val[: figure_data.SAMPLE_ROWS]
    if len(rows) == 0:
        return {}
    reconstruction, z_mean, z_log_var = model.reconstruct_and_encode(rows)
    activity = np.asarray(
        [np.nan if v is None else v for v in diagnostics.get("latent_variance") or []],
        dtype=float,
    )
    if activity.shape != (z_mean.shape[1],):
        activity = np.var(z_mean, axis=0)
    return figure_data.build(
        rows,
        reconstruction,
        z_mean,
        z_log_var,
        [(s.name, s.start, s.stop) for s in data.sections],
        activity,
        seed=seed,
    )
