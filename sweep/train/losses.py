"""The VAE loss: pure functions over ``keras.ops`` and the :class:`LossOutput` record.

The per-row terms return one value per row (shape ``(batch,)``); :func:`vae_loss` averages them
over the batch and combines them: ``total = reconstruction + kl_weight * kl``.

Scale: the reconstruction terms are **means over features**, not sums, so ``kl_beta`` keeps the
meaning it has in the notes' code (1e-4 .. 1e-2). The equivalent weight on the usual ELBO scale
(reconstruction summed over features) is ``kl_beta * n_features``.

This module imports keras and the stdlib-only :mod:`sweep.params` (no optuna, no sqlalchemy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import ops

from sweep.params import LOSSES

Tensor = Any
"""A backend tensor, a NumPy array or anything ``keras.ops.convert_to_tensor`` accepts."""


def focal_reconstruction(
    y_true: Tensor, y_pred: Tensor, gamma: float, alpha: float | None = None
) -> Tensor:
    """Binary focal cross-entropy per row, averaged over features.

    ``mean_j( w_j * (1 - p_t)^gamma * BCE(y_j, p_j) )`` with ``p_t = y*p + (1-y)*(1-p)``, where the
    BCE clips ``p`` to ``[epsilon, 1 - epsilon]`` as Keras does, and ``w_j = alpha`` for ones and
    ``1 - alpha`` for zeros. This is Keras' ``binary_focal_crossentropy`` with class balancing
    switched on exactly when ``alpha`` is given (Keras silently ignores ``alpha`` otherwise).

    Args:
        y_true: Binary targets, shape ``(batch, n_features)``, any numeric dtype (uint8 is fine).
        y_pred: Probabilities in ``[0, 1]``, same shape, float.
        gamma: Focusing parameter (>= 0); ``gamma = 0`` with ``alpha=None`` is plain BCE.
        alpha: Weight of the ones; ``None`` means no class balancing (all weights 1).

    Returns:
        Tensor of shape ``(batch,)`` in ``y_pred``'s dtype.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return keras.losses.binary_focal_crossentropy(
        y_true,
        y_pred,
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else float(alpha),
        gamma=float(gamma),
        from_logits=False,
    )


def bce_reconstruction(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Binary cross-entropy per row, averaged over features (``p`` clipped to Keras' epsilon).

    Returns:
        Tensor of shape ``(batch,)`` in ``y_pred``'s dtype.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    return keras.losses.binary_crossentropy(y_true, y_pred, from_logits=False)


def reconstruction(
    y_true: Tensor, y_pred: Tensor, *, loss: str, gamma: float, alpha: float | None
) -> Tensor:
    """The per-row reconstruction loss named by ``loss``.

    Args:
        y_true: Binary targets, shape ``(batch, n_features)``.
        y_pred: Probabilities, same shape.
        loss: ``"focal"`` (:func:`focal_reconstruction` with ``gamma`` and ``alpha``) or
            ``"bce"`` (:func:`bce_reconstruction`; ``gamma`` and ``alpha`` are ignored).
        gamma: Focusing parameter of the focal loss.
        alpha: Weight of the ones in the focal loss; ``None``: no class balancing.

    Returns:
        Tensor of shape ``(batch,)``.

    Raises:
        ValueError: ``loss`` is not one of :data:`LOSSES`.
    """
    if loss == "bce":
        return bce_reconstruction(y_true, y_pred)
    if loss == "focal":
        return focal_reconstruction(y_true, y_pred, gamma=gamma, alpha=alpha)
    raise ValueError(
        f"Invalid value received for argument `loss`. Expected one of {LOSSES}. "
        f"Received: loss={loss!r}"
    )


def weighted_reconstruction(
    y_true: Tensor,
    y_pred: Tensor,
    *,
    loss: str,
    gamma: float,
    alpha: float | None,
    label_weight: float = 1.0,
) -> Tensor:
    """:func:`reconstruction` with the label (the **last** column) weighted by ``label_weight``.

    Per row: ``(sum over marks of l_j + label_weight * l_label) / n_features``, where ``l`` is
    the per-cell loss :func:`reconstruction` averages; the denominator stays ``n_features``, so
    ``label_weight = 1`` is exactly :func:`reconstruction` (the notes' loss, computed the same
    way) and any other weight adds ``(label_weight - 1) * l_label / n_features``.

    Returns:
        Tensor of shape ``(batch,)``.
    """
    base = reconstruction(y_true, y_pred, loss=loss, gamma=gamma, alpha=alpha)
    if label_weight == 1.0:
        return base
    y_pred = ops.convert_to_tensor(y_pred)
    n_features = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
    label = reconstruction(
        y_true[:, -1:], y_pred[:, -1:], loss=loss, gamma=gamma, alpha=alpha
    )  # a mean over one column: the label's own term
    return base + (float(label_weight) - 1.0) / n_features * label


def kl_divergence(z_mean: Tensor, z_log_var: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, I)) per row for a diagonal Gaussian posterior.

    ``-0.5 * sum_k(1 + log_var_k - exp(log_var_k) - mean_k^2)``: summed (not averaged) over the
    latent dimensions, always >= 0, and 0 exactly when ``mean = 0`` and ``log_var = 0``.

    Returns:
        Tensor of shape ``(batch,)``.
    """
    z_mean = ops.convert_to_tensor(z_mean)
    z_log_var = ops.cast(z_log_var, z_mean.dtype)
    return -0.5 * ops.sum(1.0 + z_log_var - ops.exp(z_log_var) - ops.square(z_mean), axis=-1)


@dataclass(frozen=True)
class LossOutput:
    """One batch's loss, its terms kept apart (as scvi-tools' ``LossOutput``).

    Attributes:
        total: ``reconstruction + kl_weight * kl``, the value to differentiate.
        reconstruction: Batch mean of the per-row reconstruction loss.
        kl: Batch mean of the per-row KL, *unweighted* (comparable across KL weights).
    """

    total: Tensor
    reconstruction: Tensor
    kl: Tensor


def vae_loss(
    x: Tensor,
    probs: Tensor,
    z_mean: Tensor,
    z_log_var: Tensor,
    *,
    loss: str,
    gamma: float,
    alpha: float | None,
    kl_weight: Tensor,
    label_weight: float = 1.0,
) -> LossOutput:
    """The VAE loss of one batch: reconstruction of ``x`` by ``probs`` plus weighted KL.

    Args:
        x: Binary inputs, shape ``(batch, n_features)``.
        probs: Decoder probabilities for ``x``, same shape.
        z_mean: Posterior means, shape ``(batch, coding_size)``.
        z_log_var: Posterior log-variances, same shape.
        loss: Reconstruction loss, see :func:`reconstruction`.
        gamma: Focal-loss focusing parameter.
        alpha: Focal-loss weight of the ones; ``None``: no class balancing.
        kl_weight: Weight of the KL term (a float or a scalar variable), cast to float32.
        label_weight: Weight of the label bit (the last column) in the reconstruction, see
            :func:`weighted_reconstruction`; 1 is the notes' loss.

    Returns:
        The :class:`LossOutput` with batch means of both terms.

    Raises:
        ValueError: ``loss`` is not one of :data:`LOSSES`.
    """
    recon = ops.mean(
        weighted_reconstruction(
            x, probs, loss=loss, gamma=gamma, alpha=alpha, label_weight=label_weight
        )
    )
    kl = ops.mean(kl_divergence(z_mean, z_log_var))
    total = recon + ops.cast(kl_weight, "float32") * kl
    return LossOutput(total=total, reconstruction=recon, kl=kl)
