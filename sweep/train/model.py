"""The VAE architecture: a Sampling layer, encoder/decoder builders and the ``VAE`` model.

The builders read one :class:`sweep.params.TrialParams` and the number of input columns; the
``VAE`` takes its loss settings as explicit arguments. Optimizer, seeding, compilation, KL
warm-up and callbacks are the training plan's (:mod:`sweep.train.plan`, whose
:func:`~sweep.train.plan.build_vae` puts it all together). Inputs may be uint8 (0/1); the model
casts each batch to float32, so a dataset never needs a float copy. TensorFlow backend only
(``train_step`` uses ``tf.GradientTape``).

Loss: :func:`sweep.train.losses.vae_loss`, ``total = reconstruction + kl_weight * KL``, where
reconstruction is a per-row mean over features, KL a per-row sum over latent dimensions, both
then averaged over the batch. The ELBO-scale beta is ``kl_weight * n_features``.

This module imports keras, tensorflow and numpy, never optuna or sqlalchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from sweep.errors import DataError
from sweep.params import LOSSES
from sweep.params import TrialParams
from sweep.train.losses import LossOutput
from sweep.train.losses import vae_loss

_SAMPLING_SEED_OFFSET = 0
_ENCODER_SEED_OFFSET = 1_000
_DECODER_SEED_OFFSET = 2_000
_DROPOUT_SEED_OFFSET = 3_000
LABEL_SEED_OFFSET = 4_000
"""``build_vae`` seeds the label-bit hiding (``label_dropout``) with ``params.seed`` plus this."""


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


def check_n_features(n_features: int) -> None:
    """Check an input width.

    Raises:
        DataError: if ``n_features`` is not an integer >= 1.
    """
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


@keras.saving.register_keras_serializable(package="sweep")
class SparseInputDense(keras.layers.Dense):
    """A ``Dense`` layer whose matmul skips the zeros of its input: same maths, faster on sparse x.

    ``activation(x @ kernel + bias)`` is computed as a sparse-dense product over the nonzero
    entries of ``x`` (any values, not only 0/1), so its cost scales with the number of nonzeros,
    forward and backward. Outputs equal ``Dense``'s up to floating-point summation order.
    XLA has no sparse kernel, so :func:`sweep.train.plan.build_vae` uses it only without
    ``jit_compile=True``.
    """

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        y = self.linear(inputs)
        if self.activation is not None:
            y = self.activation(y)
        return y

    def linear(self, inputs: Any) -> Any:
        """``inputs @ kernel + bias`` before the activation, over the nonzeros of ``inputs``."""
        x = tf.cast(inputs, tf.float32)
        where = tf.where(tf.not_equal(x, 0))
        sparse = tf.SparseTensor(where, tf.gather_nd(x, where), tf.shape(x, out_type=tf.int64))
        # The sparse kernel runs in float32 (the variable's dtype) whatever the compute dtype.
        y = tf.sparse.sparse_dense_matmul(sparse, tf.cast(self.kernel, tf.float32))
        y = tf.cast(y, self.compute_dtype)
        if self.use_bias:
            y = y + tf.cast(self.bias, self.compute_dtype)
        return y


def _linear(layer: keras.layers.Dense, x: Any) -> Any:
    """A Dense layer's ``x @ kernel + bias``, without its activation."""
    if isinstance(layer, SparseInputDense):
        return layer.linear(x)
    y = ops.matmul(ops.cast(x, layer.compute_dtype), ops.cast(layer.kernel, layer.compute_dtype))
    return y + ops.cast(layer.bias, layer.compute_dtype) if layer.use_bias else y


@dataclass(frozen=True)
class _LabelHead:
    """The parts of a :func:`build_encoder`/:func:`build_decoder` pair that decode the label.

    ``first`` reads the input; ``encoder_rest`` maps its output to ``[z_mean, z_log_var]``;
    ``decoder_hidden`` maps a code to the output layer's input; ``output`` is the final sigmoid
    ``Dense``.
    """

    first: keras.layers.Dense
    encoder_rest: keras.Model
    decoder_hidden: keras.Model
    output: keras.layers.Dense


def _label_head(encoder: keras.Model, decoder: keras.Model, n_features: int) -> _LabelHead | None:
    """The label-decoding parts of a float32 model laid out as the builders make it, or None.

    None for any other layout (say a bfloat16 policy, or a hand-built encoder), whose label
    outputs then come from full reconstructions.
    """
    try:
        first = encoder.get_layer("encoder_dense_0")
        output = decoder.layers[-1]
    except ValueError:
        return None
    plain = (
        isinstance(first, keras.layers.Dense)
        and isinstance(output, keras.layers.Dense)
        and first.compute_dtype == "float32"
        and output.compute_dtype == "float32"
        and first.input is encoder.inputs[0]
        and tuple(first.kernel.shape)[0] == n_features
        and output.output is decoder.outputs[0]
        and output.units == n_features
        and output.activation is keras.activations.sigmoid
    )
    if not plain:
        return None
    try:  # Keras refuses a sub-model whose output reaches the input by another path.
        encoder_rest = keras.Model(first.output, encoder.outputs[:2])
        decoder_hidden = keras.Model(decoder.inputs[0], output.input)
    except ValueError:
        return None
    return _LabelHead(first, encoder_rest, decoder_hidden, output)


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
    check_n_features(n_features)
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
    check_n_features(n_features)
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


def hide_label_bits(x: Any, share: float, seed: keras.random.SeedGenerator) -> tuple[Any, Any]:
    """Hide the input label bit (the **last** column) of a share of the rows of a batch.

    Each row is hidden with probability ``share``, independently; a hidden bit is replaced by
    a fair coin, 0 or 1 with probability 1/2 each: the two values the symmetric label-hidden
    probe (:func:`sweep.train.metrics.symmetric_label_probe`) decodes and averages, so a hidden
    row looks to the model exactly like a probe's input, and only the marks tell the label.
    The other columns are unchanged. Deterministic for a seed: the same ``SeedGenerator`` seed
    gives the same rows and coins, batch after batch.

    Args:
        x: ``(batch, n_features)`` float rows.
        share: Probability in [0, 1] that a row's bit is hidden (``TrialParams.label_dropout``).
        seed: The generator the draws come from.

    Returns:
        ``(inputs, hidden)``: the rows with hidden bits replaced, and the ``(batch,)`` boolean
        mask of the hidden rows.
    """
    x = ops.convert_to_tensor(x)
    n = ops.shape(x)[0]
    hidden = keras.random.uniform((n,), seed=seed) < share
    coin = ops.cast(keras.random.uniform((n,), seed=seed) < 0.5, x.dtype)
    label = ops.where(hidden, coin, x[:, -1])
    return ops.concatenate([x[:, :-1], ops.expand_dims(label, -1)], axis=-1), hidden


_OUTPUTS: dict[str, tuple[str, ...]] = {
    "encode": ("codes", "codes"),
    "reconstruct": ("features",),
    "posterior": ("features", "codes", "codes"),
    "score": ("features", "codes", "codes", "label", "label"),
    "label": ("label", "label"),
}
"""What each of the VAE's traced inference functions returns, by width: a row of the input,
a code, or one label probability per row."""


@keras.saving.register_keras_serializable(package="sweep")
class VAE(keras.Model):
    """Variational autoencoder over binary rows, trained with a custom step.

    ``fit``/``evaluate`` accept batches ``x`` (uint8 or float) or ``(x, x)``. Logged metrics are
    ``loss`` (reconstruction + kl_weight * KL), ``reconstruction_loss`` and ``kl_loss`` (the
    *unweighted* KL, comparable across betas), each a mean over the epoch's rows; validation
    uses sampled ``z`` as training does, with batch norm and dropout in inference mode.

    Args:
        encoder: ``x -> [z_mean, z_log_var, z]``.
        decoder: ``z -> probabilities``.
        n_features: Input width.
        loss: Reconstruction loss, ``"focal"`` or ``"bce"`` (:func:`sweep.train.losses.vae_loss`).
        focal_gamma: Focal-loss focusing parameter.
        focal_alpha: Focal-loss weight of the ones; ``None``: no class balancing.
        kl_weight: Initial KL weight; a KL schedule (:class:`sweep.train.plan.KLWarmup`) may
            change it between epochs.
        label_weight: Weight of the label bit (the last column) in the reconstruction loss
            (:func:`sweep.train.losses.weighted_reconstruction`); 1: the notes' loss.
        label_dropout: Share of training rows whose input label bit is hidden at each training
            step (:func:`hide_label_bits`); the targets keep the true bit, and evaluation,
            validation and inference (``test_step``, ``encode``, ``reconstruct``) never hide.
        label_seed: Seed of the hiding.

    Attributes:
        kl_weight: Non-trainable float32 variable, the current KL weight.

    Raises:
        DataError: if ``n_features`` is not an integer >= 1.
        ValueError: if ``loss`` is not ``"focal"`` or ``"bce"``.
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        n_features: int,
        *,
        loss: str,
        focal_gamma: float,
        focal_alpha: float | None,
        kl_weight: float,
        label_weight: float = 1.0,
        label_dropout: float = 0.0,
        label_seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_n_features(n_features)
        if loss not in LOSSES:
            raise ValueError(
                f"Invalid value received for argument `loss`. Expected one of {LOSSES}. "
                f"Received: loss={loss!r}"
            )
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.n_features = int(n_features)
        self.coding_size = int(encoder.outputs[0].shape[-1])
        self.loss_name = loss
        self.focal_gamma = float(focal_gamma)
        self.focal_alpha = None if focal_alpha is None else float(focal_alpha)
        self.label_weight = float(label_weight)
        self.label_dropout = float(label_dropout)
        # Only a model that hides bits has the generator (and its state variable).
        self.label_seed = (
            keras.random.SeedGenerator(label_seed) if self.label_dropout > 0.0 else None
        )
        self.kl_weight = keras.Variable(
            float(kl_weight), trainable=False, dtype="float32", name="kl_weight"
        )
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self._infer_fns: dict[tuple[str, str], Any] = {}
        self._label_head = _label_head(encoder, decoder, self.n_features)
        self.built = True

    def get_config(self) -> dict[str, Any]:
        """Encoder, decoder and loss settings, so ``model.save("x.keras")`` works."""
        return {
            "name": self.name,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "n_features": self.n_features,
            "loss": self.loss_name,
            "focal_gamma": self.focal_gamma,
            "focal_alpha": self.focal_alpha,
            "kl_weight": float(keras.ops.convert_to_numpy(self.kl_weight)),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VAE:
        """Rebuild from :meth:`get_config` (used by ``keras.saving.load_model``)."""
        values = dict(config)
        encoder = keras.saving.deserialize_keras_object(values.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(values.pop("decoder"))
        n_features = values.pop("n_features")
        return cls(encoder, decoder, n_features, **values)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, inputs: Any, training: bool = False) -> Any:
        """Reconstruction probabilities: decodes sampled ``z`` when training, else ``z_mean``."""
        x = ops.cast(inputs, "float32")
        z_mean, _, z = self.encoder(x, training=training)
        return self.decoder(z if training else z_mean, training=training)

    def _loss(self, x: Any, training: bool, inputs: Any = None) -> LossOutput:
        """The loss of reconstructing ``x`` from ``inputs`` (default: ``x`` itself)."""
        z_mean, z_log_var, z = self.encoder(x if inputs is None else inputs, training=training)
        probs = self.decoder(z, training=training)
        return vae_loss(
            x,
            probs,
            z_mean,
            z_log_var,
            loss=self.loss_name,
            gamma=self.focal_gamma,
            alpha=self.focal_alpha,
            kl_weight=self.kl_weight,
            label_weight=self.label_weight,
        )

    def _update_trackers(self, out: LossOutput, n: Any) -> dict[str, Any]:
        self.total_loss_tracker.update_state(out.total, sample_weight=n)
        self.reconstruction_loss_tracker.update_state(out.reconstruction, sample_weight=n)
        self.kl_loss_tracker.update_state(out.kl, sample_weight=n)
        return {m.name: m.result() for m in self.metrics}

    @staticmethod
    def _batch_x(data: Any) -> Any:
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return ops.cast(x, "float32")

    def train_step(self, data: Any) -> dict[str, Any]:
        x = self._batch_x(data)
        inputs = None
        if self.label_seed is not None:  # training rows only; the targets keep the true bit
            inputs, _ = hide_label_bits(x, self.label_dropout, self.label_seed)
        with tf.GradientTape() as tape:
            out = self._loss(x, training=True, inputs=inputs)
        grads = tape.gradient(out.total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        n = ops.cast(ops.shape(x)[0], "float32")
        return self._update_trackers(out, n)

    def test_step(self, data: Any) -> dict[str, Any]:
        x = self._batch_x(data)
        out = self._loss(x, training=False)
        n = ops.cast(ops.shape(x)[0], "float32")
        return self._update_trackers(out, n)

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
        elif kind == "posterior":

            def forward(x: Any) -> Any:
                z_mean, z_log_var, _ = encoder(tf.cast(x, tf.float32), training=False)
                return decoder(z_mean, training=False), z_mean, z_log_var
        elif kind in ("label", "score"):
            head = self._label_head
            assert head is not None
            own = kind == "score"

            def forward(x: Any) -> Any:
                x = tf.cast(x, tf.float32)
                n = tf.shape(x)[0]
                # (marks, 0) @ W is computed once; a bit of 1 only adds W's label row.
                pre_off = _linear(head.first, tf.concat([x[:, :-1], tf.zeros_like(x[:, -1:])], 1))
                label_row = tf.cast(head.first.kernel[-1], pre_off.dtype)
                pre = [pre_off, pre_off + label_row]
                if own:  # the row's own bit: exactly one of the two sums above
                    pre.append(pre_off + tf.cast(x[:, -1:], pre_off.dtype) * label_row)
                activation = head.first.activation or (lambda t: t)
                z_mean, z_log_var = head.encoder_rest(
                    tf.concat([activation(p) for p in pre], 0), training=False
                )
                h = head.decoder_hidden(z_mean, training=False)
                out = head.output
                logit = tf.matmul(h[: 2 * n], out.kernel[:, -1:])[:, 0]
                label = tf.sigmoid(logit + out.bias[-1] if out.use_bias else logit)
                if not own:
                    return label[:n], label[n:]
                probs = out(h[2 * n :], training=False)
                return probs, z_mean[2 * n :], z_log_var[2 * n :], label[:n], label[n:]
        else:

            def forward(x: Any) -> Any:
                z_mean, _, _ = encoder(tf.cast(x, tf.float32), training=False)
                return decoder(z_mean, training=False)

        fn = tf.function(forward, input_signature=[spec])
        self._infer_fns[key] = fn
        return fn

    def _check_rows(self, x: np.ndarray, kind: str) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise DataError(
                f"{kind} input: expected shape (rows, {self.n_features}), got {x.shape}"
            )

    def _outputs(self, x: np.ndarray, batch_size: int, kind: str) -> tuple[np.ndarray, ...]:
        """Run ``kind``'s traced function over ``x`` in batches of ``batch_size``; each of its
        outputs concatenated over the batches, float32 (no float copy of a uint8 ``x``)."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        x = np.asarray(x)
        self._check_rows(x, kind)
        fast = x.dtype in (np.uint8, np.float32)
        fn = self._infer_fn(kind, x.dtype if fast else np.dtype(np.float32))
        parts = []
        for start in range(0, x.shape[0], batch_size):
            chunk = x[start : start + batch_size]
            out = fn(chunk if fast else chunk.astype(np.float32))
            parts.append(out if isinstance(out, (tuple, list)) else (out,))
        widths = {"features": (self.n_features,), "codes": (self.coding_size,), "label": ()}
        if not parts:
            return tuple(np.zeros((0, *widths[w]), dtype=np.float32) for w in _OUTPUTS[kind])
        return tuple(
            np.concatenate([p[i].numpy() for p in parts]).astype(np.float32, copy=False)
            for i in range(len(_OUTPUTS[kind]))
        )

    def encode(self, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Posterior parameters ``(z_mean, z_log_var)``, each float32 ``(rows, coding_size)``.

        Deterministic (inference mode, no sampling); runs in batches of ``batch_size`` through a
        traced function, without a float copy of a uint8 ``x``.

        Raises:
            DataError: if ``x`` is not 2-D with ``n_features`` columns.
        """
        z_mean, z_log_var = self._outputs(x, batch_size, "encode")
        return z_mean, z_log_var

    def reconstruct(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """``decoder(z_mean)`` probabilities, float32 ``(rows, n_features)``; deterministic.

        Raises:
            DataError: if ``x`` is not 2-D with ``n_features`` columns.
        """
        return self._outputs(x, batch_size, "reconstruct")[0]

    def reconstruct_and_encode(
        self, x: np.ndarray, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`reconstruct` and :meth:`encode` of ``x`` in one encoder pass.

        Returns:
            float32 probabilities ``(rows, n_features)``, ``z_mean`` and ``z_log_var``
            ``(rows, coding_size)``.

        Raises:
            DataError: if ``x`` is not 2-D with ``n_features`` columns.
        """
        probs, z_mean, z_log_var = self._outputs(x, batch_size, "posterior")
        return probs, z_mean, z_log_var

    def scoring_outputs(
        self, x: np.ndarray, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`reconstruct_and_encode` and :meth:`label_outputs` of ``x`` in one pass.

        Needs :attr:`decodes_label_alone`. The first encoder layer's product is computed once
        for the row and both label bits; the decoder's output layer runs in full for the row
        only. Equal to the separate calls up to floating-point summation order.

        Returns:
            float32 probabilities ``(rows, n_features)``, ``z_mean`` and ``z_log_var``
            ``(rows, coding_size)``, then the label probabilities ``(rows,)`` with the bit at
            0 and at 1.

        Raises:
            DataError: if ``x`` is not 2-D with ``n_features`` columns.
            ValueError: if the model cannot decode the label alone.
        """
        if self._label_head is None:
            raise ValueError("scoring_outputs: this model's layout cannot decode the label alone")
        probs, z_mean, z_log_var, off, on = self._outputs(x, batch_size, "score")
        return probs, z_mean, z_log_var, off, on

    @property
    def decodes_label_alone(self) -> bool:
        """Whether :meth:`label_outputs` runs without full reconstructions (float32 models
        laid out by :func:`build_encoder` and :func:`build_decoder`)."""
        return self._label_head is not None

    def label_outputs(self, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """The label probability of every row with its input bit set to 0, and set to 1.

        Equals the last column of :meth:`reconstruct` of the two inputs up to floating-point
        summation order, at a fraction of the cost when :attr:`decodes_label_alone`: the first
        encoder layer's product is computed once for both bits (they differ in one input
        column) and the decoder computes only the label's output. Otherwise both inputs are
        reconstructed in full. The label is the last column.

        Returns:
            Two float32 ``(rows,)`` arrays: the bit at 0, the bit at 1.

        Raises:
            DataError: if ``x`` is not 2-D with ``n_features`` columns.
        """
        x = np.asarray(x)
        if self._label_head is None:
            self._check_rows(x, "label")
            rows = np.array(x, copy=True)
            rows[:, -1] = 0
            off = self.reconstruct(rows, batch_size)[:, -1]
            rows[:, -1] = 1
            return off, self.reconstruct(rows, batch_size)[:, -1]
        off, on = self._outputs(x, batch_size, "label")
        return off, on
