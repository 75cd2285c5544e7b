"""KerasTuner hypermodels as sweeps: the launch's checks and each trial's call.

``sweep launch --hypermodel module:attr`` (or ``path/to/file.py:attr``) sweeps a user's
``build_model(hp)`` function or ``keras_tuner.HyperModel``. This is the parent side, which never
imports TensorFlow or the user's code:

* :func:`plan_hypermodel` checks the reference, hashes the file, and in a child process builds
  the hypermodel at its defaults and fits it one step on one batch of the study's data
  (:func:`sweep.train.hypermodel.preflight`), so a missing module or attribute, an ``hp`` call a
  sweep cannot search, a ``build`` that raises, shapes that do not fit the data, or an objective
  the model does not report fail the launch with one line before the database is touched;
* :func:`hypermodel_call` is what a trial's child is asked to run
  (:class:`sweep.run.protocol.HypermodelCall`); the ``hp`` calls are answered by the Optuna
  trial through :func:`sweep.dialects.suggest_hp` (:mod:`sweep.run.objective`).

A worker refuses a hypermodel file whose SHA-256 differs from the study's
(:func:`check_hypermodel_file`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sweep.config import StudyConfig
from sweep.errors import HypermodelError
from sweep.errors import TrialFailed
from sweep.errors import UsageError
from sweep.run.isolation import run_in_child
from sweep.run.protocol import DataSplit
from sweep.run.protocol import HypermodelCall
from sweep.run.protocol import TrialKind
from sweep.run.protocol import TrialRequest

_logger = logging.getLogger(__name__)

#: ``--set`` names that set ``fit``'s arguments (they also fix a hyperparameter of that name).
FIT_SETTINGS = {"epochs": 10, "batch_size": 32}
#: A hypermodel's objective when ``--objective`` is not given (as KerasTuner's default).
DEFAULT_OBJECTIVE = "val_loss"
_MAXIMIZE_HINTS = ("acc", "auc", "precision", "recall", "f1", "iou")


def default_direction(objective: str) -> str:
    """KerasTuner's guess: ``maximize`` for accuracy/AUC-like metrics, else ``minimize``."""
    name = objective.lower().removeprefix("val_")
    return "maximize" if any(hint in name for hint in _MAXIMIZE_HINTS) else "minimize"


def parse_hp_assignments(assignments: Sequence[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """``--set name=value`` for a hypermodel: ``(fixed hyperparameters, fit settings)``.

    Values are read as YAML scalars (``3``, ``0.5``, ``true``, ``relu``). ``epochs`` and
    ``batch_size`` set ``fit``'s arguments and also fix a hyperparameter of that name.

    Raises:
        UsageError: a malformed assignment or a bad fit setting.
    """
    fixed: dict[str, Any] = {}
    fit = dict(FIT_SETTINGS)
    for item in assignments:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--set expects name=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        if not isinstance(value, (bool, int, float, str)):
            raise UsageError(f"--set {name}: expected a number, true/false or text, got {raw!r}")
        if name in FIT_SETTINGS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"--set {name}: expected an integer >= 1, got {raw!r}")
            fit[name] = value
        fixed[name] = value
    return fixed, fit


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(ref: str) -> dict[str, Any]:
    """Where ``ref`` points: ``ref``, ``module``, ``attr``, and for a file ``path`` and ``sha256``.

    Raises:
        HypermodelError: not ``module:attr``/``file.py:attr``, or the file does not exist.
    """
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr or not attr.replace(".", "_").isidentifier():
        raise HypermodelError(
            f"--hypermodel expects module:attr or path/to/file.py:attr, got {ref!r}"
        )
    out: dict[str, Any] = {
        "ref": ref,
        "module": module,
        "attr": attr,
        "path": None,
        "sha256": None,
    }
    if module.endswith(".py") or "/" in module:
        path = Path(module)
        if not path.is_file():
            raise HypermodelError(f"--hypermodel {ref}: file '{module}' does not exist")
        out["path"] = str(path.resolve())
        out["sha256"] = file_sha256(path)
    elif not all(part.isidentifier() for part in module.split(".")):
        raise HypermodelError(f"--hypermodel {ref}: {module!r} is not a module name")
    return out


def child_ref(spec: Mapping[str, Any]) -> str:
    """The reference the trial's child process loads (a file by its absolute path)."""
    return f"{spec['path']}:{spec['attr']}" if spec.get("path") else str(spec["ref"])


def plan_hypermodel(
    ref: str,
    *,
    objective: str,
    direction: str | None,
    split: DataSplit,
    assignments: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check ``ref``, build it at its defaults and fit one step on one batch (in a child).

    Returns:
        The study's hypermodel spec (:attr:`sweep.config.StudyConfig.hypermodel`).

    Raises:
        HypermodelError: one line: no such module, file or attribute, an ``hp`` call a sweep
            cannot search (named), ``build`` or the step failed (shapes that do not fit the
            data...), or ``objective`` is not a metric the model reports (they are listed).
        UsageError: a bad ``--set``.
    """
    spec = locate(ref)
    fixed, fit = parse_hp_assignments(assignments)
    direction = direction or default_direction(objective)
    call = HypermodelCall(
        ref=child_ref(spec), fixed=fixed, fit=fit, objective=objective, direction=direction
    )
    request = TrialRequest(
        kind=TrialKind(model="hypermodel"), split=split, hypermodel=call, purpose="preflight"
    )
    try:
        built = run_in_child(request, env=env)
    except TrialFailed as e:
        raise HypermodelError(f"--hypermodel {ref}: {_reason(str(e))}") from None
    if objective not in built.reported:
        raise HypermodelError(
            f"--objective {objective}: not a metric {ref} reports; it reports "
            f"{', '.join(sorted(built.reported)) or 'none'}"
        )
    extra = built.extra
    return {
        **spec,
        "kind": extra["kind"],
        "has_fit": extra["has_fit"],
        "objective": objective,
        "direction": direction,
        "fixed": fixed,
        "fit": fit,
        "hyperparameters": dict(built.hyperparameters or {}),
    }


def hypermodel_call(
    spec: Mapping[str, Any], *, seed: int, values: Mapping[str, Any] | None = None
) -> HypermodelCall:
    """What a trial's child runs for the study's hypermodel ``spec``, with fit seed ``seed``.

    ``values`` (a confirmation run's) answers every ``hp`` call; ``None`` asks the parent.
    """
    return HypermodelCall(
        ref=child_ref(spec),
        fixed=dict(spec.get("fixed") or {}),
        fit={**spec["fit"], "seed": seed},
        objective=spec["objective"],
        direction=spec["direction"],
        values=None if values is None else dict(values),
    )


def _reason(message: str) -> str:
    for prefix, label in (
        ("UnsupportedHpCall: ", "unsupported call "),
        ("HypermodelNotFound: ", ""),
    ):
        if message.startswith(prefix):
            return label + message.removeprefix(prefix)
    return message


def hypermodel_space(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The study's search-space record: the objective and the epochs (what the pruner needs).

    The hyperparameters themselves are the hypermodel's, suggested define-by-run.
    """
    return {
        "description": f"KerasTuner hypermodel {spec['ref']}",
        "objective": [{"metric": spec["objective"], "direction": spec["direction"]}],
        "search": {},
        "fixed": {"epochs": int(spec["fit"]["epochs"])},
    }


def fingerprint(spec: Mapping[str, Any]) -> str:
    """SHA-256 of what defines the sweep: reference, file hash, objective, values, space."""
    keys = ("ref", "sha256", "objective", "direction", "fixed", "fit", "hyperparameters")
    body = json.dumps({k: spec.get(k) for k in keys}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def check_hypermodel_file(config: StudyConfig, study_name: str = "") -> None:
    """Refuse to run a hypermodel file that is missing or differs from the study's (one line).

    Raises:
        HypermodelError: the file is missing or its SHA-256 differs.
    """
    spec = config.hypermodel or {}
    if not spec.get("path"):
        return
    path = Path(spec["path"])
    what = f"study {study_name!r}" if study_name else "the study"
    if not path.is_file():
        raise HypermodelError(
            f"hypermodel file '{path}' not found; {what} was created with it (SHA-256 "
            f"{spec['sha256'][:12]}...)"
        )
    digest = file_sha256(path)
    if digest != spec["sha256"]:
        raise HypermodelError(
            f"hypermodel file '{path}' has SHA-256 {digest[:12]}... but {what} was created with "
            f"{spec['sha256'][:12]}...: refusing to run a different hypermodel"
        )
