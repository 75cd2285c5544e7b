"""The trial protocol: what kind of trial a study runs, and the typed request and result.

Every trial ``sweep`` runs, whatever its kind, goes through the same steps: the worker's
:class:`sweep.run.objective.Objective` turns an Optuna trial into a :class:`TrialRequest`, a
child process (:mod:`sweep.run.isolation`, :mod:`sweep.run._child`) runs it and answers with a
:class:`TrialOutcome`, and the objective records that result on the trial. The kind is decided
here, once, by :func:`trial_kind`:

* ``vae``: the built-in VAE (:mod:`sweep.train.engine`), parameters from the search space;
* ``hypermodel``: a user's KerasTuner hypermodel (:mod:`sweep.train.hypermodel`), its ``hp``
  calls answered define-by-run by the Optuna trial;
* either of those as a **confirmation run** (``confirm=True``): the parameters of a source
  trial with a fresh seed, scored on validation and test (:mod:`sweep.store.confirm`).

Standard library only: the launch, the worker and the child all import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

#: The models a trial can train.
Model = Literal["vae", "hypermodel"]
#: What a child process is asked to do: run a trial, only split the data (a worker's check), or
#: build the model and run one training step on one batch (a launch's check).
Purpose = Literal["trial", "split", "preflight"]


@dataclass(frozen=True)
class TrialKind:
    """What every trial of a study is: its model, and whether it is a confirmation run."""

    model: Model = "vae"
    confirm: bool = False

    def __str__(self) -> str:
        return f"{self.model} confirmation" if self.confirm else self.model


def trial_kind(hypermodel: Mapping[str, Any] | None, study_attrs: Mapping[str, Any]) -> TrialKind:
    """The kind of the trials of a study: the one place this is decided.

    Args:
        hypermodel: The study's hypermodel spec (:attr:`sweep.config.StudyConfig.hypermodel`),
            ``None`` for the built-in VAE.
        study_attrs: The study's user attributes (a companion study of confirmation runs holds
            :data:`sweep.config.CONFIRM_ATTR`).
    """
    from sweep.config import CONFIRM_ATTR

    return TrialKind(
        model="hypermodel" if hypermodel else "vae", confirm=CONFIRM_ATTR in study_attrs
    )


@dataclass(frozen=True)
class DataSplit:
    """A data file and the split a study makes of it (``split_sha256`` checks the rows)."""

    data_path: str
    val_fraction: float
    test_fraction: float
    split_seed: int
    split_sha256: str = ""

    @classmethod
    def of(cls, settings: Any, data_path: str, split_sha256: str = "") -> DataSplit:
        """The split ``settings`` (a study's config or a launch's settings) makes of a file."""
        return cls(
            data_path,
            settings.val_fraction,
            settings.test_fraction,
            settings.split_seed,
            split_sha256,
        )

    def same_rows(self, other: DataSplit) -> bool:
        """Whether ``other`` loads the same file with the same split (a warm spare's check)."""
        keys = ("data_path", "val_fraction", "test_fraction", "split_seed")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


@dataclass(frozen=True)
class HypermodelCall:
    """How a child builds and fits a user's hypermodel.

    Attributes:
        ref: ``module:attr`` or an absolute ``path/file.py:attr``.
        fixed: Values set with ``--set`` (never asked).
        fit: ``epochs`` and ``batch_size`` (and ``seed``) for ``fit``.
        objective: The Keras metric optimised (``val_loss``...).
        direction: ``minimize`` or ``maximize``.
        values: A confirmation run's values for every hyperparameter: answered from here, never
            asked of the parent; ``None`` in a search.
    """

    ref: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    fit: Mapping[str, Any] = field(default_factory=dict)
    objective: str = "val_loss"
    direction: str = "minimize"
    values: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TrialRequest:
    """What a child process needs to run one trial (sent as one JSON line).

    Attributes:
        kind: The trial's kind (:func:`trial_kind`).
        split: The data file and its split; the child refuses rows whose hash differs.
        params: For the VAE: every :class:`sweep.params.TrialParams` value.
        hypermodel: For a hypermodel: how to build and fit it.
        purpose: ``trial``, ``split`` (return the split's hash only) or ``preflight``.
        epoch_metrics: Metrics measured after every epoch; the first goes to the pruner.
        samples_path: Where the child saves the VAE's samples file (``None``: not saved).
        weights_path: Where the child saves the trained weights (``None``: not saved).
    """

    kind: TrialKind
    split: DataSplit
    params: Mapping[str, Any] = field(default_factory=dict)
    hypermodel: HypermodelCall | None = None
    purpose: Purpose = "trial"
    epoch_metrics: tuple[str, ...] = ()
    samples_path: str | None = None
    weights_path: str | None = None

    @property
    def score_test(self) -> bool:
        """Confirmation runs, and only they, also score the test split."""
        return self.kind.confirm

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": dataclasses.asdict(self.kind),
            "split": dataclasses.asdict(self.split),
            "params": dict(self.params),
            "hypermodel": None if self.hypermodel is None else _call_json(self.hypermodel),
            "purpose": self.purpose,
            "epoch_metrics": list(self.epoch_metrics),
            "samples_path": self.samples_path,
            "weights_path": self.weights_path,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialRequest:
        call = data.get("hypermodel")
        return cls(
            kind=TrialKind(**data["kind"]),
            split=DataSplit(**data["split"]),
            params=dict(data.get("params") or {}),
            hypermodel=None if call is None else HypermodelCall(**call),
            purpose=data.get("purpose", "trial"),
            epoch_metrics=tuple(data.get("epoch_metrics") or ()),
            samples_path=data.get("samples_path"),
            weights_path=data.get("weights_path"),
        )


def _call_json(call: HypermodelCall) -> dict[str, Any]:
    out = dataclasses.asdict(call)
    out["fixed"] = dict(call.fixed)
    out["fit"] = dict(call.fit)
    out["values"] = None if call.values is None else dict(call.values)
    return out


@dataclass(frozen=True)
class TrialOutcome:
    """What a child answers: the same fields for every kind (empty where one does not apply).

    Attributes:
        metrics: Validation metrics (the objectives among them).
        test_metrics: ``test.*`` metrics (confirmation runs only).
        history: Per-epoch curves.
        epochs_run: Epochs trained (``None`` when ``fit`` did not say).
        seconds: Seconds the child spent on the trial.
        hyperparameters: A hypermodel's ``HyperParameters.get_config()``.
        extra: What only one kind records (the VAE's diagnostics, flags, figure sample...),
            stored as trial user attributes under the same keys.
        timing: Stage seconds (:mod:`sweep.run.isolation`).
        split_sha256: The split's hash (``purpose="split"``).
        reported: The metric names the model reports (``purpose="preflight"``).
    """

    metrics: Mapping[str, Any] = field(default_factory=dict)
    test_metrics: Mapping[str, Any] = field(default_factory=dict)
    history: Mapping[str, Any] = field(default_factory=dict)
    epochs_run: int | None = None
    seconds: float = 0.0
    hyperparameters: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    timing: Mapping[str, Any] = field(default_factory=dict)
    split_sha256: str = ""
    reported: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["reported"] = list(self.reported)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrialOutcome:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["reported"] = tuple(values.get("reported") or ())
        return cls(**values)

    def with_timing(self, timing: Mapping[str, Any]) -> TrialOutcome:
        return dataclasses.replace(self, timing=dict(timing))


__all__ = [
    "DataSplit",
    "HypermodelCall",
    "Model",
    "Purpose",
    "TrialKind",
    "TrialRequest",
    "TrialOutcome",
    "trial_kind",
]
