"""KerasTuner hypermodels as sweeps: the launch's checks and each trial's Optuna suggestions.

``sweep launch --hypermodel module:attr`` (or ``path/to/file.py:attr``) sweeps a user's
``build_model(hp)`` function or ``keras_tuner.HyperModel``. This is the parent side, which never
imports TensorFlow or the user's code:

* :func:`plan_hypermodel` checks the reference, hashes the file, and builds the hypermodel once
  at its defaults in a child process (:func:`sweep.train.hypermodel.dry_build`), so a missing
  module or attribute, or an ``hp`` call a sweep cannot search, fails the launch with one line
  before the database is touched;
* :func:`create_hypermodel_study` stores the result as :attr:`sweep.config.StudyConfig.hypermodel`;
* :class:`HypermodelObjective` runs each trial in a child process (heartbeats, budget, pruning,
  resume as for the built-in VAE) and answers the child's ``hp`` calls, define-by-run, with
  :func:`suggest` on the Optuna trial: same name, same range, step and log scale.

A worker refuses a hypermodel file whose SHA-256 differs from the study's
(:func:`check_hypermodel_file`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import yaml

from sweep.config import StudyConfig
from sweep.errors import HypermodelError
from sweep.errors import TrialFailed
from sweep.errors import UsageError
from sweep.run.isolation import TrialRequest
from sweep.run.isolation import run_in_child
from sweep.run.objective import Objective
from sweep.run.objective import study_fields
from sweep.run.signals import signals_as_interrupts

if TYPE_CHECKING:
    import optuna

    from sweep.run.launch import LaunchRequest

_logger = logging.getLogger(__name__)

#: ``--set`` names that set ``fit``'s arguments (they also fix a hyperparameter of that name).
FIT_SETTINGS = {"epochs": 10, "batch_size": 32}
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
    assignments: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check ``ref`` and build it once at its defaults (in a child); the study's hypermodel spec.

    Raises:
        HypermodelError: one line: no such module, file or attribute, an ``hp`` call a sweep
            cannot search (named), or ``build`` failed.
        UsageError: a bad ``--set``.
    """
    spec = locate(ref)
    fixed, fit = parse_hp_assignments(assignments)
    request = TrialRequest(
        params={},
        data_path="",
        val_fraction=0.0,
        test_fraction=0.0,
        split_seed=0,
        kind="hypermodel",
        hypermodel={"ref": child_ref(spec), "fixed": fixed, "dry_run": True},
    )
    try:
        built = run_in_child(request, env=env)
    except TrialFailed as e:
        raise HypermodelError(f"--hypermodel {ref}: {_reason(str(e))}") from None
    return {
        **spec,
        "kind": built["kind"],
        "has_fit": built["has_fit"],
        "objective": objective,
        "direction": direction or default_direction(objective),
        "fixed": fixed,
        "fit": fit,
        "hyperparameters": built["hyperparameters"],
    }


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


def create_hypermodel_study(request: LaunchRequest) -> str:
    """``sweep launch --hypermodel``: check the hypermodel and the data, create the study.

    Nothing is written before every check has passed.

    Raises:
        HypermodelError, DataError, StorageError, StudyConflictError, UsageError.
    """
    from sweep.log import quiet_optuna
    from sweep.run.launch import _default_artifacts_dir
    from sweep.space import SearchSpace
    from sweep.store.rdb import open_storage
    from sweep.store.study import create_or_reuse_study
    from sweep.store.urls import mask_url
    from sweep.train.data import BUNDLED_DATA
    from sweep.train.data import file_sha256 as data_sha256
    from sweep.train.data import load_dataset

    quiet_optuna()
    assert request.hypermodel is not None
    settings = request.settings
    if settings.sampler in ("grid", "nsga2"):
        raise UsageError(
            f"--sampler {settings.sampler} cannot search a hypermodel (its space is defined by "
            "running build); use tpe, random or cmaes"
        )
    spec = plan_hypermodel(
        request.hypermodel,
        objective=request.objective,
        direction=request.direction,
        assignments=request.hp_assignments,
    )
    space = SearchSpace.from_mapping(hypermodel_space(spec), source="--hypermodel")
    data_path = str(Path(request.data_path or BUNDLED_DATA).resolve())
    dataset = load_dataset(
        data_path,
        val_fraction=settings.val_fraction,
        test_fraction=settings.test_fraction,
        split_seed=settings.split_seed,
    )
    config = StudyConfig(
        **dataclasses.asdict(settings),
        space=space.to_json(),
        space_fingerprint=fingerprint(spec),
        data_path=data_path,
        data_sha256=data_sha256(data_path),
        data_summary=dataset.summary(),
        split_sha256=dataset.split_sha256,
        artifacts_dir=request.artifacts_dir or _default_artifacts_dir(request.storage_url),
        hypermodel=spec,
    )
    storage = open_storage(request.storage_url, create=True)
    name, created = create_or_reuse_study(
        storage, request.study_name, config, force_new=request.force_new
    )
    names = [s["config"]["name"] for s in spec["hyperparameters"]["space"]]
    if created:
        _logger.info(
            "created study %r in %s: %d trials of hypermodel %s (%s %s; build declared %s)",
            name,
            mask_url(request.storage_url),
            settings.n_trials,
            spec["ref"],
            spec["direction"],
            spec["objective"],
            ", ".join(names) or "no hyperparameters",
        )
    else:
        _logger.info("study %r already exists with this hypermodel and data: continuing it", name)
    return name


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


def suggest(trial: optuna.trial.BaseTrial, question: Mapping[str, Any]) -> Any:
    """The Optuna suggestion for one ``hp`` call given in KerasTuner's config form.

    ``Int``/``Float`` keep the name, the inclusive range, the step (``high`` lowered onto the
    step grid, as KerasTuner samples it) and log scale; ``Choice`` and ``Boolean`` become
    categorical.

    Raises:
        HypermodelError: a kind of hyperparameter that is not searched.
    """
    kind = question["class_name"]
    config = question["config"]
    name = config["name"]
    log = config.get("sampling") == "log"
    if kind == "Int":
        int_step = int(config["step"] or 1)
        int_high = int(grid_high(config["min_value"], config["max_value"], int_step))
        low = int(config["min_value"])
        return trial.suggest_int(name, low, int_high, step=int_step, log=log)
    if kind == "Float":
        step = config["step"]
        high = float(config["max_value"])
        if step is not None:
            high = round(grid_high(config["min_value"], high, step), 12)
        return trial.suggest_float(name, float(config["min_value"]), high, step=step, log=log)
    if kind == "Choice":
        return trial.suggest_categorical(name, list(config["values"]))
    if kind == "Boolean":
        return trial.suggest_categorical(name, [False, True])
    raise HypermodelError(f"hp.{kind}({name!r}) cannot be searched")


def grid_high(low: float, high: float, step: float | None) -> float:
    """The largest value on ``low + k * step`` that is <= ``high`` (``high`` without a step)."""
    if step is None:
        return high
    return low + math.floor((high - low) / step + 1e-9) * step


@dataclass(frozen=True)
class HypermodelObjective(Objective):
    """One trial of a hypermodel study, in a child process (see the module docstring).

    Attributes:
        hypermodel: The study's hypermodel spec (:attr:`StudyConfig.hypermodel`).
        seed: The study's seed; trial ``n`` fits with seed ``seed + n``.
    """

    hypermodel: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def for_hypermodel_study(
        cls,
        config: StudyConfig,
        data_path: str,
        *,
        env: Mapping[str, str] | None = None,
        signals: signals_as_interrupts | None = None,
    ) -> HypermodelObjective:
        """The objective of a hypermodel study (after checking the hypermodel file).

        Raises:
            HypermodelError: the hypermodel file is missing or differs from the study's.
        """
        check_hypermodel_file(config)
        spec = config.hypermodel or {}
        return cls(
            **study_fields(config, data_path, env=env, signals=signals),
            epoch_metrics=() if config.pruner == "none" else (spec["objective"],),
            hypermodel=spec,
            seed=config.seed,
        )

    def _run(self, trial: optuna.Trial) -> float | list[float]:
        import os

        spec = self.hypermodel
        trial.set_user_attr("worker", self.worker_id)
        trial.set_user_attr("cuda_visible_devices", os.environ.get("CUDA_VISIBLE_DEVICES"))
        started = time.monotonic()
        request = TrialRequest(
            params={},
            data_path=self.data_path,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            split_seed=self.split_seed,
            split_sha256=self.split_sha256,
            epoch_metrics=self.epoch_metrics,
            kind="hypermodel",
            hypermodel={
                "ref": child_ref(spec),
                "fixed": spec.get("fixed") or {},
                "fit": {**spec["fit"], "seed": (self.seed + trial.number) % 2**31},
                "objective": spec["objective"],
                "direction": spec["direction"],
            },
        )
        result = run_in_child(
            request,
            on_epoch=self._pruning_reporter(trial),
            env=self.env,
            on_ask=lambda question: suggest(trial, question),
        )
        hyperparameters = result["hyperparameters"]
        trial.set_user_attr("hyperparameters", hyperparameters)
        trial.set_user_attr("params_full", hyperparameters["values"])
        trial.set_user_attr("metrics", result["metrics"])
        trial.set_user_attr("history", result["history"])
        trial.set_user_attr("epochs_run", result["epochs_run"])
        trial.set_user_attr("train_seconds", result["seconds"])
        trial.set_user_attr("seconds", time.monotonic() - started)
        return self._objective_values(result)
