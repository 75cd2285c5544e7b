"""The VAE: a Sampling layer, encoder/decoder builders, the ``VAE`` model and KL warm-up.

Everything is built from one :class:`sweep.params.TrialParams` and the number of input columns.
Inputs may be uint8 (0/1); the model casts each batch to float32, so a dataset never needs a
float copy. TensorFlow backend only (``train_step`` uses ``tf.GradientTape``).

Loss: ``total = reconstruction + kl_weight * KL``, where reconstruction is a per-row mean over
features (see :mod:`sweep.train.losses`), KL a per-row sum over latent dimensions, both then
averaged over the batch. ``kl_weight`` is ``params.kl_beta`` (after warm-up); the ELBO-scale
beta is ``kl_beta * n_features``.

This module imports keras, tensorflow and numpy, never optuna or sqlalchemy.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from sweep.errors import DataError
from sweep.params import TrialParams
from sweep.train.losses import kl_divergence
from sweep.train.losses import reconstruction_loss

_SAMPLING_SEED_OFFSET = 0
_ENCODER_SEED_OFFSET = 1_000
_DECODER_SEED_OFFSET = 2_000
_DROPOUT_SEED_OFFSET = 3_000


@keras.saving.register_keras_serializable(package="sweep")
class Sampling(keras.layers.Layer):
    """Reparameterisation: ``z = mean + exp(0.5 * log_var) * eps`` with ``eps ~ N(0, I)``.

    Always samples (in training and inference); the noise comes from a
    ``keras.random.SeedGenerator(seed)``, so a fixed seed gives a fixed sequence of draws.
    """

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any) -> Any:
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


def _check_n_features(n_features: int) -> None:
    if isinstance(n_features, bool) or not isinstance(n_features, (int, np.integer)):
        raise DataError(f"n_features: expected an integer >= 1, got {n_features!r}")
    if n_features < 1:
        raise DataError(f"n_features: expected an integer >= 1, got {n_features!r}")


def _dense(
    units: int,
    seed: int,
    name: str,
    activation: str | None = None,
    *,
    dtype: str | None = None,
    sparse_input: bool = False,
) -> keras.layers.Dense:
    cls = SparseInputDense if sparse_input else keras.layers.Dense
    return cls(
        units,
        activation=activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name=name,
        dtype=dtype,
    )


class SparseInputDense(keras.layers.Dense):
    """A ``Dense`` layer whose matmul skips the zeros of its input: same maths, faster on sparse x.

    ``activation(x @ kernel + bias)`` is computed as a sparse-dense product over the nonzero
    entries of ``x`` (any values, not only 0/1), so its cost scales with the number of nonzeros,
    forward and backward. Outputs equal ``Dense``'s up to floating-point summation order.
    XLA has no sparse kernel, so :func:`build_vae` uses it only without ``jit_compile=True``.
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        x = tf.cast(inputs, tf.float32)
        where = tf.where(tf.not_equal(x, 0))
        sparse = tf.SparseTensor(where, tf.gather_nd(x, where), tf.shape(x, out_type=tf.int64))
        # The sparse kernel runs in float32 (the variable's dtype) whatever the compute dtype.
        y = tf.sparse.sparse_dense_matmul(sparse, tf.cast(self.kernel, tf.float32))
        y = tf.cast(y, self.compute_dtype)
        if self.use_bias:
            y = y + tf.cast(self.bias, self.compute_dtype)
        if self.activation is not None:
            y = self.activation(y)
        return y


def build_encoder(
    params: TrialParams,
    n_features: int,
    *,
    sparse_input: bool = False,
    dtype: str | None = None,
) -> keras.Model:
    """The encoder q(z|x): ``(n_features,)`` float32 -> ``[z_mean, z_log_var, z]``.

    A Dense stack of ``params.encoder_units`` with ``params.activation``, then two linear heads of
    width ``params.coding_size`` and a :class:`Sampling` layer. Initial weights depend only on
    ``params.seed``. ``sparse_input`` makes the first layer a :class:`SparseInputDense` (same
    maths); ``dtype`` is a Keras dtype policy for the Dense layers (``None``: float32); the
    sampling layer always runs in float32.

    Raises:
        DataError: if ``n_features`` is not an integer >= 1.
    """
    _check_n_features(n_features)
    seed = params.seed + _ENCODER_SEED_OFFSET
    inputs = keras.Input(shape=(int(n_features),), dtype="float32", name="x")
    h = inputs
    for i, units in enumerate(params.encoder_units):
        h = _dense(
            units,
            seed + i,
            f"encoder_dense_{i}",
            activation=params.activation,
            dtype=dtype,
            sparse_input=sparse_input and i == 0,
        )(h)
    n = len(params.encoder_units)
    z_mean = _dense(params.coding_size, seed + n, "z_mean", dtype=dtype)(h)
    z_log_var = _dense(params.coding_size, seed + n + 1, "z_log_var", dtype=dtype)(h)
    if dtype is not None:
        z_mean = keras.layers.Activation("linear", dtype="float32", name="z_mean_f32")(z_mean)
        z_log_var = keras.layers.Activation("linear", dtype="float32", name="z_log_var_f32")(
            z_log_var
        )
    z = Sampling(seed=params.seed + _SAMPLING_SEED_OFFSET, name="z")([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder(
    params: TrialParams, n_features: int, *, dtype: str | None = None
) -> keras.Model:
    """The decoder p(x|z): ``(coding_size,)`` -> sigmoid probabilities ``(n_features,)``.

    Each hidden layer of ``params.resolved_decoder_units`` is ``Dense -> [BatchNormalization] ->
    activation -> [Dropout]``: batch normalisation (if ``decoder_batch_norm``) sits between the
    linear map and the activation, dropout (if ``decoder_dropout > 0``, seeded) after the
    activation. The output layer is a plain ``Dense(n_features, sigmoid)``. With a ``dtype``
    policy (say ``"mixed_bfloat16"``) the Dense layers compute in it, and the output layer becomes
    ``Dense(n_features)`` then a float32 sigmoid ``Activation`` named ``x_probs``.

    Raises:
        DataError: if ``n_features`` is not an integer >= 1.
    """
    _check_n_features(n_features)
    seed = params.seed + _DECODER_SEED_OFFSET
    inputs = keras.Input(shape=(params.coding_size,), dtype="float32", name="z")
    h = inputs
    units_list = params.resolved_decoder_units
    for i, units in enumerate(units_list):
        if params.decoder_batch_norm:
            h = _dense(units, seed + i, f"decoder_dense_{i}", dtype=dtype)(h)
            h = keras.layers.BatchNormalization(name=f"decoder_bn_{i}", dtype=dtype)(h)
            h = keras.layers.Activation(params.activation, name=f"decoder_act_{i}", dtype=dtype)(h)
        else:
            h = _dense(
                units, seed + i, f"decoder_dense_{i}", activation=params.activation, dtype=dtype
            )(h)
        if params.decoder_dropout > 0.0:
            h = keras.layers.Dropout(
                params.decoder_dropout,
                seed=params.seed + _DROPOUT_SEED_OFFSET + i,
                name=f"decoder_dropout_{i}",
                dtype=dtype,
            )(h)
    if dtype is None:
        outputs = _dense(int(n_features), seed + len(units_list), "x_probs", activation="sigmoid")(
            h
        )
    else:
        logits = _dense(int(n_features), seed + len(units_list), "x_logits", dtype=dtype)(h)
        outputs = keras.layers.Activation("sigmoid", dtype="float32", name="x_probs")(logits)
    return keras.Model(inputs, outputs, name="decoder")


class VAE(keras.Model):
    """Variational autoencoder over binary rows, trained with a custom step.

    ``fit``/``evaluate`` accept batches ``x`` (uint8 or float) or ``(x, x)``. Logged metrics are
    ``loss`` (reconstruction + kl_weight * KL), ``reconstruction_loss`` and ``kl_loss`` (the
    *unweighted* KL, comparable across betas), each a mean over the epoch's rows; validation
    uses sampled ``z`` as training does, with batch norm and dropout in inference mode.

    Attributes:
        encoder: ``x -> [z_mean, z_log_var, z]``.
        decoder: ``z -> probabilities``.
        params: The trial's hyperparameters.
        n_features: Input width.
        kl_weight: Non-trainable float32 variable, the current KL weight (``params.kl_beta``, or
            0 until :class:`KLWarmup` raises it).
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        params: TrialParams,
        n_features: int,
        **kwargs: Any,
    ) -> None:
        _check_n_features(n_features)
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.params = params
        self.n_features = int(n_features)
        self._recon_fn = reconstruction_loss(params)
        start = 0.0 if params.kl_warmup_epochs > 0 else float(params.kl_beta)
        self.kl_weight = keras.Variable(start, trainable=False, dtype="float32", name="kl_weight")
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self._infer_fns: dict[tuple[str, str], Any] = {}
        self.built = True

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Reconstruction probabilities: decodes sampled ``z`` when training, else ``z_mean``."""
        x = ops.cast(inputs, "float32")
        z_mean, _, z = self.encoder(x, training=training)
        return self.decoder(z if training else z_mean, training=training)

    def _vae_terms(self, x: Any, training: bool) -> tuple[Any, Any, Any]:
        z_mean, z_log_var, z = self.encoder(x, training=training)
        probs = self.decoder(z, training=training)
        recon = ops.mean(self._recon_fn(x, probs))
        kl = ops.mean(kl_divergence(z_mean, z_log_var))
        total = recon + ops.cast(self.kl_weight, "float32") * kl
        return total, recon, kl

    def _update_trackers(self, total: Any, recon: Any, kl: Any, n: Any) -> dict[str, Any]:
        self.total_loss_tracker.update_state(total, sample_weight=n)
        self.reconstruction_loss_tracker.update_state(recon, sample_weight=n)
        self.kl_loss_tracker.update_state(kl, sample_weight=n)
        return {m.name: m.result() for m in self.metrics}

    @staticmethod
    def _batch_x(data: Any) -> Any:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return ops.cast(x, "float32")

    def train_step(self, data: Any) -> dict[str, Any]:
        x = self._batch_x(data)
        with tf.GradientTape() as tape:
            total, recon, kl = self._vae_terms(x, training=True)
        grads = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        n = ops.cast(ops.shape(x)[0], "float32")
        return self._update_trackers(total, recon, kl, n)

    def test_step(self, data: Any) -> dict[str, Any]:
        x = self._batch_x(data)
        total, recon, kl = self._vae_terms(x, training=False)
        n = ops.cast(ops.shape(x)[0], "float32")
        return self._update_trackers(total, recon, kl, n)

    def _infer_fn(self, kind: str, dtype: np.dtype) -> Any:
        key = (kind, dtype.name)
        fn = self._infer_fns.get(key)
        if fn is not None:
            return fn
        spec = tf.TensorSpec((None, self.n_features), tf.as_dtype(dtype))
        encoder = self.encoder
        decoder = self.decoder

        if kind == "encode":

            def forward(x: Any) -> Any:
                z_mean, z_log_var, _ = encoder(tf.cast(x, tf.float32), training=False)
                return z_mean, z_log_var
        else:

            def forward(x: Any) -> Any:
                z_mean, _, _ = encoder(tf.cast(x, tf.float32), training=False)
                return decoder(z_mean, training=False)

        fn = tf.function(forward, input_signature=[spec])
        self._infer_fns[key] = fn
        return fn

    def _batches(self, x: np.ndarray, batch_size: int, kind: str) -> list[Any]:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise DataError(
                f"{kind} input: expected shape (rows, {self.n_features}), got {x.shape}"
            )
        fast = x.dtype in (np.uint8, np.float32)
        fn = self._infer_fn(kind, x.dtype if fast else np.dtype(np.float32))
        out = []
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start : start + batch_size]
            if not fast:
                chunk = chunk.astype(np.float32)
            out.append(fn(chunk))
        return out

    def encode(self, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Posterior parameters ``(z_mean, z_log_var)``, each float32 ``(rows, coding_size)``.

        Deterministic (inference mode, no sampling); runs in batches of ``batch_size`` through a
        traced function, without a float copy of a uint8 ``x``.

        Raises:
            DataError: if ``x`` is not 2-D with ``n_features`` columns.
        """
        x = np.asarray(x)
        parts = self._batches(x, batch_size, "encode")
        if not parts:
            empty = np.zeros((0, self.params.coding_size), dtype=np.float32)
            return empty, empty.copy()
        z_mean = np.concatenate([p[0].numpy() for p in parts]).astype(np.float32, copy=False)
        z_log_var = np.concatenate([p[1].numpy() for p in parts]).astype(np.float32, copy=False)
        return z_mean, z_log_var

    def reconstruct(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """``decoder(z_mean)`` probabilities, float32 ``(rows, n_features)``; deterministic.

        Raises:
            DataError: if ``x`` is not 2-D with ``n_features`` columns.
        """
        x = np.asarray(x)
        parts = self._batches(x, batch_size, "reconstruct")
        if not parts:
            return np.zeros((0, self.n_features), dtype=np.float32)
        return np.concatenate([p.numpy() for p in parts]).astype(np.float32, copy=False)


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
    """Linear KL warm-up: at the start of epoch ``e`` (0-based) sets ``model.kl_weight`` to
    ``kl_beta * min(1, (e + 1) / warmup_epochs)``; with ``warmup_epochs == 0`` it is ``kl_beta``
    throughout.

    Args:
        kl_beta: Final KL weight; ``None`` reads ``model.params.kl_beta`` when training starts.
        warmup_epochs: Epochs of the ramp; ``None`` reads ``model.params.kl_warmup_epochs``.

    Raises:
        ValueError: on a negative ``kl_beta`` or ``warmup_epochs``.
    """

    def __init__(self, kl_beta: float | None = None, warmup_epochs: int | None = None) -> None:
        super().__init__()
        if kl_beta is not None and kl_beta < 0:
            raise ValueError(f"kl_beta: expected a number >= 0, got {kl_beta!r}")
        if warmup_epochs is not None and warmup_epochs < 0:
            raise ValueError(f"warmup_epochs: expected an integer >= 0, got {warmup_epochs!r}")
        self.kl_beta = None if kl_beta is None else float(kl_beta)
        self.warmup_epochs = None if warmup_epochs is None else int(warmup_epochs)

    @classmethod
    def from_params(cls, params: TrialParams) -> KLWarmup:
        """The warm-up ``params.kl_beta`` / ``params.kl_warmup_epochs`` ask for."""
        return cls(params.kl_beta, params.kl_warmup_epochs)

    def _resolved(self) -> tuple[float, int]:
        beta, epochs = self.kl_beta, self.warmup_epochs
        if beta is None or epochs is None:
            params = getattr(self.model, "params", None)
            if not isinstance(params, TrialParams):
                raise ValueError(
                    "KLWarmup: expected kl_beta and warmup_epochs, or a model with TrialParams "
                    f"in .params, got {type(self.model).__name__}"
                )
            beta = params.kl_beta if beta is None else beta
            epochs = params.kl_warmup_epochs if epochs is None else epochs
        return beta, epochs

    def weight_at(self, epoch: int) -> float:
        """The KL weight used during 0-based ``epoch``."""
        beta, epochs = self._resolved()
        if epochs == 0:
            return beta
        return beta * min(1.0, (epoch + 1) / epochs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.kl_weight.assign(self.weight_at(epoch))


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
    """Build and compile the VAE for ``params`` and ``n_features`` input columns.

    Speed switches (none changes the model's maths except ``mixed_bfloat16``):
    ``fused_adam`` updates with :class:`FusedAdam` (the same Adam, one fused kernel per
    variable); ``sparse_input`` makes the first encoder layer a :class:`SparseInputDense`
    (ignored with ``jit_compile=True``: XLA has no sparse kernel); ``mixed_bfloat16`` computes
    the Dense layers in bfloat16 with float32 weights, sampling, sigmoid and loss;
    ``steps_per_execution`` is passed to ``Model.compile``.

    Calls ``keras.utils.set_random_seed(params.seed)`` (Python, NumPy and TensorFlow global
    seeds, so ``fit``'s shuffling is reproducible too); layer initialisers, dropout and sampling
    noise are also seeded explicitly from ``params.seed``, so the same params give the same
    initial weights and the same first steps. Compiled with ``Adam(params.learning_rate)``;
    ``jit_compile="auto"`` means XLA on a GPU, none on a CPU-only machine.

    Raises:
        DataError: if ``n_features`` is not an integer >= 1.
    """
    _check_n_features(n_features)
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
        params,
        n_features,
        name="vae",
    )
    adam = FusedAdam if fused_adam else keras.optimizers.Adam
    vae.compile(
        optimizer=adam(params.learning_rate),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return vae
