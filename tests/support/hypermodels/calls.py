"""The ``hp`` calls of the tiny test hypermodel, without Keras (so tests can run them alone)."""

from __future__ import annotations

from typing import Any

#: name -> (kind, low, high, step) of each numeric range ``declare`` asks for.
RANGES = {
    "units": ("int", 4, 17, 4),  # 4, 8, 12, 16: the top is not on the step grid
    "layers": ("int", 1, 2, 1),
    "lr": ("log", 1e-4, 1e-2, None),
    "dropout": ("float", 0.0, 0.5, 0.1),
    "momentum": ("float", 0.0, 0.9, 0.3),
    "beta_1": ("float", 0.8, 0.95, None),
}


def declare(hp: Any) -> dict[str, Any]:
    """Every ``hp`` call a sweep supports, with a conditional scope both ways."""
    values = {
        "units": hp.Int("units", min_value=4, max_value=17, step=4),
        "layers": hp.Int("layers", 1, 2),
        "lr": hp.Float("lr", 1e-4, 1e-2, sampling="log"),
        "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
        "activation": hp.Choice("activation", ["relu", "tanh"]),
        "use_bias": hp.Boolean("use_bias", default=True),
        "latent": hp.Fixed("latent", 4),
        "optimizer": hp.Choice("optimizer", ["adam", "sgd"]),
    }
    with hp.conditional_scope("optimizer", ["sgd"]):
        values["momentum"] = hp.Float("momentum", 0.0, 0.9, step=0.3)
    values["beta_1"] = hp.Float(
        "beta_1", 0.8, 0.95, parent_name="optimizer", parent_values=["adam"]
    )
    return values
