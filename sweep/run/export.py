"""``sweep export`` and ``sweep trial --params/--from``: a trial's parameters, data and weights.

:func:`staged_export` resolves the trial (the best by default), checks that its weights were
kept, and stages the export folder next to ``--out``: ``params.yaml`` (every
:class:`~sweep.params.TrialParams` field, what ``sweep trial --params FILE`` reads),
``export.json`` (study, trial, metrics, data file, SHA-256 and split) and ``data.sha256``
(``sha256sum -c`` format). The caller adds ``model.keras`` (:func:`sweep.train.export.write_model`,
which needs TensorFlow, so it runs in the CLI, not here); only then does the staged folder
replace ``--out``. On any error nothing is left behind and ``--out`` is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep._version import __version__
from sweep.errors import DataError
from sweep.errors import NoWeightsError
from sweep.errors import ParamError
from sweep.errors import UsageError
from sweep.params import TrialParams
from sweep.store.artifacts import require
from sweep.store.lookup import WEIGHTS_ATTR
from sweep.store.lookup import find_trial
from sweep.store.urls import mask_url

MODEL_FILE = "model.keras"
PARAMS_FILE = "params.yaml"
META_FILE = "export.json"
HASH_FILE = "data.sha256"
_WEIGHTS_FILE = "trial.weights.h5"


@dataclass(frozen=True)
class StagedExport:
    """An export being written: the trial's parameters, input width and downloaded weights.

    Attributes:
        folder: The staging folder; write ``model.keras`` here.
        weights: The trial's kept weights (a ``.weights.h5`` file inside ``folder``).
    """

    study: str
    number: int
    params: dict[str, Any]
    n_features: int
    folder: Path
    weights: Path
    out: Path


@contextlib.contextmanager
def staged_export(
    url: str,
    name: str,
    number: int | None,
    out: str | Path,
    *,
    force: bool = False,
    artifacts: str | None = None,
) -> Iterator[StagedExport]:
    """Stage the export of trial ``number`` (``None``: the best) of study ``name`` to ``out``.

    On a clean exit the staged folder replaces ``out`` (the kept weights file is dropped:
    ``model.keras`` holds them); on an error it is removed and ``out`` is left as it was.
    The weights are looked for where :func:`sweep.store.artifacts.locate` says (beside the
    database for a copied or moved study; ``artifacts``: ``--artifacts DIR`` first).

    Raises:
        UsageError: ``out`` exists (without ``force``) or is a file.
        TrialNotFoundError: no such trial, or no COMPLETE trial for the default.
        NoWeightsError: the trial's weights were not kept; the message gives the re-run.
        ArtifactsNotFoundError: they were kept, but the study's folder is not found (the
            message says where it looked).
        StudyNotFoundError, StorageError.
    """
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.artifacts import download_artifact
    from optuna.artifacts.exceptions import ArtifactNotFound

    target = Path(out).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise UsageError(f"--out '{target}' is a file, not a folder")
    if target.exists() and not force:
        raise UsageError(f"--out '{target}' exists; pass --force to replace it")
    trial, config = find_trial(url, name, number)
    number = int(trial["number"])
    params = trial.get("params_full")
    if not isinstance(params, dict):
        raise NoWeightsError(f"trial {number} of study {name!r} has no stored parameters")
    artifact_id = (trial.get("user_attrs") or {}).get(WEIGHTS_ATTR)
    rerun = f"re-run it with `sweep trial --from {name}:{number}` (same --storage)"
    if not artifact_id or not config.get("artifacts_dir"):
        raise NoWeightsError(
            f"trial {number} of study {name!r} has no kept weights (`sweep launch "
            f"--keep-weights K` keeps the K best); {rerun}"
        )
    artifacts_dir = require(url, name, config.get("artifacts_dir"), artifacts)
    n_features = int((config.get("data_summary") or {}).get("n_features") or 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        weights = staging / _WEIGHTS_FILE
        try:
            download_artifact(
                artifact_store=FileSystemArtifactStore(str(artifacts_dir)),
                file_path=str(weights),
                artifact_id=str(artifact_id),
            )
        except ArtifactNotFound:
            raise NoWeightsError(
                f"trial {number} of study {name!r} is no longer among the kept best (its "
                f"weights were deleted); {rerun}"
            ) from None
        _write_text(staging / PARAMS_FILE, _params_yaml(params))
        meta = _meta(url, name, trial, config, n_features)
        _write_text(staging / META_FILE, json.dumps(meta, indent=2, default=str) + "\n")
        data_name = Path(str(config.get("data_path") or "data.npz")).name
        _write_text(staging / HASH_FILE, f"{config.get('data_sha256', '')}  {data_name}\n")
        yield StagedExport(name, number, params, n_features, staging, weights, target)
        weights.unlink(missing_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_params_file(path: str | Path) -> dict[str, Any]:
    """The hyperparameters in a YAML or JSON file of :class:`~sweep.params.TrialParams` fields.

    Raises:
        ParamError: the file is missing, not a mapping, or has an unknown name or a bad value
            (the message names the file).
    """
    import yaml

    file = Path(path)
    try:
        values = yaml.safe_load(file.read_text())  # JSON is YAML
    except OSError as e:
        raise ParamError(f"--params '{file}': cannot read it ({e.strerror})") from None
    except yaml.YAMLError as e:
        reason = " ".join(str(e).split())
        raise ParamError(f"--params '{file}': not YAML or JSON ({reason})") from None
    if not isinstance(values, dict):
        raise ParamError(f"--params '{file}': expected a mapping of hyperparameters")
    try:
        TrialParams.from_dict(values)
    except ParamError as e:
        raise ParamError(f"--params '{file}': {e}") from None
    return values


@dataclass(frozen=True)
class StoredTrial:
    """What ``sweep trial --from NAME:N`` needs to run a stored trial again."""

    params: dict[str, Any]
    data_path: str
    data_sha256: str
    val_fraction: float
    test_fraction: float
    split_seed: int
    split_sha256: str


def stored_trial(url: str, spec: str) -> StoredTrial:
    """Parse ``NAME:N`` and read that trial's parameters and its study's data and split.

    Raises:
        UsageError: ``spec`` is not ``NAME:N``.
        TrialNotFoundError, StudyNotFoundError, StorageError, NoWeightsError (no parameters).
    """
    name, sep, number = spec.rpartition(":")
    if not sep or not name or not number.isdigit():
        raise UsageError(f"--from expects NAME:N (a study and a trial number), got {spec!r}")
    trial, config = find_trial(url, name, int(number))
    params = trial.get("params_full")
    if not isinstance(params, dict):
        raise NoWeightsError(
            f"trial {number} of study {name!r} ({trial['state']}) has no stored parameters"
        )
    return StoredTrial(
        params=params,
        data_path=str(config.get("data_path") or ""),
        data_sha256=str(config.get("data_sha256") or ""),
        val_fraction=float(config.get("val_fraction", 0.2)),
        test_fraction=float(config.get("test_fraction", 0.2)),
        split_seed=int(config.get("split_seed", 0)),
        split_sha256=str(config.get("split_sha256") or ""),
    )


def check_data(path: str, sha256: str) -> None:
    """Refuse a data file that is not the study's.

    Raises:
        DataError: ``path`` is missing or its SHA-256 is not ``sha256``.
    """
    from sweep.train.data import file_sha256

    if not os.path.isfile(path):
        raise DataError(f"data file '{path}' not found; pass the study's data file with --data")
    if sha256 and file_sha256(path) != sha256:
        raise DataError(
            f"data file '{path}' is not the study's (SHA-256 differs); pass it with --data"
        )


def _params_yaml(params: dict[str, Any]) -> str:
    import yaml

    checked = TrialParams.from_dict(params).to_dict()
    return "# sweep trial --params FILE reads this (every TrialParams field)\n" + yaml.safe_dump(
        checked, sort_keys=False
    )


def _meta(
    url: str, name: str, trial: dict[str, Any], config: dict[str, Any], n_features: int
) -> dict[str, Any]:
    return {
        "study": name,
        "trial": trial["number"],
        "storage": mask_url(url),
        "values": trial.get("values"),
        "objectives": (config.get("space") or {}).get("objective"),
        "metrics": trial.get("metrics") or {},
        "n_features": n_features,
        "data_path": config.get("data_path"),
        "data_sha256": config.get("data_sha256"),
        "split": {
            "val_fraction": config.get("val_fraction"),
            "test_fraction": config.get("test_fraction"),
            "split_seed": config.get("split_seed"),
            "split_sha256": config.get("split_sha256"),
        },
        "files": {"model": MODEL_FILE, "params": PARAMS_FILE, "data_hash": HASH_FILE},
        "sweep_version": __version__,
    }


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)
