"""Tiny KerasTuner hypermodels for tests/run/test_kerastuner.py (a Dense autoencoder, 1 epoch).

``build_model`` makes every ``hp`` call a sweep supports (:func:`calls.declare`), conditional
scopes included. ``TinyHyperModel`` is a ``keras_tuner.HyperModel`` with its own ``fit``, which
fails on purpose when ``explode`` is drawn. ``unsupported`` makes a call a sweep cannot search.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import keras
import keras_tuner

sys.path.insert(0, str(Path(__file__).parent))
from calls import declare  # noqa: E402

N_FEATURES = 12001  # the notes' layout (tests' synthetic data)


def build_model(hp: Any) -> keras.Model:
    v = declare(hp)
    model = keras.Sequential([keras.Input((N_FEATURES,))])
    for _ in range(v["layers"]):
        model.add(
            keras.layers.Dense(v["units"], activation=v["activation"], use_bias=v["use_bias"])
        )
    model.add(keras.layers.Dropout(v["dropout"]))
    model.add(keras.layers.Dense(v["latent"], activation=v["activation"]))
    model.add(keras.layers.Dense(N_FEATURES, activation="sigmoid"))
    if v["optimizer"] == "sgd":
        opt: Any = keras.optimizers.SGD(learning_rate=v["lr"], momentum=v["momentum"])
    else:
        opt = keras.optimizers.Adam(learning_rate=v["lr"], beta_1=v["beta_1"])
    model.compile(optimizer=opt, loss="binary_crossentropy", metrics=["binary_accuracy"])
    return model


class TinyHyperModel(keras_tuner.HyperModel):
    """The same model; its ``fit`` raises when ``explode`` is drawn."""

    def build(self, hp: Any) -> keras.Model:
        return build_model(hp)

    def fit(self, hp: Any, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        if hp.Boolean("explode"):
            raise RuntimeError("exploded on purpose")
        return model.fit(*args, **kwargs)


def unsupported(hp: Any) -> keras.Model:
    hp.Float("decay", 1e-4, 1e-1, sampling="reverse_log")
    return build_model(hp)


def wrong_shape(hp: Any) -> keras.Model:
    """An autoencoder for 100 columns: the study's rows have 12001."""
    model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(100, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def broken(hp: Any) -> keras.Model:
    hp.Int("units", 8, 32)
    raise RuntimeError("build broke on purpose")
