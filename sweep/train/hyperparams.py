"""A stand-in for ``keras_tuner.HyperParameters`` that asks a sweep trial for each value.

A user's ``build_model(hp)`` (or ``HyperModel.build``/``fit``) calls ``hp.Int``, ``hp.Float``,
``hp.Choice``, ``hp.Boolean``, ``hp.Fixed`` and ``hp.conditional_scope`` exactly as with
KerasTuner. :class:`SweepHyperParameters` follows KerasTuner's semantics (the defaults, the
inclusive ``max_value``, a name registered twice returns its first value, a hyperparameter in an
inactive conditional scope returns ``None``) and hands each new active hyperparameter, in
KerasTuner's own config form (``{"class_name": "Int", "config": {...}}``), to a ``suggest``
callback: the trial's Optuna suggestion in a worker, the default in a launch's dry build. As it
goes it records the space and the values in ``HyperParameters.get_config()`` form, so the
result rebuilds the model with ``keras_tuner.HyperParameters.from_config``.

Calls it cannot turn into an Optuna suggestion raise :class:`UnsupportedHpCall`, naming the
call: ``sampling="reverse_log"``, ``sampling="log"`` with a ``step`` (KerasTuner's step is then a
factor) and any other ``hp`` method. Standard library only (no KerasTuner, no Optuna).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

#: Calls :class:`SweepHyperParameters` supports, in the order the README lists them.
SUPPORTED = ("Int", "Float", "Choice", "Boolean", "Fixed", "conditional_scope", "get")

Suggest = Callable[[Mapping[str, Any]], Any]


class UnsupportedHpCall(ValueError):
    """A hypermodel called ``hp`` in a way a sweep cannot search; the message names the call."""


def default_value(spec: Mapping[str, Any]) -> Any:
    """KerasTuner's default of a hyperparameter given in config form."""
    config = spec["config"]
    kind = spec["class_name"]
    if kind == "Fixed":
        return config["value"]
    if config.get("default") is not None:
        return config["default"]
    if kind in ("Int", "Float"):
        return config["min_value"]
    if kind == "Choice":
        return config["values"][0]
    return False  # Boolean


class SweepHyperParameters:
    """What a hypermodel's ``hp`` argument is in a sweep trial (see the module docstring).

    Args:
        suggest: Called with each new active hyperparameter's config form; returns its value.
        fixed: Values that are not searched (``--set name=value``): returned as they are.
    """

    def __init__(self, suggest: Suggest, fixed: Mapping[str, Any] | None = None) -> None:
        self._suggest = suggest
        self._fixed = dict(fixed or {})
        self._conditions: list[dict[str, Any]] = []
        self.space: list[dict[str, Any]] = []
        self.values: dict[str, Any] = {}
        self._seen: set[tuple[str, str]] = set()

    # --- the calls -----------------------------------------------------------------------

    def Int(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> int | None:
        """An integer in ``[min_value, max_value]`` (inclusive), on the ``step`` grid."""
        sampling = _sampling("Int", name, sampling, step)
        step = 1 if step is None and sampling == "linear" else step
        for value, what in ((min_value, "min_value"), (max_value, "max_value"), (step, "step")):
            if value is not None and (isinstance(value, bool) or int(value) != value):
                raise ValueError(f"hp.Int({name!r}): {what} must be an integer, got {value!r}")
        config = {
            "name": name,
            "default": default,
            "min_value": int(min_value),
            "max_value": int(max_value),
            "step": None if step is None else int(step),
            "sampling": sampling,
        }
        _check_range("Int", config)
        with self._maybe_scope(parent_name, parent_values):
            value = self._retrieve("Int", config)
        return None if value is None else int(value)

    def Float(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> float | None:
        """A float in ``[min_value, max_value]``, linear or log, on the ``step`` grid if given."""
        sampling = _sampling("Float", name, sampling, step)
        config = {
            "name": name,
            "default": None if default is None else float(default),
            "min_value": float(min_value),
            "max_value": float(max_value),
            "step": None if step is None else float(step),
            "sampling": sampling,
        }
        _check_range("Float", config)
        with self._maybe_scope(parent_name, parent_values):
            value = self._retrieve("Float", config)
        return None if value is None else float(value)

    def Choice(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> Any:
        """One of ``values`` (int, float, str or bool, all of one type)."""
        values = list(values)
        if not values:
            raise ValueError(f"hp.Choice({name!r}): values must not be empty")
        if len({type(v) for v in values}) > 1:
            raise ValueError(f"hp.Choice({name!r}): values must all have one type, got {values}")
        if not isinstance(values[0], (bool, int, float, str)):
            raise UnsupportedHpCall(
                f"hp.Choice({name!r}) with {type(values[0]).__name__} values (sweep supports "
                "int, float, str and bool choices)"
            )
        if default is not None and default not in values:
            raise ValueError(f"hp.Choice({name!r}): default {default!r} is not among {values}")
        numeric = isinstance(values[0], (int, float)) and not isinstance(values[0], bool)
        config = {
            "name": name,
            "default": values[0] if default is None else default,
            "values": values,
            "ordered": numeric if ordered is None else bool(ordered),
        }
        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve("Choice", config)

    def Boolean(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> bool | None:
        """``True`` or ``False``."""
        if default not in (True, False):
            raise ValueError(f"hp.Boolean({name!r}): default must be a bool, got {default!r}")
        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve("Boolean", {"name": name, "default": bool(default)})  # type: ignore[no-any-return]

    def Fixed(  # noqa: N802 - KerasTuner's name
        self,
        name: str,
        value: Any,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> Any:
        """Always ``value`` (recorded, not searched)."""
        if not isinstance(value, (bool, int, float, str)):
            raise UnsupportedHpCall(
                f"hp.Fixed({name!r}) with a {type(value).__name__} value (sweep supports int, "
                "float, str and bool)"
            )
        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve("Fixed", {"name": name, "value": value})

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Hyperparameters created inside are active only when ``parent_name`` is in
        ``parent_values`` (otherwise they return ``None``), as in KerasTuner."""
        if not any(s["config"]["name"] == parent_name for s in self.space):
            raise ValueError(f"hp.conditional_scope: parent {parent_name!r} is not defined yet")
        wanted = (
            list(parent_values) if isinstance(parent_values, (list, tuple)) else [parent_values]
        )
        self._conditions.append(
            {"class_name": "Parent", "config": {"name": parent_name, "values": wanted}}
        )
        try:
            yield
        finally:
            self._conditions.pop()

    def get(self, name: str) -> Any:
        """The value of an active hyperparameter (``KeyError``/``ValueError`` as KerasTuner)."""
        if name in self.values:
            return self.values[name]
        if any(s["config"]["name"] == name for s in self.space):
            raise ValueError(f"{name} is currently inactive.")
        raise KeyError(f"{name} does not exist.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise UnsupportedHpCall(
            f"hp.{name} is not supported by sweep (supported: "
            f"{', '.join('hp.' + s for s in SUPPORTED)})"
        )

    # --- recording -----------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """``{"space": [...], "values": {...}}``: ``keras_tuner.HyperParameters.get_config()``
        form, which ``HyperParameters.from_config`` accepts."""
        return {"space": [dict(s) for s in self.space], "values": dict(self.values)}

    @contextlib.contextmanager
    def _maybe_scope(self, parent_name: str | None, parent_values: Any) -> Iterator[None]:
        if parent_name is None:
            yield
            return
        with self.conditional_scope(parent_name, parent_values):
            yield

    def _active(self, conditions: Sequence[Mapping[str, Any]]) -> bool:
        return all(
            c["config"]["name"] in self.values
            and self.values[c["config"]["name"]] in c["config"]["values"]
            for c in conditions
        )

    def _retrieve(self, kind: str, config: dict[str, Any]) -> Any:
        conditions = [dict(c) for c in self._conditions]
        spec = {"class_name": kind, "config": {**config, "conditions": conditions}}
        key = (config["name"], repr(conditions))
        if key not in self._seen:
            self._seen.add(key)
            self.space.append(spec)
        if not self._active(conditions):
            return None
        name = config["name"]
        if name not in self.values:
            if kind == "Fixed":
                value = config["value"]
            elif name in self._fixed:
                value = self._fixed[name]
            else:
                value = self._suggest(spec)
            self.values[name] = value
        return self.values[name]


def _sampling(kind: str, name: str, sampling: str | None, step: float | None) -> str:
    sampling = (sampling or "linear").lower()
    if sampling == "reverse_log":
        raise UnsupportedHpCall(
            f"hp.{kind}({name!r}, sampling='reverse_log') (Optuna has no reverse-log "
            "distribution; use 'linear' or 'log')"
        )
    if sampling not in ("linear", "log"):
        raise ValueError(f"hp.{kind}({name!r}): sampling must be linear or log, got {sampling!r}")
    if sampling == "log" and step is not None:
        raise UnsupportedHpCall(
            f"hp.{kind}({name!r}, sampling='log', step={step!r}) (a multiplicative step; "
            "Optuna's log ranges take no step)"
        )
    return sampling


def _check_range(kind: str, config: Mapping[str, Any]) -> None:
    name, low, high = config["name"], config["min_value"], config["max_value"]
    if low > high:
        raise ValueError(f"hp.{kind}({name!r}): min_value {low} is greater than max_value {high}")
    if config["sampling"] == "log" and low <= 0:
        raise ValueError(f"hp.{kind}({name!r}): sampling='log' needs min_value > 0, got {low}")
    if config["step"] is not None and config["step"] <= 0:
        raise ValueError(f"hp.{kind}({name!r}): step must be > 0, got {config['step']}")
