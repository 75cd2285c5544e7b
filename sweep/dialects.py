"""The one bridge between the three ways a hyperparameter is written down.

* a **sweep spec**, as a search-space file holds it (:mod:`sweep.space`):
  ``{"type": "int" | "float" | "categorical", "low", "high", "step", "log", "choices"}``;
* an **Optuna** suggestion (``trial.suggest_*``) and distribution;
* a **KerasTuner** ``hp`` call and its config form,
  ``{"class_name": "Int" | "Float" | "Choice" | "Boolean" | "Fixed", "config": {...}}``.

Every path goes through the sweep spec: :func:`suggest` and :func:`distribution` turn one into
Optuna's form, :func:`declare` into an ``hp`` call, :func:`spec_from_hp` reads a KerasTuner
config back into one (so a hypermodel's ``hp`` call is suggested by :func:`suggest_hp`), and
:func:`fixed_hp_config` writes values as KerasTuner ``Fixed`` entries. Standard library only at
import (Optuna is imported where a distribution is made).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from sweep.errors import HypermodelError

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution


def suggest(trial: optuna.trial.BaseTrial, name: str, spec: Mapping[str, Any]) -> Any:
    """Ask ``trial`` for ``name`` as the sweep spec ``spec`` describes it."""
    kind = spec["type"]
    if kind == "float":
        return trial.suggest_float(
            name, spec["low"], spec["high"], log=bool(spec.get("log")), step=spec.get("step")
        )
    if kind == "int":
        return trial.suggest_int(
            name, spec["low"], spec["high"], log=bool(spec.get("log")), step=spec.get("step") or 1
        )
    return trial.suggest_categorical(name, list(spec["choices"]))


def distribution(spec: Mapping[str, Any]) -> BaseDistribution:
    """The Optuna distribution of a sweep spec (what :func:`suggest` samples from)."""
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution
    from optuna.distributions import IntDistribution

    if spec["type"] == "float":
        return FloatDistribution(
            spec["low"], spec["high"], log=bool(spec.get("log")), step=spec.get("step")
        )
    if spec["type"] == "int":
        return IntDistribution(
            spec["low"], spec["high"], log=bool(spec.get("log")), step=spec.get("step") or 1
        )
    return CategoricalDistribution(list(spec["choices"]))


def declare(hp: Any, name: str, spec: Mapping[str, Any], **scope: Any) -> Any:
    """Declare ``name`` on a KerasTuner ``hp`` as the sweep spec describes it; its value.

    ``scope`` is passed on (``parent_name``/``parent_values`` for a conditional name).
    """
    sampling = "log" if spec.get("log") else "linear"
    if spec["type"] == "int":
        return hp.Int(
            name, spec["low"], spec["high"], step=spec.get("step"), sampling=sampling, **scope
        )
    if spec["type"] == "float":
        return hp.Float(
            name, spec["low"], spec["high"], step=spec.get("step"), sampling=sampling, **scope
        )
    return hp.Choice(name, list(spec["choices"]), **scope)


def spec_from_hp(question: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A KerasTuner ``hp`` call in config form as ``(name, sweep spec)``.

    ``Int``/``Float`` keep the inclusive range, the step (``high`` lowered onto the step grid,
    as KerasTuner samples it) and log scale; ``Choice`` and ``Boolean`` become categorical.

    Raises:
        HypermodelError: a kind of hyperparameter that is not searched.
    """
    kind = question["class_name"]
    config = question["config"]
    name = str(config["name"])
    log = config.get("sampling") == "log"
    if kind == "Int":
        step = int(config.get("step") or 1)
        low = int(config["min_value"])
        high = int(grid_high(low, config["max_value"], step))
        return name, {"type": "int", "low": low, "high": high, "step": step, "log": log}
    if kind == "Float":
        float_step = config.get("step")
        float_high = float(config["max_value"])
        if float_step is not None:
            float_high = round(grid_high(config["min_value"], float_high, float_step), 12)
        spec = {"type": "float", "low": float(config["min_value"]), "high": float_high}
        return name, {**spec, "step": float_step, "log": log}
    if kind == "Choice":
        return name, {"type": "categorical", "choices": list(config["values"])}
    if kind == "Boolean":
        return name, {"type": "categorical", "choices": [False, True]}
    raise HypermodelError(f"hp.{kind}({name!r}) cannot be searched")


def suggest_hp(trial: optuna.trial.BaseTrial, question: Mapping[str, Any]) -> Any:
    """The Optuna suggestion for one ``hp`` call given in KerasTuner's config form."""
    name, spec = spec_from_hp(question)
    return suggest(trial, name, spec)


def grid_high(low: float, high: float, step: float | None) -> float:
    """The largest value on ``low + k * step`` that is <= ``high`` (``high`` without a step)."""
    if step is None:
        return high
    return low + math.floor((high - low) / step + 1e-9) * step


def fixed_hp_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """``HyperParameters.get_config()`` form in which each value is a ``Fixed`` entry."""
    space = [
        {"class_name": "Fixed", "config": {"name": k, "conditions": [], "value": v}}
        for k, v in values.items()
    ]
    return {"space": space, "values": dict(values)}


__all__ = [
    "declare",
    "distribution",
    "fixed_hp_config",
    "grid_high",
    "spec_from_hp",
    "suggest",
    "suggest_hp",
]
