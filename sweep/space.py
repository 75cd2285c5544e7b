"""Search-space files: parse once, validate fully, suggest :class:`TrialParams` from a trial.

A space file is YAML with these top-level keys::

    description: free text (optional)
    objective: {metric: expression.auroc, direction: maximize}   # or a list of such mappings
    baseline: notes                  # optional: `sweep launch` enqueues it as trial 0
    search:                                                      # Optuna's short form per name
      coding_size: {type: categorical, choices: [150, 300, 400, 500]}
      focal_gamma: {type: float, low: 1.5, high: 2.0}
      kl_beta: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      epochs: {type: int, low: 5, high: 20, step: 5}
      focal_alpha_applied: {type: categorical, choices: [false, true]}           # a switch
      focal_alpha: {type: float, low: 0.25, high: 0.75, when: {focal_alpha_applied: true}}
    fixed:                                                       # any other TrialParams field
      encoder_units: [1280, 1024, 768, 512]

Every name is a :class:`sweep.params.TrialParams` field; anything not named keeps its default.
``when: {parent: value}`` makes a name conditional: it is suggested only in trials whose
``parent`` (a searched, unconditional categorical) took ``value``; otherwise it is not suggested
at all and keeps its :class:`TrialParams` default (``focal_alpha``: none, not applied). A
*switch* is a searched categorical that is not a TrialParams field and that some ``when`` names;
it only decides what is suggested. This module imports PyYAML and Optuna's distributions, never
TensorFlow.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import yaml

from sweep.dialects import distribution as to_distribution
from sweep.dialects import suggest as suggest_value
from sweep.errors import ParamError
from sweep.errors import SpaceError
from sweep.params import BASELINES
from sweep.params import PARAM_NAMES
from sweep.params import TrialParams
from sweep.params import coerce
from sweep.params import field_kind
from sweep.params import units_label

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

TOP_LEVEL_KEYS = ("description", "objective", "search", "fixed", "baseline")
DIRECTIONS = ("maximize", "minimize")
BUILTIN_SPACES_DIR = Path(__file__).parent / "spaces"

_DIST_KEYS = {
    "float": {"type", "low", "high", "log", "step", "when"},
    "int": {"type", "low", "high", "log", "step", "when"},
    "categorical": {"type", "choices", "when"},
}


@dataclass(frozen=True)
class Objective:
    """One metric to optimise, with its direction."""

    metric: str
    direction: str


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: distributions, fixed values and objectives.

    ``search`` maps names to the short-form dicts from the file (normalised; a conditional one
    keeps its ``when``), ``fixed`` to coerced values; :meth:`distributions` gives Optuna
    distributions. ``baseline`` names a :data:`sweep.params.BASELINES` entry that ``sweep
    launch`` enqueues by default, or is ``None``.
    """

    search: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    objectives: tuple[Objective, ...]
    description: str = ""
    source: str = field(default="<dict>", compare=False)
    baseline: str | None = None

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def is_multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def is_conditional(self) -> bool:
        """Whether some searched name has a ``when`` (a define-by-run space)."""
        return any("when" in spec for spec in self.search.values())

    @property
    def switches(self) -> list[str]:
        """Searched names that are not TrialParams fields (they only gate conditional names)."""
        return [name for name in self.search if name not in PARAM_NAMES]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form; ``SearchSpace.from_mapping(s.to_json())`` rebuilds an equal space."""
        out: dict[str, Any] = {
            "description": self.description,
            "objective": [{"metric": o.metric, "direction": o.direction} for o in self.objectives],
            "search": self.search,
            "fixed": {k: _jsonable(k, v) for k, v in self.fixed.items()},
        }
        if self.baseline is not None:
            out["baseline"] = self.baseline
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the space (description and baseline excluded)."""
        body = self.to_json()
        body.pop("description")
        body.pop("baseline", None)
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def with_objective(self, metric: str, direction: str, *, source: str) -> SearchSpace:
        """A copy optimising ``metric`` in ``direction`` alone (``launch --objective``)."""
        data = {**self.to_json(), "objective": {"metric": metric, "direction": direction}}
        return SearchSpace.from_mapping(data, source=source)

    def with_fixed(self, overrides: Mapping[str, Any]) -> SearchSpace:
        """A copy where ``overrides`` (already coerced) replace fixed or searched values.

        Fixing a parent resolves its conditions: a child whose ``when`` matches the fixed value
        is always searched, any other is dropped (it keeps its default); a switch that no longer
        gates anything is dropped.
        """
        search: dict[str, dict[str, Any]] = {}
        for name, spec in self.search.items():
            if name in overrides:
                continue
            if "when" in spec:
                ((parent, wanted),) = spec["when"].items()
                if parent in overrides:
                    fixed_value = overrides[parent]
                    if isinstance(fixed_value, tuple):
                        fixed_value = units_label(fixed_value)
                    if not _same(fixed_value, wanted):
                        continue
                    spec = {k: v for k, v in spec.items() if k != "when"}
            search[name] = spec
        gating = {next(iter(s["when"])) for s in search.values() if "when" in s}
        search = {k: v for k, v in search.items() if k in PARAM_NAMES or k in gating}
        data = {**self.to_json(), "search": search, "fixed": {**self.fixed, **overrides}}
        return SearchSpace.from_mapping(data, source=self.source)

    def distributions(self) -> dict[str, BaseDistribution]:
        """Optuna distributions for the searched names."""
        return {name: to_distribution(spec) for name, spec in self.search.items()}

    def suggest(self, trial: optuna.trial.BaseTrial) -> TrialParams:
        """Ask ``trial`` for every searched value and build the full :class:`TrialParams`.

        Parents are asked first; a conditional name whose ``when`` does not hold is not asked
        for and keeps its :class:`TrialParams` default. Switches are asked for but are not
        TrialParams values.
        """
        values: dict[str, Any] = dict(self.fixed)
        chosen: dict[str, Any] = {}
        for name, spec in sorted(self.search.items(), key=lambda item: "when" in item[1]):
            if not _active(spec, chosen):
                continue
            value = suggest_value(trial, name, spec)
            chosen[name] = value
            if name in PARAM_NAMES:
                values[name] = value
        return TrialParams.from_dict(values)

    def trial_values(self, params: TrialParams, *, what: str = "the baseline") -> dict[str, Any]:
        """The searched values (switches included) for which :meth:`suggest` gives ``params``.

        What ``study.enqueue_trial`` needs to run ``params`` as a trial of this space; the
        fixed values stay as the space says. A conditional name whose ``when`` does not hold is
        left out.

        Raises:
            SpaceError: one line naming the value that lies outside the space's range or
                choices, or that the space's conditions cannot express.
        """
        wanted = {name: _label(getattr(params, name)) for name in PARAM_NAMES}
        out: dict[str, Any] = {}
        for name, spec in self.search.items():
            if name in PARAM_NAMES and "when" not in spec:
                self._check_inside(name, spec, wanted[name], what)
                out[name] = wanted[name]
        default = TrialParams()
        for switch in self.switches:
            problems = []
            for choice in self.search[switch]["choices"]:
                problem = self._children_problem(switch, choice, wanted, default, what)
                if problem is None:
                    out[switch] = choice
                    break
                problems.append(problem)
            else:
                raise SpaceError(problems[0])
        for name, spec in self.search.items():
            if "when" in spec:
                ((parent, value),) = spec["when"].items()
                if _same(out[parent], value):
                    out[name] = wanted[name]
                elif parent in PARAM_NAMES:
                    problem = self._children_problem(parent, out[parent], wanted, default, what)
                    if problem is not None:
                        raise SpaceError(problem)
        return out

    def _children_problem(
        self, parent: str, choice: Any, wanted: Mapping[str, Any], default: TrialParams, what: str
    ) -> str | None:
        """Why ``parent=choice`` cannot give ``wanted`` to the names it gates, or ``None``."""
        for name, spec in self.search.items():
            if "when" not in spec or next(iter(spec["when"])) != parent:
                continue
            if _same(choice, spec["when"][parent]):
                try:
                    self._check_inside(name, spec, wanted[name], what)
                except SpaceError as e:
                    return str(e)
            elif not _same(wanted[name], _label(getattr(default, name))):
                return (
                    f"{self.source}: search.{name}: {what} needs {name}={wanted[name]!r}, but "
                    f"the space leaves it at its default {getattr(default, name)!r} when "
                    f"{parent}={choice!r}"
                )
        return None

    def _check_inside(self, name: str, spec: Mapping[str, Any], value: Any, what: str) -> None:
        if spec["type"] == "categorical":
            ok = any(_same(value, c) for c in spec["choices"])
            expected = f"one of {spec['choices']}"
        else:
            ok = isinstance(value, (int, float)) and spec["low"] <= value <= spec["high"]
            if ok and spec["step"] is not None:
                steps = (value - spec["low"]) / spec["step"]
                ok = math.isclose(steps, round(steps), abs_tol=1e-9)
            expected = f"[{spec['low']}, {spec['high']}]" + (
                f" in steps of {spec['step']}" if spec["step"] is not None else ""
            )
        if not ok:
            raise SpaceError(
                f"{self.source}: search.{name}: {what} needs {name}={value!r}, outside the "
                f"space's {expected}"
            )

    def grid(self) -> dict[str, list[Any]]:
        """Every searched name's values for a grid search.

        Raises:
            SpaceError: when a float or log range has no step, so the grid would be infinite,
                or when the space is conditional.
        """
        grid: dict[str, list[Any]] = {}
        for name, spec in self.search.items():
            if "when" in spec:
                continue
            if spec["type"] == "categorical":
                grid[name] = list(spec["choices"])
            elif spec["step"] is not None and not spec["log"]:
                count = int(round((spec["high"] - spec["low"]) / spec["step"])) + 1
                values = [spec["low"] + i * spec["step"] for i in range(count)]
                grid[name] = [int(v) if spec["type"] == "int" else float(v) for v in values]
            elif spec["type"] == "int" and not spec["log"]:
                grid[name] = list(range(spec["low"], spec["high"] + 1))
            else:
                raise SpaceError(
                    f"{self.source}: the grid sampler needs choices or a step for every searched "
                    f"name; search.{name} is a continuous range (add step: or use --sampler tpe)"
                )
        for name, spec in self.search.items():
            if "when" in spec:
                raise SpaceError(
                    f"{self.source}: the grid sampler cannot search a conditional name; "
                    f"search.{name} has when: (list none among its choices instead, or use "
                    "--sampler tpe)"
                )
        return grid

    def check_metrics(self, known: Sequence[str]) -> None:
        """Raise :class:`SpaceError` when an objective names a metric not in ``known``."""
        for objective in self.objectives:
            if objective.metric not in known:
                leaf = objective.metric.split(".")[-1]
                close = [k for k in known if k.split(".")[-1] == leaf]
                close = close or difflib.get_close_matches(objective.metric, known, n=1)
                families = dict.fromkeys(k.rsplit(".", 1)[0] + ".*" for k in known)
                hint = (
                    f" (did you mean {close[0]}?)"
                    if close
                    else f" (it reports {', '.join(families)})"
                )
                raise SpaceError(
                    f"{self.source}: objective metric {objective.metric!r} does not exist for "
                    f"this data{hint}; see `sweep metrics` for the names"
                )

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "<dict>") -> SearchSpace:
        """Validate a parsed document.

        Raises:
            SpaceError: naming ``source``, the key, what was expected and what was found.
        """
        if not isinstance(data, Mapping):
            raise SpaceError(f"{source}: expected a mapping at the top level, got {_kind(data)}")
        unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
        if unknown:
            raise SpaceError(
                f"{source}: unknown top-level key {unknown[0]!r}; "
                f"expected {', '.join(TOP_LEVEL_KEYS)}"
            )
        description = data.get("description") or ""
        if not isinstance(description, str):
            raise SpaceError(f"{source}: description: expected text, got {_kind(description)}")
        objectives = _parse_objectives(data.get("objective"), source)
        baseline = data.get("baseline")
        if baseline is not None and baseline not in BASELINES:
            raise SpaceError(
                f"{source}: baseline: expected one of {', '.join(BASELINES)}, got {baseline!r}"
            )
        search_raw = data.get("search") or {}
        fixed_raw = data.get("fixed") or {}
        parents = _parents(search_raw)
        for key, section in (("search", search_raw), ("fixed", fixed_raw)):
            if not isinstance(section, Mapping):
                raise SpaceError(f"{source}: {key}: expected a mapping, got {_kind(section)}")
            for name in section:
                if name not in PARAM_NAMES and not (key == "search" and name in parents):
                    raise SpaceError(
                        f"{source}: {key}.{name}: unknown hyperparameter; known: "
                        f"{', '.join(PARAM_NAMES)}"
                    )
        both = sorted(set(search_raw) & set(fixed_raw))
        if both:
            raise SpaceError(f"{source}: {both[0]} is both searched and fixed; keep one")
        fixed = {}
        for name, value in fixed_raw.items():
            try:
                fixed[name] = coerce(name, value)
            except ParamError as e:
                raise SpaceError(f"{source}: fixed.{name}: {_reason(e)}") from None
        search = {name: _parse_spec(name, spec, source) for name, spec in search_raw.items()}
        _check_conditions(search, source)
        space = cls(search, fixed, objectives, description, source, baseline)
        space._check_corners()
        return space

    def _check_corners(self) -> None:
        """Every bound and choice must make a valid TrialParams with the fixed values."""
        try:
            TrialParams.from_dict(self.fixed)
        except ParamError as e:
            raise SpaceError(f"{self.source}: fixed: {_reason(e)}") from None
        for name, spec in self.search.items():
            if name not in PARAM_NAMES:
                continue
            corners = (
                spec["choices"] if spec["type"] == "categorical" else [spec["low"], spec["high"]]
            )
            for value in corners:
                try:
                    TrialParams.from_dict({**self.fixed, name: value})
                except ParamError as e:
                    raise SpaceError(f"{self.source}: search.{name}: {_reason(e)}") from None


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space YAML file (safe loader only).

    ``path`` may also name a bundled space (``notes``, ``notes_wide``, ``tiny``).

    Raises:
        SpaceError: on a missing file, invalid YAML or an invalid space.
    """
    path = resolve_space_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpaceError(f"search-space file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpaceError(f"search-space file '{path}' cannot be read: {e}") from None
    try:
        data = yaml.safe_load(text)
    except Exception as e:  # YAMLError, and ValueError/AttributeError from bad !!timestamp etc.
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpaceError(f"search-space file '{path}' is not valid YAML{where}") from None
    return SearchSpace.from_mapping(data, source=f"search-space file '{path}'")


def resolve_space_path(path: str | Path) -> Path:
    """A path as given, or a bundled space by name (``notes`` -> the packaged notes.yaml)."""
    candidate = Path(path)
    if candidate.exists() or candidate.suffix in (".yaml", ".yml") or "/" in str(path):
        return candidate
    bundled = BUILTIN_SPACES_DIR / f"{path}.yaml"
    return bundled if bundled.exists() else candidate


def _parse_objectives(raw: Any, source: str) -> tuple[Objective, ...]:
    if raw is None:
        raise SpaceError(
            f"{source}: missing objective; e.g. objective: {{metric: expression.auroc, "
            "direction: maximize}"
        )
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise SpaceError(f"{source}: objective: expected at least one metric, got an empty list")
    objectives = []
    for item in items:
        if not isinstance(item, Mapping) or set(item) != {"metric", "direction"}:
            raise SpaceError(
                f"{source}: objective: expected a mapping with exactly metric and direction, "
                f"got {item!r}"
            )
        metric, direction = item["metric"], item["direction"]
        if not isinstance(metric, str) or not metric:
            raise SpaceError(f"{source}: objective.metric: expected a metric name, got {metric!r}")
        if direction not in DIRECTIONS:
            raise SpaceError(
                f"{source}: objective.direction: expected maximize or minimize, got {direction!r}"
            )
        objectives.append(Objective(metric, direction))
    metrics = [o.metric for o in objectives]
    if len(set(metrics)) != len(metrics):
        raise SpaceError(f"{source}: objective: a metric is listed twice: {metrics}")
    return tuple(objectives)


def _parse_spec(name: str, spec: Any, source: str) -> dict[str, Any]:
    where = f"{source}: search.{name}"
    if not isinstance(spec, Mapping):
        raise SpaceError(
            f"{where}: expected a mapping like {{type: float, low: .., high: ..}}, "
            f"got {_kind(spec)}"
        )
    kind = spec.get("type")
    if kind not in _DIST_KEYS:
        raise SpaceError(f"{where}.type: expected float, int or categorical, got {kind!r}")
    extra = sorted(set(spec) - _DIST_KEYS[kind])
    if extra:
        raise SpaceError(
            f"{where}: unknown key {extra[0]!r} for type {kind}; expected "
            f"{', '.join(sorted(_DIST_KEYS[kind]))}"
        )
    parsed = _parse_distribution(name, spec, kind, where)
    if "when" in spec:
        when = spec["when"]
        if not isinstance(when, Mapping) or len(when) != 1:
            raise SpaceError(
                f"{where}.when: expected one parent and its value, e.g. "
                f"{{focal_alpha_applied: true}}, got {when!r}"
            )
        parsed["when"] = dict(when)
    return parsed


def _parse_distribution(
    name: str, spec: Mapping[str, Any], kind: str, where: str
) -> dict[str, Any]:
    if name not in PARAM_NAMES:  # a switch: plain scalar choices, no TrialParams field
        choices = spec.get("choices")
        if kind != "categorical":
            raise SpaceError(
                f"{where}.type: {name} is not a hyperparameter, so it can only be a switch; "
                f"expected type: categorical, got {kind}"
            )
        if not isinstance(choices, list) or len(choices) < 2:
            raise SpaceError(f"{where}.choices: expected a list of 2 or more, got {choices!r}")
        if not all(isinstance(c, (bool, int, float, str)) for c in choices):
            raise SpaceError(f"{where}.choices: expected plain values, got {choices!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise SpaceError(f"{where}.choices: a choice is listed twice: {choices!r}")
        return {"type": "categorical", "choices": list(choices)}
    field_type = field_kind(name)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}.choices: expected a non-empty list, got {choices!r}")
        coerced = []
        for choice in choices:
            try:
                value = coerce(name, choice)
            except ParamError as e:
                raise SpaceError(f"{where}.choices: {_reason(e)}") from None
            coerced.append(units_label(value) if isinstance(value, tuple) else value)
        if len(set(map(repr, coerced))) != len(coerced):
            raise SpaceError(f"{where}.choices: a choice is listed twice: {choices!r}")
        return {"type": "categorical", "choices": coerced}
    base = field_type.removesuffix("_or_none")
    if kind == "float" and base != "float" or kind == "int" and base not in ("int", "float"):
        raise SpaceError(
            f"{where}.type: {name} takes {base} values; a {kind} range does not fit "
            "(use type: categorical)"
        )
    number = float if kind == "float" else int
    out: dict[str, Any] = {"type": kind}
    for key in ("low", "high"):
        if key not in spec:
            raise SpaceError(f"{where}: missing {key}")
        out[key] = _number(spec[key], number, f"{where}.{key}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}.log: expected true or false, got {log!r}")
    out["log"] = log
    step = spec.get("step")
    out["step"] = None if step is None else _number(step, number, f"{where}.step")
    if out["low"] > out["high"]:
        raise SpaceError(f"{where}: low ({out['low']}) is greater than high ({out['high']})")
    if log and out["low"] <= 0:
        raise SpaceError(f"{where}: a log range needs low > 0, got low={out['low']}")
    if out["step"] is not None:
        if out["step"] <= 0:
            raise SpaceError(f"{where}.step: expected a number > 0, got {out['step']}")
        if log:
            raise SpaceError(f"{where}: step and log cannot be combined")
    return out


def _parents(search_raw: Any) -> set[str]:
    """Every name a ``when`` in the raw search section refers to."""
    if not isinstance(search_raw, Mapping):
        return set()
    return {
        parent
        for spec in search_raw.values()
        if isinstance(spec, Mapping) and isinstance(spec.get("when"), Mapping)
        for parent in spec["when"]
    }


def _check_conditions(search: Mapping[str, Mapping[str, Any]], source: str) -> None:
    """Each ``when`` names a searched, unconditional categorical and one of its choices."""
    for name, spec in search.items():
        if "when" not in spec:
            continue
        ((parent, value),) = spec["when"].items()
        where = f"{source}: search.{name}.when"
        if parent == name or parent not in search:
            raise SpaceError(
                f"{where}: unknown parent {parent!r}; expected a searched categorical name"
            )
        parent_spec = search[parent]
        if parent_spec["type"] != "categorical":
            raise SpaceError(
                f"{where}: parent {parent!r} is a {parent_spec['type']} range; expected a "
                "categorical"
            )
        if "when" in parent_spec:
            raise SpaceError(
                f"{where}: parent {parent!r} is itself conditional; expected an unconditional "
                "categorical (nested conditions are not supported)"
            )
        if parent in PARAM_NAMES:
            try:
                value = _label(coerce(parent, value))
            except ParamError as e:
                raise SpaceError(f"{where}.{parent}: {_reason(e)}") from None
            spec["when"][parent] = value  # type: ignore[index]
        if not any(_same(value, c) for c in parent_spec["choices"]):
            raise SpaceError(
                f"{where}.{parent}: expected one of {parent_spec['choices']}, got {value!r}"
            )
    gating = _parents(search)
    for name in search:
        if name not in PARAM_NAMES and name not in gating:
            raise SpaceError(
                f"{source}: search.{name}: unknown hyperparameter; known: {', '.join(PARAM_NAMES)}"
            )


def _active(spec: Mapping[str, Any], chosen: Mapping[str, Any]) -> bool:
    """Whether a name is suggested, given the values its parents already took."""
    if "when" not in spec:
        return True
    ((parent, value),) = spec["when"].items()
    return parent in chosen and _same(chosen[parent], value)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind (``True`` is not ``1``; ``0.5`` may match ``0.5``)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _label(value: Any) -> Any:
    """A TrialParams value in the form a categorical choice stores (stacks as ``512-256``)."""
    return units_label(value) if isinstance(value, tuple) else value


def _number(value: Any, number: type, where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpaceError(f"{where}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise SpaceError(f"{where}: expected a finite number, got {value!r}")
    if number is int and not float(value).is_integer():
        raise SpaceError(f"{where}: expected an integer, got {value!r}")
    return number(value)


def _jsonable(name: str, value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _reason(error: ParamError) -> str:
    return str(error).removeprefix("invalid value for ")


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "nothing"
