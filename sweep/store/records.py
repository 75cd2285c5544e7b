"""Frozen records of what a study holds, as :class:`sweep.store.read.StudyReader` returns them.

Standard library only. Each record is a frozen dataclass; its mapping fields are the stored JSON
(read-only by convention: annotated as :class:`~collections.abc.Mapping`). ``to_dict()`` gives
the JSON schema ``sweep best/trials/studies --format json`` and scripts rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sweep.config import STATES

#: Trial user attributes with a field of their own in a :class:`TrialRecord`.
KNOWN_ATTRS = (
    "params_full",
    "metrics",
    "flags",
    "seconds",
    "elbo_beta",
    "epochs_run",
    "fail_reason",
    "worker",
)


@dataclass(frozen=True)
class StudyRecord:
    """One study: its name, directions, the sweep's stored config and its trial counts.

    Attributes:
        name: The study name.
        directions: ``"maximize"``/``"minimize"`` per objective.
        config: The stored :class:`sweep.config.StudyConfig` JSON, ``None`` for a study not
            made by sweep.
        counts: Trials per state, every state present.
        created: ISO start (UTC) of the first trial, ``None`` without trials.
        last_completed: ISO completion (UTC) of the last COMPLETE or PRUNED trial, or ``None``.
        confirms: For the companion study of ``sweep confirm``, the study it confirms.
        extra_seeds, extra_seeds_finished: A racing study's extra-seed trials (all, and those
            COMPLETE or PRUNED); ``--n-trials`` counts configurations without them.
    """

    name: str
    directions: tuple[str, ...]
    config: Mapping[str, Any] | None
    counts: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    created: str | None = None
    last_completed: str | None = None
    confirms: str | None = None
    extra_seeds: int = 0
    extra_seeds_finished: int = 0

    @property
    def objectives(self) -> list[dict[str, Any]]:
        """``[{metric, direction}]``; the metric is ``None`` when the study does not name it."""
        return objectives_of(self.config, self.directions)

    @property
    def metric_names(self) -> list[str | None]:
        return [o["metric"] for o in self.objectives]

    @property
    def budget(self) -> int | None:
        """The sweep's ``n_trials``; ``None`` for a study not made by sweep."""
        n = (self.config or {}).get("n_trials")
        return int(n) if isinstance(n, int | float) and not isinstance(n, bool) else None

    @property
    def finished(self) -> int:
        """COMPLETE + PRUNED trials, a racing study's extra seeds apart: what the budget counts."""
        done = int(self.counts.get("COMPLETE", 0)) + int(self.counts.get("PRUNED", 0))
        return done - self.extra_seeds_finished

    @property
    def hypermodel(self) -> Mapping[str, Any] | None:
        """The KerasTuner hypermodel a study searches (``launch --hypermodel``), else ``None``."""
        value = (self.config or {}).get("hypermodel")
        return value if isinstance(value, Mapping) and value else None

    @property
    def is_hypermodel(self) -> bool:
        """Whether the study searches a user's KerasTuner hypermodel, not the built-in VAE."""
        return self.hypermodel is not None

    def config_dict(self) -> dict[str, Any]:
        """The stored config plus ``name`` and ``directions`` (``read.study_config``)."""
        return {**(self.config or {}), "name": self.name, "directions": list(self.directions)}

    def to_dict(self) -> dict[str, Any]:
        """The ``sweep studies --format json`` entry."""
        return {
            "name": self.name,
            "directions": list(self.directions),
            "counts": dict(self.counts),
            "finished": self.finished,
            "extra_seeds": self.extra_seeds,
            "budget": self.budget,
            "metrics": self.metric_names,
            "created": self.created,
            "confirms": self.confirms,
        }


@dataclass(frozen=True)
class TrialRecord:
    """One trial with its values, parameters and sweep's user attributes.

    ``params`` are external values (a categorical choice, not its index); ``history``,
    ``diagnostics`` and ``figure_sample`` are read only when asked for (``detailed``).
    ``baseline`` is the baseline's name on a study's baseline trial; ``user_attrs`` holds every
    other user attribute (a hypermodel trial's ``hyperparameters``, ``test_metrics``,
    ``prune_reason``...). ``seeds`` (a racing study's configuration) holds ``seeds``,
    ``value_mean``, ``value_sd`` and ``seed_values`` (:func:`sweep.seeds.summary`), the study's
    pooled ``seed_sd``, and ``ahead_of_next``: whether the seed noise separates it from the
    next configuration (``None`` for the last).
    """

    number: int
    state: str
    values: tuple[float, ...] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    params_full: Mapping[str, Any] | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    flags: tuple[Any, ...] = ()
    seconds: float | None = None
    epochs_run: int | None = None
    elbo_beta: float | None = None
    worker: str | None = None
    fail_reason: str | None = None
    baseline: str | None = None
    started: str | None = None
    completed: str | None = None
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    history: Mapping[str, Any] | None = None
    diagnostics: Any = None
    figure_sample: Any = None
    detailed: bool = False
    seeds: Mapping[str, Any] | None = None

    @property
    def value(self) -> float | None:
        """The first objective's value, or ``None``."""
        return self.values[0] if self.values else None

    @property
    def all_params(self) -> Mapping[str, Any]:
        """Every parameter the trial ran with (fixed ones included), else the searched ones."""
        return self.params_full or self.params

    def to_dict(self) -> dict[str, Any]:
        """The trial's JSON dict (``history``/``diagnostics`` only when ``detailed``)."""
        out: dict[str, Any] = {
            "number": self.number,
            "state": self.state,
            "values": list(self.values) if self.values is not None else None,
            "params": dict(self.params),
            "params_full": self.params_full,
            "metrics": dict(self.metrics),
            "flags": list(self.flags),
            "seconds": self.seconds,
            "epochs_run": self.epochs_run,
            "elbo_beta": self.elbo_beta,
            "worker": self.worker,
            "fail_reason": self.fail_reason,
            "baseline": self.baseline,
            "started": self.started,
            "completed": self.completed,
            "user_attrs": dict(self.user_attrs),
        }
        if self.seeds is not None:  # a racing study's configuration (sweep.seeds.summary)
            out.update(self.seeds)
        if self.detailed:
            out["history"] = self.history
            out["diagnostics"] = self.diagnostics
            if self.figure_sample is not None:
                out["figure_sample"] = self.figure_sample
        return out


@dataclass(frozen=True)
class ReferenceRecord:
    """The study's supervised reference (fitted at launch; ``--reference none``: absent).

    Attributes:
        label: e.g. ``"logistic, 100-bp bins"``.
        metrics: Its validation metrics (``expression_hidden.*``).
        values: The objectives where it reports that metric (``None`` where it does not), or
            ``None`` without metrics.
        seconds: Its fitting time.
        error: Why it failed at launch, else ``None``.
        details: The stored JSON less ``metrics`` and ``error`` (C, features, rows, split,
            ``test_metrics`` once ``sweep confirm`` scored it).
    """

    label: str
    metrics: Mapping[str, Any]
    values: tuple[float | None, ...] | None
    seconds: float | None
    error: str | None
    details: Mapping[str, Any]

    @property
    def test_metrics(self) -> dict[str, Any]:
        """Test metrics (keys without ``test.``) once ``confirm`` scored them; empty before."""
        test = self.details.get("test_metrics")
        if not isinstance(test, Mapping):
            return {}
        return {str(k).removeprefix("test."): v for k, v in test.items()}

    def to_dict(self) -> dict[str, Any]:
        """The reference as a ``best`` column: a trial dict's keys, ``state`` ``"REFERENCE"``."""
        return {
            "number": None,
            "state": "REFERENCE",
            "reference": self.label,
            "values": list(self.values) if self.values is not None else None,
            "params": {},
            "metrics": dict(self.metrics),
            "flags": None,
            "seconds": self.seconds,
            "error": self.error,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class ConfirmationRecord:
    """The confirmation runs of a study (``sweep confirm``), as stored in its companion study.

    Attributes:
        study: The confirmed study.
        companion: The companion study's name.
        jobs: The companion's planned jobs (``source``, ``seed_index``, ``seed``, ``key``,
            ``baseline``...), as stored.
        trials: The companion's trials, in number order.
    """

    study: str
    companion: str
    jobs: tuple[Mapping[str, Any], ...]
    trials: tuple[TrialRecord, ...]


@dataclass(frozen=True)
class RunningRecord:
    """A RUNNING trial: when it started, its heartbeat's age and its epoch progress."""

    number: int
    started: str | None
    heartbeat_age_s: float | None
    epoch: int | None = None
    epochs: int | None = None


def objectives_of(
    config: Mapping[str, Any] | None, directions: tuple[str, ...] | list[str]
) -> list[dict[str, Any]]:
    """``[{metric, direction}]``; the metric is ``None`` when the study does not name it."""
    metrics: list[Any] = []
    if isinstance(config, Mapping) and isinstance(config.get("space"), Mapping):
        raw = config["space"].get("objective")
        raw = [raw] if isinstance(raw, Mapping) else raw
        if isinstance(raw, list):
            metrics = [o.get("metric") if isinstance(o, Mapping) else None for o in raw]
    return [
        {"metric": metrics[i] if i < len(metrics) else None, "direction": d}
        for i, d in enumerate(directions)
    ]


__all__ = [
    "ConfirmationRecord",
    "ReferenceRecord",
    "RunningRecord",
    "StudyRecord",
    "TrialRecord",
    "objectives_of",
]
