"""sweep.train.losses against NumPy references: focal/BCE reconstruction, the KL term and the
combined ``vae_loss`` record."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from sweep.train.losses import LossOutput
from sweep.train.losses import bce_reconstruction
from sweep.train.losses import focal_reconstruction
from sweep.train.losses import kl_divergence
from sweep.train.losses import reconstruction
from sweep.train.losses import vae_loss

EPS = keras.config.epsilon()
SHAPES = [(1, 5), (7, 41), (3, 12001)]


def _np(t: object) -> np.ndarray:
    return keras.ops.convert_to_numpy(t)


def _focal_ref(y: np.ndarray, p: np.ndarray, gamma: float, alpha: float | None) -> np.ndarray:
    # Clip in the predictions' own dtype (float32), as Keras does, then compute in float64.
    pc = np.clip(p, p.dtype.type(EPS), p.dtype.type(1.0 - EPS)).astype(np.float64)
    y = y.astype(np.float64)
    p = p.astype(np.float64)
    bce = -(y * np.log(pc) + (1.0 - y) * np.log(1.0 - pc))
    p_t = y * p + (1.0 - y) * (1.0 - p)
    loss = (1.0 - p_t) ** gamma * bce
    if alpha is not None:
        loss = (y * alpha + (1.0 - y) * (1.0 - alpha)) * loss
    return loss.mean(axis=-1)


def _bce_ref(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return _focal_ref(y, p, 0.0, None)


def _kl_ref(m: np.ndarray, lv: np.ndarray) -> np.ndarray:
    m = m.astype(np.float64)
    lv = lv.astype(np.float64)
    return -0.5 * np.sum(1.0 + lv - np.exp(lv) - m**2, axis=-1)


def _data(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(shape) < 0.3).astype(np.uint8)
    p = rng.uniform(0.001, 0.999, size=shape).astype(np.float32)
    return y, p


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gamma", [0.0, 1.5, 2.0, 3.3])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.75])
def test_focal_matches_numpy_reference(
    shape: tuple[int, int], gamma: float, alpha: float | None
) -> None:
    y, p = _data(shape, seed=int(gamma * 10) + shape[1])
    got = _np(focal_reconstruction(y, p, gamma=gamma, alpha=alpha))
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, _focal_ref(y, p, gamma, alpha), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", SHAPES)
def test_bce_matches_numpy_reference(shape: tuple[int, int]) -> None:
    y, p = _data(shape, seed=shape[1])
    got = _np(bce_reconstruction(y, p))
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, _bce_ref(y, p), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("alpha", [None, 0.4])
def test_saturated_predictions_are_clipped_like_keras(alpha: float | None) -> None:
    y = np.array([[0, 1, 0, 1], [1, 1, 0, 0]], dtype=np.uint8)
    p = np.array([[0.0, 1.0, 1.0, 0.0], [0.5, 1.0, 0.0, 1.0]], dtype=np.float32)
    focal = _np(focal_reconstruction(y, p, gamma=2.0, alpha=alpha))
    bce = _np(bce_reconstruction(y, p))
    assert np.all(np.isfinite(focal)) and np.all(np.isfinite(bce))
    np.testing.assert_allclose(focal, _focal_ref(y, p, 2.0, alpha), rtol=1e-4)
    np.testing.assert_allclose(bce, _bce_ref(y, p), rtol=1e-4)


def test_alpha_changes_the_loss_and_none_is_keras_default() -> None:
    y, p = _data((6, 50), seed=1)
    yf = y.astype(np.float32)
    none = _np(focal_reconstruction(y, p, gamma=2.0, alpha=None))
    quarter = _np(focal_reconstruction(y, p, gamma=2.0, alpha=0.25))
    three_q = _np(focal_reconstruction(y, p, gamma=2.0, alpha=0.75))
    assert not np.allclose(none, quarter)
    assert not np.allclose(quarter, three_q)
    # alpha=None is Keras' default behaviour: no class balancing at all.
    keras_default = _np(keras.losses.binary_focal_crossentropy(yf, p, gamma=2.0))
    np.testing.assert_allclose(none, keras_default, rtol=1e-6)
    # alpha given really applies (Keras needs apply_class_balancing=True for that).
    keras_balanced = _np(
        keras.losses.binary_focal_crossentropy(
            yf, p, apply_class_balancing=True, alpha=0.25, gamma=2.0
        )
    )
    np.testing.assert_allclose(quarter, keras_balanced, rtol=1e-6)


def test_gamma_zero_without_alpha_is_bce() -> None:
    y, p = _data((4, 33), seed=2)
    np.testing.assert_allclose(
        _np(focal_reconstruction(y, p, gamma=0.0)), _np(bce_reconstruction(y, p)), rtol=1e-6
    )


def test_focal_is_below_bce_and_shrinks_with_gamma() -> None:
    y, p = _data((5, 40), seed=3)
    bce = _np(bce_reconstruction(y, p))
    g1 = _np(focal_reconstruction(y, p, gamma=1.0))
    g2 = _np(focal_reconstruction(y, p, gamma=2.0))
    assert np.all(g1 < bce) and np.all(g2 < g1)


@pytest.mark.parametrize("alpha", [None, 0.6])
def test_reconstruction_picks_focal(alpha: float | None) -> None:
    y, p = _data((3, 20), seed=4)
    got = _np(reconstruction(y, p, loss="focal", gamma=1.7, alpha=alpha))
    np.testing.assert_allclose(got, _focal_ref(y, p, 1.7, alpha), rtol=1e-5)


def test_reconstruction_picks_bce_and_ignores_focal_settings() -> None:
    y, p = _data((3, 20), seed=5)
    got = _np(reconstruction(y, p, loss="bce", gamma=1.7, alpha=0.6))
    np.testing.assert_allclose(got, _bce_ref(y, p), rtol=1e-5)


def test_reconstruction_rejects_an_unknown_loss() -> None:
    y, p = _data((2, 5), seed=6)
    with pytest.raises(ValueError, match="loss='mse'"):
        reconstruction(y, p, loss="mse", gamma=2.0, alpha=None)


@pytest.mark.parametrize(("loss", "alpha"), [("focal", None), ("focal", 0.3), ("bce", None)])
@pytest.mark.parametrize("kl_weight", [0.0, 1e-3, 2.5])
def test_vae_loss_record(loss: str, alpha: float | None, kl_weight: float) -> None:
    y, p = _data((6, 30), seed=7)
    rng = np.random.default_rng(8)
    m = rng.normal(size=(6, 4)).astype(np.float32)
    lv = rng.normal(scale=0.5, size=(6, 4)).astype(np.float32)
    out = vae_loss(y, p, m, lv, loss=loss, gamma=1.5, alpha=alpha, kl_weight=kl_weight)
    assert isinstance(out, LossOutput)
    with pytest.raises(AttributeError):
        out.total = out.kl  # type: ignore[misc]
    ref = _focal_ref(y, p, 1.5, alpha) if loss == "focal" else _bce_ref(y, p)
    recon, kl, total = float(_np(out.reconstruction)), float(_np(out.kl)), float(_np(out.total))
    assert recon == pytest.approx(ref.mean(), rel=1e-5)
    assert kl == pytest.approx(_kl_ref(m, lv).mean(), rel=1e-5)
    assert kl > 0
    assert total == pytest.approx(recon + kl_weight * kl, rel=1e-6)


def test_vae_loss_takes_the_weight_from_a_variable() -> None:
    y, p = _data((4, 10), seed=9)
    m = np.ones((4, 3), dtype=np.float32)
    lv = np.zeros((4, 3), dtype=np.float32)
    weight = keras.Variable(0.0, trainable=False, dtype="float32")
    args = (y, p, m, lv)
    before = vae_loss(*args, loss="bce", gamma=0.0, alpha=None, kl_weight=weight)
    weight.assign(2.0)
    after = vae_loss(*args, loss="bce", gamma=0.0, alpha=None, kl_weight=weight)
    assert float(_np(before.total)) == pytest.approx(float(_np(before.reconstruction)))
    assert float(_np(after.total)) == pytest.approx(float(_np(after.reconstruction)) + 2.0 * 1.5)


@pytest.mark.parametrize("shape", [(1, 1), (8, 4), (5, 300)])
def test_kl_matches_numpy_reference(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[1])
    m = rng.normal(size=shape).astype(np.float32)
    lv = rng.normal(scale=1.5, size=shape).astype(np.float32)
    got = _np(kl_divergence(m, lv))
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, _kl_ref(m, lv), rtol=1e-5, atol=1e-6)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere() -> None:
    zeros = np.zeros((50, 6), dtype=np.float32)
    np.testing.assert_array_equal(_np(kl_divergence(zeros, zeros)), np.zeros(50))
    rng = np.random.default_rng(7)
    m = rng.normal(size=(50, 6)).astype(np.float32)
    lv = rng.normal(size=(50, 6)).astype(np.float32)
    assert np.all(_np(kl_divergence(m, zeros)) > 0)
    assert np.all(_np(kl_divergence(zeros, lv)) > 0)
    assert np.all(_np(kl_divergence(m, lv)) > 0)
