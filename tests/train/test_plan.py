"""sweep.train.plan: the optimizer, the KL schedule, the callbacks and the compiled model."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from sweep.errors import TrialFailed
from sweep.params import TrialParams
from sweep.train.plan import LR_PLATEAU_FACTOR
from sweep.train.plan import LR_PLATEAU_MIN
from sweep.train.plan import LR_PLATEAU_PATIENCE
from sweep.train.plan import MONITOR
from sweep.train.plan import FiniteLoss
from sweep.train.plan import FusedAdam
from sweep.train.plan import KLWarmup
from sweep.train.plan import build_vae
from sweep.train.plan import kl_schedule
from sweep.train.plan import make_optimizer
from sweep.train.plan import training_callbacks

N_FEATURES = 41
TINY: dict[str, Any] = {"encoder_units": (32, 16), "coding_size": 4, "batch_size": 16}


def _params(**changes: Any) -> TrialParams:
    return TrialParams(**{**TINY, **changes})


def test_kl_warmup_weights_per_epoch() -> None:
    assert [KLWarmup(1.0, 4).weight_at(e) for e in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [KLWarmup(0.5, 0).weight_at(e) for e in range(3)] == [0.5, 0.5, 0.5]
    assert KLWarmup(0.5, 3).initial_weight == 0.0
    assert KLWarmup(0.5, 0).initial_weight == 0.5
    schedule = kl_schedule(_params(kl_beta=6e-3, kl_warmup_epochs=3))
    assert (schedule.beta, schedule.epochs) == (6e-3, 3)


@pytest.mark.parametrize(("beta", "epochs", "name"), [(-1.0, 2, "beta"), (1.0, -1, "epochs")])
def test_kl_warmup_rejects_negative_arguments(beta: float, epochs: int, name: str) -> None:
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        KLWarmup(beta, epochs)


def test_kl_weight_starts_where_the_schedule_says() -> None:
    plain = build_vae(_params(kl_beta=3e-3), N_FEATURES)
    assert float(plain.kl_weight) == pytest.approx(3e-3)
    warm = build_vae(_params(kl_beta=3e-3, kl_warmup_epochs=2), N_FEATURES)
    assert float(warm.kl_weight) == 0.0


def test_kl_warmup_moves_kl_weight_across_epochs() -> None:
    x = (np.random.default_rng(0).random((32, N_FEATURES)) < 0.3).astype(np.uint8)
    params = _params(kl_beta=6e-3, kl_warmup_epochs=3)
    vae = build_vae(params, N_FEATURES, jit_compile=False)
    seen: list[float] = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(float(vae.kl_weight))
    )
    vae.fit(x, epochs=5, batch_size=16, verbose=0, callbacks=[kl_schedule(params), record])
    np.testing.assert_allclose(seen, [2e-3, 4e-3, 6e-3, 6e-3, 6e-3], rtol=1e-6)


def _kinds(callbacks: list[Any]) -> list[type]:
    return [type(c) for c in callbacks]


def test_callbacks_follow_the_params() -> None:
    bare = _params(reduce_lr_on_plateau=False, early_stopping_patience=0, kl_warmup_epochs=0)
    assert _kinds(training_callbacks(bare)) == [FiniteLoss]

    full = _params(reduce_lr_on_plateau=True, early_stopping_patience=3, kl_warmup_epochs=2)
    callbacks = training_callbacks(full)
    assert _kinds(callbacks) == [
        FiniteLoss,
        KLWarmup,
        keras.callbacks.ReduceLROnPlateau,
        keras.callbacks.EarlyStopping,
    ]
    warmup, plateau, stopping = callbacks[1:]
    assert (warmup.beta, warmup.epochs) == (full.kl_beta, 2)
    assert plateau.monitor == MONITOR == "val_reconstruction_loss"
    assert (plateau.factor, plateau.patience, plateau.min_lr) == (
        LR_PLATEAU_FACTOR,
        LR_PLATEAU_PATIENCE,
        LR_PLATEAU_MIN,
    )
    assert stopping.monitor == MONITOR and stopping.patience == 3
    assert stopping.restore_best_weights is True

    only_stop = _params(reduce_lr_on_plateau=False, early_stopping_patience=1)
    assert _kinds(training_callbacks(only_stop)) == [FiniteLoss, keras.callbacks.EarlyStopping]


def test_warmup_inflates_val_loss_but_the_callbacks_watch_reconstruction() -> None:
    """KL warm-up raises the total validation loss epoch by epoch while reconstruction still
    improves: the plan's callbacks (real Keras ones, on a real compiled model) keep going, where
    the same callbacks on ``val_loss`` would stop training and cut the learning rate."""
    params = _params(reduce_lr_on_plateau=True, early_stopping_patience=1, kl_warmup_epochs=5)
    total = [1.0, 1.1, 1.2, 1.3, 1.4]  # reconstruction + a growing KL weight * KL
    recon = [1.0, 0.9, 0.8, 0.7, 0.6]

    def run(callbacks: list[Any]) -> tuple[bool, float]:
        vae = build_vae(params, N_FEATURES, jit_compile=False)
        for callback in callbacks:
            callback.set_model(vae)
            callback.on_train_begin()
        for epoch, (t, r) in enumerate(zip(total, recon, strict=True)):
            logs = {"loss": t, "val_loss": t, MONITOR: r}
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs)
        return bool(vae.stop_training), float(vae.optimizer.learning_rate)

    plan = [c for c in training_callbacks(params) if not isinstance(c, KLWarmup)]
    assert run(plan) == (False, pytest.approx(params.learning_rate))
    on_total = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=LR_PLATEAU_PATIENCE),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=1),
    ]
    stopped, rate = run(on_total)
    assert stopped and rate < params.learning_rate


def test_finite_loss_fails_the_trial_on_nan() -> None:
    check = FiniteLoss()
    check.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0, "auroc": float("nan")})
    with pytest.raises(TrialFailed, match="val_loss .* epoch 3"):
        check.on_epoch_end(2, {"loss": 1.0, "val_loss": float("nan")})


def test_optimizer_and_compile_follow_the_params() -> None:
    params = _params(learning_rate=2e-3)
    fused = make_optimizer(params)
    assert type(fused) is FusedAdam
    assert float(fused.learning_rate) == pytest.approx(2e-3)
    assert type(make_optimizer(params, fused=False)) is keras.optimizers.Adam
    vae = build_vae(params, N_FEATURES, fused_adam=False)
    assert type(vae.optimizer) is keras.optimizers.Adam
    assert float(vae.optimizer.learning_rate) == pytest.approx(2e-3)


def test_fused_adam_matches_keras_adam() -> None:
    """The fused kernel is a speed change only: same weights as Keras' Adam after a few steps."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 4)).astype("float32")
    grads = [rng.normal(size=(6, 4)).astype("float32") for _ in range(5)]
    results = []
    for optimizer in (keras.optimizers.Adam(1e-2), FusedAdam(1e-2)):
        variable = keras.Variable(start.copy())
        for grad in grads:
            optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), variable)])
        results.append(np.asarray(variable))
    np.testing.assert_allclose(results[0], results[1], atol=1e-6)
    assert not np.allclose(results[0], start)
