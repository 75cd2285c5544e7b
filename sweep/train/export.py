"""Trained weights to and from files: what ``--keep-weights`` stores and ``sweep export`` writes.

A trial's weights are the encoder's and decoder's, saved without the optimizer's state (Adam's
moments would triple the file), as a ``.weights.h5`` file (:func:`save_weights`). An export
folder holds the whole model as ``model.keras`` (rebuilt from the trial's parameters, then
loaded with the kept weights: :func:`write_model`), the parameters as ``params.yaml`` (what
``sweep trial --params FILE`` reads) and ``export.json`` (study, trial, data file and SHA-256,
split); :func:`load_model` rebuilds the model from such a folder. No Optuna, no database.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sweep.errors import DataError
from sweep.params import TrialParams

if TYPE_CHECKING:
    from sweep.train.model import VAE

#: File names inside an export folder.
MODEL_FILE = "model.keras"
PARAMS_FILE = "params.yaml"
META_FILE = "export.json"
#: Suffix of a trial's stored weights.
WEIGHTS_SUFFIX = ".weights.h5"


def _pair(model: VAE) -> Any:
    """Encoder then decoder as one functional model: their weights only, no optimizer."""
    import keras

    inputs = keras.Input(shape=(model.n_features,), dtype="float32", name="x")
    z_mean = model.encoder(inputs)[0]
    return keras.Model(inputs, model.decoder(z_mean), name="vae_weights")


def save_weights(model: VAE, path: str | Path) -> Path:
    """Write ``model``'s encoder and decoder weights to ``path`` (a ``.weights.h5`` file)."""
    path = Path(path)
    _pair(model).save_weights(str(path))
    return path


def rebuild(params: TrialParams | Mapping[str, Any], n_features: int, weights: str | Path) -> VAE:
    """The trial's VAE for ``params`` and ``n_features`` columns, with the weights in ``weights``.

    Raises:
        DataError: the weights file is missing or does not fit this architecture.
    """
    from sweep.train.plan import build_vae

    if not isinstance(params, TrialParams):
        params = TrialParams.from_dict(params)
    model = build_vae(params, n_features)
    try:
        _pair(model).load_weights(str(weights))
    except (OSError, ValueError) as e:
        raise DataError(f"weights file '{weights}' does not fit this trial's model: {e}") from None
    return model


def write_model(
    params: TrialParams | Mapping[str, Any], n_features: int, weights: str | Path, out: str | Path
) -> Path:
    """Rebuild the trial's model from ``params`` and ``weights``; save ``out/model.keras``."""
    model = rebuild(params, n_features, weights)
    path = Path(out) / MODEL_FILE
    model.save(str(path))
    return path


def load_model(directory: str | Path) -> VAE:
    """Rebuild the model of an export folder (``sweep export``): a :class:`~sweep.train.model.VAE`.

    The architecture comes from the folder's ``params.yaml`` and ``export.json`` (input width),
    the weights from ``model.keras``; use ``model.reconstruct(x)`` and ``model.encode(x)``.

    Raises:
        DataError: the folder is not an export folder, or its files do not fit together.
    """
    import yaml

    folder = Path(directory)
    missing = [n for n in (MODEL_FILE, PARAMS_FILE, META_FILE) if not (folder / n).is_file()]
    if missing:
        raise DataError(
            f"'{folder}' is not a sweep export folder (missing {', '.join(missing)}); "
            "write one with `sweep export NAME --out DIR`"
        )
    params = TrialParams.from_dict(yaml.safe_load((folder / PARAMS_FILE).read_text()) or {})
    meta = json.loads((folder / META_FILE).read_text())
    from sweep.train.plan import build_vae

    model = build_vae(params, int(meta["n_features"]))
    try:
        with warnings.catch_warnings():  # the file's optimizer state is not needed to predict
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(str(folder / MODEL_FILE))
    except (OSError, ValueError) as e:
        raise DataError(f"'{folder / MODEL_FILE}' does not fit {PARAMS_FILE}: {e}") from None
    return model
