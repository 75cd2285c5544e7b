"""sweep.train.model (built through sweep.train.plan.build_vae): every architecture builds and
trains; inference and seeding. The plan's own pieces are tested in test_plan.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from sweep.errors import DataError
from sweep.params import ACTIVATIONS
from sweep.params import TrialParams
from sweep.train.model import VAE
from sweep.train.model import Sampling
from sweep.train.model import build_decoder
from sweep.train.model import build_encoder
from sweep.train.plan import build_vae

N_FEATURES = 41
TINY: dict[str, Any] = {"encoder_units": (32, 16), "coding_size": 4, "batch_size": 16}
LOG_KEYS = {"loss", "reconstruction_loss", "kl_loss"}


def _params(**changes: Any) -> TrialParams:
    return TrialParams(**{**TINY, **changes})


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((48, N_FEATURES)) < 0.3).astype(np.uint8)


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(w.numpy()) for w in model.trainable_weights]


def _layers(model: keras.Model, kind: type) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, kind)]


ARCHITECTURES = [
    pytest.param({"loss": "focal", "focal_alpha": None}, id="focal-noalpha"),
    pytest.param({"loss": "focal", "focal_alpha": 0.25, "focal_gamma": 1.5}, id="focal-alpha"),
    pytest.param({"loss": "bce"}, id="bce"),
    pytest.param({"decoder_batch_norm": True}, id="batchnorm"),
    pytest.param({"decoder_dropout": 0.3}, id="dropout"),
    pytest.param(
        {"decoder_batch_norm": True, "decoder_dropout": 0.3, "decoder_units": (8, 24, 12)},
        id="bn-dropout-explicit-decoder",
    ),
    pytest.param({"kl_warmup_epochs": 2, "kl_beta": 1e-2}, id="warmup"),
] + [pytest.param({"activation": a}, id=f"act-{a}") for a in ACTIVATIONS]


@pytest.mark.parametrize("changes", ARCHITECTURES)
def test_architecture_builds_and_trains_one_step(changes: dict[str, Any], x: np.ndarray) -> None:
    params = _params(**changes)
    vae = build_vae(params, N_FEATURES, jit_compile=False)

    enc_dense = [ly.units for ly in _layers(vae.encoder, keras.layers.Dense)]
    assert enc_dense == [*params.encoder_units, params.coding_size, params.coding_size]
    dec_dense = [ly.units for ly in _layers(vae.decoder, keras.layers.Dense)]
    assert dec_dense == [*params.resolved_decoder_units, N_FEATURES]
    n_hidden = len(params.resolved_decoder_units)
    n_bn = len(_layers(vae.decoder, keras.layers.BatchNormalization))
    assert n_bn == (n_hidden if params.decoder_batch_norm else 0)
    dropouts = _layers(vae.decoder, keras.layers.Dropout)
    assert len(dropouts) == (n_hidden if params.decoder_dropout > 0 else 0)
    assert all(d.rate == params.decoder_dropout for d in dropouts)
    assert vae.encoder.layers[1].activation is keras.activations.get(params.activation)

    before = _weights(vae)
    logs = vae.train_on_batch(x[:16], return_dict=True)
    assert set(logs) == LOG_KEYS
    assert all(np.isfinite(v) for v in logs.values())
    assert logs["loss"] == pytest.approx(
        logs["reconstruction_loss"] + float(vae.kl_weight) * logs["kl_loss"], rel=1e-5
    )
    after = _weights(vae)
    assert all(a.shape == b.shape for a, b in zip(after, before, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(after, before, strict=True))


def test_kl_weight_starts_at_beta_or_zero_with_warmup() -> None:
    assert float(build_vae(_params(kl_beta=3e-3), N_FEATURES).kl_weight) == pytest.approx(3e-3)
    warm = build_vae(_params(kl_beta=3e-3, kl_warmup_epochs=2), N_FEATURES)
    assert float(warm.kl_weight) == 0.0
    assert warm.kl_weight.trainable is False
    assert all(w is not warm.kl_weight for w in warm.trainable_weights)


def test_kl_loss_is_unweighted_and_total_uses_the_weight(x: np.ndarray) -> None:
    small = build_vae(_params(kl_beta=1e-4), N_FEATURES).evaluate(x, verbose=0, return_dict=True)
    big = build_vae(_params(kl_beta=1.0), N_FEATURES).evaluate(x, verbose=0, return_dict=True)
    assert small["kl_loss"] > 0
    assert small["kl_loss"] == pytest.approx(big["kl_loss"], rel=1e-5)
    assert small["reconstruction_loss"] == pytest.approx(big["reconstruction_loss"], rel=1e-5)
    assert big["loss"] == pytest.approx(big["reconstruction_loss"] + big["kl_loss"], rel=1e-5)
    assert big["loss"] > small["loss"]


def test_validation_loss_samples_z_like_training(x: np.ndarray) -> None:
    vae = build_vae(_params(), N_FEATURES)
    first = vae.evaluate(x, verbose=0, return_dict=True)
    second = vae.evaluate(x, verbose=0, return_dict=True)
    assert first["reconstruction_loss"] != second["reconstruction_loss"]
    assert first["kl_loss"] == pytest.approx(second["kl_loss"], rel=1e-6)


def test_fit_on_uint8_numpy_and_tf_data(x: np.ndarray) -> None:
    vae = build_vae(_params(), N_FEATURES, jit_compile=False)
    hist = vae.fit(x, validation_data=(x[:16],), epochs=2, batch_size=16, verbose=0)
    assert set(hist.history) == LOG_KEYS | {f"val_{k}" for k in LOG_KEYS}
    assert all(np.isfinite(v).all() for v in hist.history.values())
    ds = tf.data.Dataset.from_tensor_slices(x).batch(16)
    pairs = tf.data.Dataset.from_tensor_slices((x, x)).batch(16)
    assert ds.element_spec.dtype == tf.uint8
    hist2 = vae.fit(ds, validation_data=pairs, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(hist2.history["val_loss"][0])
    assert np.all(np.isfinite(vae.evaluate(pairs, verbose=0)))


def test_fit_with_xla(x: np.ndarray) -> None:
    vae = build_vae(
        _params(decoder_dropout=0.2, decoder_batch_norm=True), N_FEATURES, jit_compile=True
    )
    assert vae.jit_compile is True
    logs = vae.fit(x, epochs=1, batch_size=16, verbose=0).history
    assert np.isfinite(logs["loss"][0])


def test_encode_and_reconstruct_shapes_and_dtypes(x: np.ndarray) -> None:
    vae = build_vae(_params(), N_FEATURES)
    z_mean, z_log_var = vae.encode(x, batch_size=10)
    assert z_mean.shape == z_log_var.shape == (len(x), 4)
    assert z_mean.dtype == z_log_var.dtype == np.float32
    probs = vae.reconstruct(x, batch_size=10)
    assert probs.shape == x.shape and probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    # Same answer whatever the batch size or the input dtype.
    np.testing.assert_allclose(vae.encode(x)[0], z_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vae.reconstruct(x.astype(np.float32)), probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vae.reconstruct(x.astype(bool)), probs, rtol=1e-5, atol=1e-6)
    empty = vae.reconstruct(x[:0])
    assert empty.shape == (0, N_FEATURES) and empty.dtype == np.float32
    assert vae.encode(x[:0])[0].shape == (0, 4)
    with pytest.raises(DataError, match="41"):
        vae.reconstruct(x[:, :40])


def test_inference_uses_the_mean_and_training_call_samples(x: np.ndarray) -> None:
    vae = build_vae(_params(), N_FEATURES)
    first = vae.reconstruct(x)
    np.testing.assert_array_equal(vae.reconstruct(x), first)
    np.testing.assert_allclose(np.array(vae(x)), first, rtol=1e-5, atol=1e-6)
    z_mean, _ = vae.encode(x)
    np.testing.assert_allclose(np.array(vae.decoder(z_mean)), first, rtol=1e-5, atol=1e-6)
    a = np.array(vae(x, training=True))
    b = np.array(vae(x, training=True))
    assert not np.allclose(a, b)


def test_same_seed_same_weights_and_first_step(x: np.ndarray) -> None:
    params = _params(decoder_dropout=0.3, decoder_batch_norm=True, seed=7)
    one = build_vae(params, N_FEATURES, jit_compile=False)
    two = build_vae(params, N_FEATURES, jit_compile=False)
    other = build_vae(params.replace(seed=8), N_FEATURES, jit_compile=False)
    for a, b in zip(_weights(one), _weights(two), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(_weights(one), _weights(other), strict=True)
    )
    logs_one = one.train_on_batch(x[:16], return_dict=True)
    logs_two = two.train_on_batch(x[:16], return_dict=True)
    assert logs_one == pytest.approx(logs_two, rel=1e-6)
    for a, b in zip(_weights(one), _weights(two), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_weights_round_trip_through_a_rebuilt_model(x: np.ndarray, tmp_path: Path) -> None:
    params = _params(decoder_batch_norm=True)
    vae = build_vae(params, N_FEATURES, jit_compile=False)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "vae.weights.h5"
    vae.save_weights(path)
    rebuilt = build_vae(params.replace(seed=99), N_FEATURES)
    assert not np.allclose(rebuilt.reconstruct(x), vae.reconstruct(x))
    rebuilt.load_weights(path)
    np.testing.assert_allclose(rebuilt.reconstruct(x), vae.reconstruct(x), rtol=1e-6)


def test_sampling_layer_statistics_and_config() -> None:
    layer = Sampling(seed=3)
    mean = np.full((4000, 2), [1.0, -2.0], dtype=np.float32)
    log_var = np.full((4000, 2), [0.0, np.log(4.0)], dtype=np.float32)
    z = np.array(layer([mean, log_var]))
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.1)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 2.0], rtol=0.05)
    assert not np.array_equal(z, np.array(layer([mean, log_var])))
    clone = Sampling.from_config(layer.get_config())
    assert clone.get_config()["seed"] == 3
    np.testing.assert_array_equal(np.array(Sampling(seed=3)([mean, log_var])), z)


@pytest.mark.parametrize("n_features", [0, -3, 2.5, True])
def test_bad_n_features_is_a_data_error(n_features: Any) -> None:
    with pytest.raises(DataError, match="n_features"):
        build_vae(_params(), n_features)


def test_builders_and_vae_compose_directly() -> None:
    params = _params(coding_size=3)
    encoder = build_encoder(params, 12)
    decoder = build_decoder(params, 12)
    outs = encoder(np.zeros((2, 12), dtype=np.float32))
    assert [tuple(o.shape) for o in outs] == [(2, 3)] * 3
    assert tuple(decoder(np.zeros((2, 3), dtype=np.float32)).shape) == (2, 12)
    vae = VAE(
        encoder,
        decoder,
        12,
        loss=params.loss,
        focal_gamma=params.focal_gamma,
        focal_alpha=params.focal_alpha,
        kl_weight=0.5,
    )
    assert vae.coding_size == 3 and float(vae.kl_weight) == 0.5
    assert tuple(vae(np.ones((2, 12), dtype=np.uint8)).shape) == (2, 12)
    with pytest.raises(ValueError, match="loss='mse'"):
        VAE(encoder, decoder, 12, loss="mse", focal_gamma=2.0, focal_alpha=None, kl_weight=0.0)


def _speed_data() -> Any:
    from sweep.train.data import Dataset
    from sweep.train.data import Section

    rng = np.random.default_rng(1)
    rows = (rng.random((96, 41)) < 0.2).astype("uint8")
    rows[:, -1] = np.arange(96) % 2
    sections = (Section("marks", 0, 40), Section("expressed", 40, 41))
    return Dataset(Path("synthetic"), sections, rows[:64], rows[64:], None, "test split")


SPEED_PARAMS = TrialParams(
    encoder_units=(16,), coding_size=4, epochs=2, reduce_lr_on_plateau=False
)


@pytest.fixture(scope="module")
def speed_baseline() -> Any:
    from sweep.train.engine import run_trial

    return run_trial(SPEED_PARAMS, _speed_data())


@pytest.mark.parametrize(
    "options",
    [
        {"sparse_input": True},
        {"mixed_bfloat16": True},
        {"steps_per_execution": 4},
        {"fused_adam": False},
    ],
)
def test_engine_speed_options_train_and_score(
    options: dict[str, object], speed_baseline: Any
) -> None:
    """Each speed option trains and scores; all but bfloat16 keep the default run's maths."""
    from sklearn.metrics import roc_auc_score

    from sweep.train.engine import EngineOptions
    from sweep.train.engine import run_trial

    data = _speed_data()
    result = run_trial(SPEED_PARAMS, data, options=EngineOptions(**options))
    assert result.epochs_run == 2
    assert np.isfinite(result.history["loss"]).all()
    # The reported AUROC is the one of the validation label against its reconstruction
    # (the samples hold every validation row here, probabilities rounded to float16).
    samples = result.samples
    assert len(samples["x"]) == len(data.val)
    expected = roc_auc_score(samples["x"][:, -1], samples["reconstruction"][:, -1])
    assert result.metrics["expression.auroc"] == pytest.approx(expected, abs=0.02)
    if "mixed_bfloat16" not in options:
        assert result.history["loss"] == pytest.approx(speed_baseline.history["loss"], rel=1e-4)
        assert result.metrics["expression.auroc"] == pytest.approx(
            speed_baseline.metrics["expression.auroc"], abs=0.02
        )


def test_two_pass_reconstruction_equals_reconstruct(x: np.ndarray) -> None:
    """The scoring path decodes twice (label bit 0 and 1), not three times, and loses nothing."""
    from sweep.train.metrics import reconstruction_and_probe
    from sweep.train.metrics import symmetric_label_probe

    vae = build_vae(_params(), N_FEATURES, jit_compile=False)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    rows = x.copy()
    rows[::2, -1] = 1  # both label values present
    full, probe = reconstruction_and_probe(lambda r: vae.reconstruct(r, 20), rows, N_FEATURES - 1)
    np.testing.assert_array_equal(full, vae.reconstruct(rows, 20))
    np.testing.assert_array_equal(
        probe, symmetric_label_probe(lambda r: vae.reconstruct(r, 20), rows, N_FEATURES - 1)
    )
    assert full.dtype == np.float32


@pytest.mark.parametrize(
    "options",
    [{}, {"sparse_input": True}, {"mixed_bfloat16": True}],
    ids=["dense", "sparse-input", "bfloat16"],
)
@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "batch-norm"])
def test_label_outputs_equal_the_label_column_of_full_reconstructions(
    x: np.ndarray, options: dict[str, Any], batch_norm: bool
) -> None:
    """The label-only decode (shared first-layer product, one output column) changes nothing
    but summation order; layouts it cannot read fall back to full reconstructions."""
    params = _params(decoder_batch_norm=batch_norm, decoder_dropout=0.2)
    vae = build_vae(params, N_FEATURES, jit_compile=False, **options)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    assert vae.decodes_label_alone is ("mixed_bfloat16" not in options)
    rows = x.copy()
    rows[::2, -1] = 1
    off, on = vae.label_outputs(rows, batch_size=20)
    assert off.dtype == on.dtype == np.float32 and off.shape == on.shape == (len(rows),)
    for bit, label in ((0, off), (1, on)):
        inputs = rows.copy()
        inputs[:, -1] = bit
        np.testing.assert_allclose(label, vae.reconstruct(inputs, 20)[:, -1], rtol=0, atol=1e-6)
    assert not np.allclose(off, on, atol=1e-4)  # the bit matters to this model: a real check
    np.testing.assert_allclose(vae.label_outputs(rows[:0])[0], np.zeros(0))
    with pytest.raises(DataError, match="label input"):
        vae.label_outputs(rows[:, :-1])


def test_a_hand_built_vae_decodes_the_label_through_full_reconstructions(x: np.ndarray) -> None:
    """An encoder whose first layer does not read the raw input gets no shared product."""
    inputs = keras.Input((N_FEATURES,))
    scaled = keras.layers.Rescaling(2.0)(inputs)
    h = keras.layers.Dense(8, activation="relu", name="encoder_dense_0")(scaled)
    z_mean = keras.layers.Dense(3, name="z_mean")(h)
    z_log_var = keras.layers.Dense(3, name="z_log_var")(h)
    encoder = keras.Model(inputs, [z_mean, z_log_var, Sampling(seed=0)([z_mean, z_log_var])])
    vae = VAE(encoder, build_decoder(_params(coding_size=3), N_FEATURES), N_FEATURES,
              loss="bce", focal_gamma=0.0, focal_alpha=None, kl_weight=0.0)  # fmt: skip
    assert not vae.decodes_label_alone
    rows = x.copy()
    rows[:, -1] = 1
    np.testing.assert_array_equal(vae.label_outputs(rows)[1], vae.reconstruct(rows)[:, -1])


def test_the_engine_scores_with_the_label_only_decode(x: np.ndarray) -> None:
    """The engine's probe and reconstruction equal the generic two-pass ones (up to summation
    order: the one-pass scoring adds the label row to a shared first-layer product)."""
    from sweep.train.engine import decode_split
    from sweep.train.metrics import label_hidden_probe
    from sweep.train.metrics import reconstruction_and_probe
    from sweep.train.metrics import symmetric_label_probe

    vae = build_vae(_params(), N_FEATURES, jit_compile=False)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    rows = x.copy()
    rows[1::2, -1] = 1
    assert vae.decodes_label_alone
    full, probe, codes = decode_split(vae, rows, N_FEATURES - 1)
    assert codes is not None
    generic_full, generic_probe = reconstruction_and_probe(vae.reconstruct, rows, N_FEATURES - 1)
    np.testing.assert_allclose(full, generic_full, rtol=0, atol=1e-6)
    np.testing.assert_allclose(probe, generic_probe, rtol=0, atol=2e-6)
    np.testing.assert_array_equal(probe, label_hidden_probe(*vae.label_outputs(rows)))
    np.testing.assert_allclose(
        probe, symmetric_label_probe(vae.reconstruct, rows, N_FEATURES - 1), rtol=0, atol=2e-6
    )


def test_reconstruct_and_encode_equals_reconstruct_and_encode(x: np.ndarray) -> None:
    vae = build_vae(_params(decoder_batch_norm=True), N_FEATURES, jit_compile=False)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    probs, z_mean, z_log_var = vae.reconstruct_and_encode(x, batch_size=20)
    np.testing.assert_allclose(probs, vae.reconstruct(x, 20), rtol=0, atol=1e-6)
    expected_mean, expected_log_var = vae.encode(x, 20)
    np.testing.assert_allclose(z_mean, expected_mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(z_log_var, expected_log_var, rtol=0, atol=1e-6)
    assert probs.dtype == z_mean.dtype == np.float32
    empty = vae.reconstruct_and_encode(x[:0])
    assert [a.shape for a in empty] == [(0, N_FEATURES), (0, 4), (0, 4)]


@pytest.mark.parametrize("options", [{}, {"sparse_input": True}], ids=["dense", "sparse-input"])
def test_scoring_outputs_equal_the_separate_passes(x: np.ndarray, options: dict[str, Any]) -> None:
    vae = build_vae(_params(decoder_batch_norm=True), N_FEATURES, jit_compile=False, **options)
    vae.fit(x, epochs=1, batch_size=16, verbose=0)
    rows = x.copy()
    rows[::3, -1] = 1
    probs, z_mean, z_log_var, off, on = vae.scoring_outputs(rows, batch_size=20)
    expected = (*vae.reconstruct_and_encode(rows, 20), *vae.label_outputs(rows, 20))
    for got, want in zip((probs, z_mean, z_log_var, off, on), expected, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert [a.shape[0] for a in vae.scoring_outputs(rows[:0])] == [0] * 5
    bfloat16 = build_vae(_params(), N_FEATURES, jit_compile=False, mixed_bfloat16=True)
    with pytest.raises(ValueError, match="cannot decode the label alone"):
        bfloat16.scoring_outputs(rows)
