"""The levers beyond the notes: ``label_weight`` and ``label_dropout``, and why they are honest:
a model that only copies the input bit scores chance on the label-hidden objective."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from sweep.errors import ParamError
from sweep.params import NOTES_BASELINE
from sweep.params import TrialParams
from sweep.space import load_space
from sweep.train.data import load_dataset
from sweep.train.engine import hidden_threshold
from sweep.train.engine import score_split
from sweep.train.losses import reconstruction
from sweep.train.losses import vae_loss
from sweep.train.losses import weighted_reconstruction
from sweep.train.model import LABEL_SEED_OFFSET
from sweep.train.model import VAE
from sweep.train.model import Sampling
from sweep.train.model import hide_label_bits
from sweep.train.plan import build_vae

LN2 = math.log(2.0)


def _np(t: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(t), dtype=np.float64)


# --- label_weight ----------------------------------------------------------------------------


def test_label_weight_changes_the_loss_by_the_expected_amount() -> None:
    """BCE by hand: 4 columns, the last the label. Row 0: every p = 0.5, so every cell costs
    ln 2; row 1: marks at 0.5, the label 1 predicted 0.9, which costs -ln 0.9."""
    y = np.array([[1, 0, 0, 1], [0, 1, 0, 1]], np.uint8)
    p = np.array([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.9]], np.float32)
    kw: dict[str, Any] = {"loss": "bce", "gamma": 0.0, "alpha": None}
    notes = [LN2, (3 * LN2 - math.log(0.9)) / 4]
    np.testing.assert_allclose(_np(weighted_reconstruction(y, p, **kw)), notes, rtol=1e-6)
    np.testing.assert_allclose(_np(reconstruction(y, p, **kw)), notes, rtol=1e-6)  # w = 1
    weighted = [(3 * LN2 + 3 * LN2) / 4, (3 * LN2 - 3 * math.log(0.9)) / 4]  # w = 3
    got = _np(weighted_reconstruction(y, p, label_weight=3.0, **kw))
    np.testing.assert_allclose(got, weighted, rtol=1e-6)
    np.testing.assert_allclose(got - notes, [2 * LN2 / 4, -2 * math.log(0.9) / 4], rtol=1e-5)
    dropped = _np(weighted_reconstruction(y, p, label_weight=0.0, **kw))  # the marks alone
    np.testing.assert_allclose(dropped, [3 * LN2 / 4, 3 * LN2 / 4], rtol=1e-6)


def test_label_weight_reaches_the_vae_loss_with_focal_terms() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((5, 9)) < 0.4).astype(np.uint8)
    p = rng.uniform(0.05, 0.95, (5, 9)).astype(np.float32)
    z = np.zeros((5, 2), np.float32)
    kw: dict[str, Any] = {"loss": "focal", "gamma": 2.0, "alpha": 0.25, "kl_weight": 0.0}
    base = vae_loss(y, p, z, z, **kw)
    heavy = vae_loss(y, p, z, z, label_weight=50.0, **kw)
    label_term = _np(reconstruction(y[:, -1:], p[:, -1:], loss="focal", gamma=2.0, alpha=0.25))
    expected = float(_np(base.reconstruction)) + 49.0 / 9 * label_term.mean()
    assert float(_np(heavy.reconstruction)) == pytest.approx(expected, rel=1e-5)


def test_the_levers_are_checked_and_default_to_the_notes() -> None:
    assert (TrialParams().label_weight, TrialParams().label_dropout) == (1.0, 0.0)
    assert (NOTES_BASELINE.label_weight, NOTES_BASELINE.label_dropout) == (1.0, 0.0)
    for bad in ({"label_weight": -1.0}, {"label_dropout": 1.5}, {"label_dropout": -0.1}):
        with pytest.raises(ParamError, match=next(iter(bad))):
            TrialParams.from_dict(bad)
    assert TrialParams.from_dict({"label_dropout": "1"}).label_dropout == 1.0


def test_wide_and_pareto_search_the_levers_and_the_notes_space_does_not() -> None:
    for name in ("notes_wide", "notes_pareto"):
        wide = load_space(name)
        assert wide.search["label_weight"]["low"] == 1.0 and wide.search["label_weight"]["log"]
        assert wide.search["label_dropout"]["low"] == 0.0
        assert wide.search["label_dropout"]["high"] == 1.0
        values = wide.trial_values(NOTES_BASELINE)  # the notes' own levers lie inside
        assert (values["label_weight"], values["label_dropout"]) == (1.0, 0.0)
    pareto = load_space("notes_pareto").search
    assert {"encoder_units", "coding_size", "loss", "kl_warmup_epochs", "learning_rate"} <= set(
        pareto
    )
    space = load_space("notes")
    assert not {"label_weight", "label_dropout"} & (set(space.search) | set(space.fixed))


# --- label_dropout ---------------------------------------------------------------------------


def test_hiding_touches_the_expected_share_of_rows_and_only_their_bit() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((20000, 6)) < 0.5).astype(np.float32)
    x[:, -1] = 0.0  # every true bit 0: a hidden bit reads 1 exactly when its coin says so
    inputs, hidden = (
        np.asarray(keras.ops.convert_to_numpy(t))
        for t in hide_label_bits(x, 0.3, keras.random.SeedGenerator(7))
    )
    assert abs(hidden.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 20000)
    np.testing.assert_array_equal(inputs[:, :-1], x[:, :-1])  # the marks are untouched
    np.testing.assert_array_equal(inputs[~hidden, -1], 0.0)  # shown bits are the true ones
    coins = inputs[hidden, -1]
    assert set(np.unique(coins)) == {0.0, 1.0}
    assert abs(coins.mean() - 0.5) < 4 * math.sqrt(0.25 / coins.size)  # a fair coin
    again, hidden_again = hide_label_bits(x, 0.3, keras.random.SeedGenerator(7))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again), inputs)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(hidden_again), hidden)
    _, other = hide_label_bits(x, 0.3, keras.random.SeedGenerator(8))
    assert not np.array_equal(keras.ops.convert_to_numpy(other), hidden)
    for share, expected in ((0.0, 0.0), (1.0, 1.0)):
        _, mask = hide_label_bits(x, share, keras.random.SeedGenerator(7))
        assert keras.ops.convert_to_numpy(mask).mean() == expected


TINY: dict[str, Any] = {"encoder_units": (16,), "coding_size": 3, "batch_size": 64, "seed": 5}


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w.numpy()) for w in model.trainable_weights]


def test_training_steps_hide_inputs_keep_true_targets_and_evaluation_never_hides() -> None:
    rng = np.random.default_rng(1)
    x = (rng.random((64, 21)) < 0.3).astype(np.float32)
    x[:, -1] = rng.random(64) < 0.5
    plain = build_vae(TrialParams(**TINY), 21, jit_compile=False)
    hiding = build_vae(TrialParams(**TINY, label_dropout=1.0), 21, jit_compile=False)
    twin = build_vae(TrialParams(**TINY, label_dropout=1.0), 21, jit_compile=False)
    for a, b in zip(_weights(plain), _weights(hiding), strict=True):
        np.testing.assert_array_equal(a, b)
    # Validation and inference never hide: same weights, same numbers.
    assert plain.evaluate(x, verbose=0) == hiding.evaluate(x, verbose=0)
    np.testing.assert_array_equal(plain.reconstruct(x), hiding.reconstruct(x))
    # A training step encodes the hidden inputs and scores against the true rows: its loss is
    # the plain model's loss for (inputs = hidden rows, targets = x), drawn from the same seed.
    inputs, hidden = hide_label_bits(x, 1.0, keras.random.SeedGenerator(5 + LABEL_SEED_OFFSET))
    assert bool(keras.ops.all(hidden))
    flipped = keras.ops.convert_to_numpy(inputs)[:, -1] != x[:, -1]
    assert 10 < flipped.sum() < 54  # about half of the coins differ from the true bit
    expected = plain._loss(x, training=True, inputs=inputs)
    logs = hiding.train_on_batch(x, return_dict=True)
    assert logs["loss"] == pytest.approx(float(_np(expected.total)), rel=1e-5)
    plain_targets = build_vae(TrialParams(**TINY), 21, jit_compile=False)
    wrong = plain_targets._loss(inputs, training=True)  # if the targets were hidden too
    assert logs["reconstruction_loss"] != pytest.approx(float(_np(wrong.reconstruction)))
    # Deterministic for a seed: the twin takes the very same step once it has made the same
    # calls (the encoder's Sampling layer draws noise in evaluate and reconstruct too).
    twin.evaluate(x, verbose=0)
    twin.reconstruct(x)
    assert twin.train_on_batch(x, return_dict=True) == pytest.approx(logs, rel=1e-6)
    for a, b in zip(_weights(hiding), _weights(twin), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# --- a bit-copier scores chance --------------------------------------------------------------


def _bit_copier(n_features: int) -> VAE:
    """A VAE whose label output only copies the input bit: z = the bit, label = sigmoid(20 bit
    - 10); the marks' outputs are 0.5. (Its confidence must not vary with the marks: the probe's
    two float32 outputs would then sum to 1 only up to round-off, which an AUROC can rank.)"""
    x = keras.Input((n_features,))
    z_mean = keras.layers.Dense(1, name="z_mean")(x)
    z_log_var = keras.layers.Dense(1, name="z_log_var")(x)
    encoder = keras.Model(x, [z_mean, z_log_var, Sampling(seed=0)([z_mean, z_log_var])])
    kernel = np.zeros((n_features, 1), np.float32)
    kernel[-1, 0] = 1.0  # z: the label bit
    encoder.get_layer("z_mean").set_weights([kernel, np.zeros(1, np.float32)])
    encoder.get_layer("z_log_var").set_weights([np.zeros_like(kernel), np.zeros(1, np.float32)])
    code = keras.Input((1,))
    out = keras.layers.Dense(n_features, activation="sigmoid", name="out")
    decoder = keras.Model(code, out(code))
    weights = np.zeros((1, n_features), np.float32)
    bias = np.zeros(n_features, np.float32)
    weights[0, -1], bias[-1] = 20.0, -10.0
    out.set_weights([weights, bias])
    return VAE(encoder, decoder, n_features, loss="bce", focal_gamma=0.0, focal_alpha=None,
               kl_weight=0.0)  # fmt: skip


def test_a_model_that_only_copies_the_bit_scores_chance_on_the_label_hidden_objective(
    synthetic_npz: Path,
) -> None:
    data = load_dataset(synthetic_npz)
    model = _bit_copier(data.n_features)
    probs = model.reconstruct(data.val)
    np.testing.assert_array_equal(probs[:, -1] > 0.5, data.val[:, -1] == 1)  # it copies the bit
    # The engine's own scoring path, as every trial is scored (threshold from training rows).
    threshold = hidden_threshold(model, data)
    metrics = score_split(model, data, data.val, threshold, "validation").metrics
    assert metrics["expression.auroc"] == 1.0  # the visible bit looks perfect...
    assert metrics["expression_hidden.auroc"] == 0.5  # ...the objective sees chance
    assert metrics["expression_hidden.auprc"] == pytest.approx(data.val[:, -1].mean())
