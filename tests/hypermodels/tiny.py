"""Tiny KerasTuner hypermodels for tests/test_kerastuner.py (a Dense autoencoder, 1 epoch).

``build_model`` uses every ``hp`` call a sweep supports, a conditional scope both ways
(``conditional_scope`` and ``parent_name``/``parent_values``) included. ``TinyHyperModel`` is a
``keras_tuner.HyperModel`` with its own ``fit`` that fails on purpose when ``explode`` is drawn.
``unsupported`` makes a call a sweep cannot search.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner

#: What ``build_model`` declares: name -> (kind, low, high, step) for the range checks.
RANGES = {
    "units": ("int", 4, 17, 4),
    "layers": ("int", 1, 2, 1),
    "lr": ("float_log", 1e-4, 1e-2, None),
    "dropout": ("float", 0.0, 0.5, 0.1),
    "momentum": ("float", 0.0, 0.9, 0.3),
    "beta_1": ("float", 0.8, 0.95, None),
}


def build_model(hp: Any) -> keras.Model:
    units = hp.Int("units", min_value=4, max_value=17, step=4)  # 4, 8, 12, 16
    layers = hp.Int("layers", 1, 2)
    lr = hp.Float("lr", 1e-4, 1e-2, sampling="log")
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1)
    activation = hp.Choice("activation", ["relu", "tanh"])
    use_bias = hp.Boolean("use_bias", default=True)
    latent = hp.Fixed("latent", 4)
    optimizer = hp.Choice("optimizer", ["adam", "sgd"])
    with hp.conditional_scope("optimizer", ["sgd"]):
        momentum = hp.Float("momentum", 0.0, 0.9, step=0.3)
    beta_1 = hp.Float("beta_1", 0.8, 0.95, parent_name="optimizer", parent_values=["adam"])
    model = keras.Sequential()
    for _ in range(layers):
        model.add(keras.layers.Dense(units, activation=activation, use_bias=use_bias))
    model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(latent, activation=activation))
    model.add(keras.layers.Dense(12001, activation="sigmoid"))
    if optimizer == "sgd":
        opt: Any = keras.optimizers.SGD(learning_rate=lr, momentum=momentum)
    else:
        opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1)
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
