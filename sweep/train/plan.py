"""The training plan: what trains a :class:`~sweep.train.model.VAE`, built from TrialParams.

Mirrors scvi-tools' ``TrainingPlan``: the model file holds the architecture and the loss; this
module owns the optimizer (:class:`FusedAdam` or Keras' Adam), the KL schedule
(:class:`KLWarmup`), seeding, compilation and the callbacks (finite-loss check, KL warm-up,
``ReduceLROnPlateau``, ``EarlyStopping``, per-epoch report).

The KL weight is decided here and only here: :func:`kl_schedule` reads ``params.kl_beta`` and
``params.kl_warmup_epochs`` once, and the model's ``kl_weight`` starts at the schedule's
:attr:`KLWarmup.initial_weight` and follows :meth:`KLWarmup.weight_at`. The focal-loss settings
go from ``TrialParams`` through :func:`build_vae` to the ``VAE`` constructor, which hands them
to :func:`sweep.train.losses.vae_loss`.

This module imports keras and tensorflow, never optuna or sqlalchemy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from sweep.errors import TrialFailed
from sweep.params import TrialParams
from sweep.train.model import LABEL_SEED_OFFSET
from sweep.train.model import VAE
from sweep.train.model import build_decoder
from sweep.train.model import build_encoder
from sweep.train.model import check_n_features

MONITOR = "val_reconstruction_loss"
"""What ``ReduceLROnPlateau`` and ``EarlyStopping`` watch: the validation reconstruction loss,
not the total, which KL warm-up inflates epoch by epoch as the KL weight grows."""
LR_PLATEAU_FACTOR = 0.5
"""``ReduceLROnPlateau``: the learning rate is multiplied by this when :data:`MONITOR` stalls."""
LR_PLATEAU_PATIENCE = 2
"""``ReduceLROnPlateau``: epochs without :data:`MONITOR` improvement before the rate drops."""
LR_PLATEAU_MIN = 1e-6
"""``ReduceLROnPlateau``: the learning rate never drops below this."""

EpochCallback = Callable[[int, Mapping[str, Any]], None]
"""``on_epoch(epoch, values)``, see :class:`EpochReport`."""


@keras.saving.register_keras_serializable(package="sweep")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam, updating each float32 variable with TensorFlow's fused ``ApplyAdam`` kernel.

    Same update as :class:`keras.optimizers.Adam` (``m += (g - m)(1 - b1)``,
    ``v += (g^2 - v)(1 - b2)``, ``w -= lr_t m / (sqrt(v) + eps)`` with
    ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``), but in one multithreaded pass over the variable,
    its moments and the gradient instead of about a dozen; the update is memory-bound, so this
    is several times faster on a CPU for a 40M-parameter model. Falls back to Keras' update for
    ``amsgrad``, sparse gradients and non-float32 variables.
    """

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if (
            self.amsgrad
            or isinstance(gradient, tf.IndexedSlices)
            or variable.dtype != "float32"
            or not hasattr(variable, "handle")
        ):
            super().update_step(gradient, variable, learning_rate)
            return
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        step = tf.cast(self.iterations + 1, tf.float32)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(tf.constant(self.beta_1, tf.float32), step),
            beta2_power=tf.pow(tf.constant(self.beta_2, tf.float32), step),
            lr=tf.cast(learning_rate, tf.float32),
            beta1=tf.constant(self.beta_1, tf.float32),
            beta2=tf.constant(self.beta_2, tf.float32),
            epsilon=tf.constant(self.epsilon, tf.float32),
            grad=tf.cast(gradient, tf.float32),
            use_locking=False,
            use_nesterov=False,
        )


class KLWarmup(keras.callbacks.Callback):
    """Linear KL warm-up, the one schedule of the model's ``kl_weight``.

    Before training the weight is :attr:`initial_weight` (0, or ``beta`` without warm-up); at the
    start of epoch ``e`` (0-based) it is set to ``beta * min(1, (e + 1) / epochs)``; with
    ``epochs == 0`` it is ``beta`` throughout.

    Args:
        beta: Final KL weight (``TrialParams.kl_beta``).
        epochs: Epochs of the ramp (``TrialParams.kl_warmup_epochs``); 0: no warm-up.

    Raises:
        ValueError: on a negative ``beta`` or ``epochs``.
    """

    def __init__(self, beta: float, epochs: int) -> None:
        super().__init__()
        if not beta >= 0:
            raise ValueError(
                f"Invalid value received for argument `beta`. Expected a number >= 0. "
                f"Received: beta={beta!r}"
            )
        if epochs < 0:
            raise ValueError(
                f"Invalid value received for argument `epochs`. Expected an integer >= 0. "
                f"Received: epochs={epochs!r}"
            )
        self.beta = float(beta)
        self.epochs = int(epochs)

    @property
    def initial_weight(self) -> float:
        """The KL weight before the first epoch: 0 with a warm-up, else ``beta``."""
        return 0.0 if self.epochs > 0 else self.beta

    def weight_at(self, epoch: int) -> float:
        """The KL weight used during 0-based ``epoch``."""
        if self.epochs == 0:
            return self.beta
        return self.beta * min(1.0, (epoch + 1) / self.epochs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.kl_weight.assign(self.weight_at(epoch))


class FiniteLoss(keras.callbacks.Callback):
    """Fail the trial as soon as an epoch's training or validation loss is not finite.

    Raises:
        TrialFailed: from ``on_epoch_end``, naming the loss and the 1-based epoch.
    """

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        for key, value in (logs or {}).items():
            if key.endswith("loss") and not math.isfinite(float(value)):
                raise TrialFailed(f"non-finite {key} ({value}) at epoch {epoch + 1}")


class EpochReport(keras.callbacks.Callback):
    """After each epoch, optionally score the model and hand the values to ``on_epoch``.

    Args:
        on_epoch: Called with ``(epoch, values)``: the Keras logs plus the scores; it may raise
            to stop training (the exception propagates unchanged).
        score: ``score(model) -> metrics``; ``None``: report the Keras logs only.
        curves: Receives ``epoch.<metric>`` lists of every numeric score, one value per epoch.
    """

    def __init__(
        self,
        on_epoch: EpochCallback | None,
        score: Callable[[Any], Mapping[str, Any]] | None,
        curves: dict[str, list[float]],
    ) -> None:
        super().__init__()
        self._on_epoch = on_epoch
        self._score = score
        self._curves = curves

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        values: dict[str, Any] = {k: float(v) for k, v in (logs or {}).items()}
        if self._score is not None:
            metrics = self._score(self.model)
            values.update(metrics)
            for key, value in metrics.items():
                if isinstance(value, (int, float)):
                    self._curves.setdefault(f"epoch.{key}", []).append(float(value))
        if self._on_epoch is not None:
            self._on_epoch(epoch, values)


class EpochClock(keras.callbacks.Callback):
    """Wall seconds of each epoch (``seconds``), callbacks at the epoch's end included.

    Epoch hooks only: no per-batch hook, so Keras' training loop runs as without it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._started)


def kl_schedule(params: TrialParams) -> KLWarmup:
    """The KL schedule ``params.kl_beta`` and ``params.kl_warmup_epochs`` ask for."""
    return KLWarmup(params.kl_beta, params.kl_warmup_epochs)


def make_optimizer(params: TrialParams, *, fused: bool = True) -> keras.optimizers.Adam:
    """Adam at ``params.learning_rate``: :class:`FusedAdam` if ``fused``, else Keras' own."""
    adam = FusedAdam if fused else keras.optimizers.Adam
    return adam(params.learning_rate)


def build_vae(
    params: TrialParams,
    n_features: int,
    *,
    jit_compile: bool | str = "auto",
    fused_adam: bool = True,
    sparse_input: bool = False,
    mixed_bfloat16: bool = False,
    steps_per_execution: int = 1,
) -> VAE:
    """Seed, build and compile the VAE for ``params`` and ``n_features`` input columns.

    Speed switches (none changes the model's maths except ``mixed_bfloat16``):
    ``fused_adam`` updates with :class:`FusedAdam` (the same Adam, one fused kernel per
    variable); ``sparse_input`` makes the first encoder layer a
    :class:`~sweep.train.model.SparseInputDense` (ignored with ``jit_compile=True``: XLA has no
    sparse kernel); ``mixed_bfloat16`` computes the Dense layers in bfloat16 with float32
    weights, sampling, sigmoid and loss; ``steps_per_execution`` is passed to ``Model.compile``.

    Calls ``keras.utils.set_random_seed(params.seed)`` (Python, NumPy and TensorFlow global
    seeds, so ``fit``'s shuffling is reproducible too); layer initialisers, dropout and sampling
    noise are also seeded explicitly from ``params.seed``, so the same params give the same
    initial weights and the same first steps. The model's ``kl_weight`` starts at
    ``kl_schedule(params).initial_weight``; train with :func:`training_callbacks` so it follows
    the warm-up. ``jit_compile="auto"`` means XLA on a GPU, none on a CPU-only machine.

    Raises:
        DataError: if ``n_features`` is not an integer >= 1.
    """
    check_n_features(n_features)
    keras.utils.set_random_seed(params.seed)
    dtype = "mixed_bfloat16" if mixed_bfloat16 else None
    vae = VAE(
        build_encoder(
            params,
            n_features,
            sparse_input=sparse_input and jit_compile is not True,
            dtype=dtype,
        ),
        build_decoder(params, n_features, dtype=dtype),
        n_features,
        loss=params.loss,
        focal_gamma=params.focal_gamma,
        focal_alpha=params.focal_alpha,
        kl_weight=kl_schedule(params).initial_weight,
        label_weight=params.label_weight,
        label_dropout=params.label_dropout,
        label_seed=params.seed + LABEL_SEED_OFFSET,
        name="vae",
    )
    vae.compile(
        optimizer=make_optimizer(params, fused=fused_adam),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return vae


def training_callbacks(params: TrialParams) -> list[keras.callbacks.Callback]:
    """The callbacks ``params`` asks for, in the order they run.

    Always :class:`FiniteLoss`; then :func:`kl_schedule`'s :class:`KLWarmup` if
    ``kl_warmup_epochs > 0``; ``ReduceLROnPlateau`` on :data:`MONITOR` (factor
    :data:`LR_PLATEAU_FACTOR`, patience :data:`LR_PLATEAU_PATIENCE`, floor
    :data:`LR_PLATEAU_MIN`) if ``reduce_lr_on_plateau``; ``EarlyStopping`` on :data:`MONITOR`
    restoring the best weights if ``early_stopping_patience > 0``. Both need
    ``validation_data`` in ``fit`` (the validation split, never the test split).
    """
    callbacks: list[keras.callbacks.Callback] = [FiniteLoss()]
    if params.kl_warmup_epochs > 0:
        callbacks.append(kl_schedule(params))
    if params.reduce_lr_on_plateau:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=MONITOR,
                mode="min",
                factor=LR_PLATEAU_FACTOR,
                patience=LR_PLATEAU_PATIENCE,
                min_lr=LR_PLATEAU_MIN,
                verbose=0,
            )
        )
    if params.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=MONITOR,
                mode="min",
                patience=params.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    return callbacks
