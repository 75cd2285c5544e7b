"""One schema for every hyperparameter of a trial: :class:`TrialParams`.

The model builder, the trainer, the search-space parser and the CLI's ``--set name=value`` all
read the same dataclass, so a name or a range lives in exactly one place. Defaults are the notes'
best hand-tuned configuration.

This module imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweep.errors import ParamError

LOSSES = ("focal", "bce")
DATASETS = ("original", "balanced")
ACTIVATIONS = ("relu", "elu", "selu", "gelu", "tanh", "leaky_relu", "swish")


@dataclass(frozen=True)
class TrialParams:
    """Hyperparameters of one VAE trial.

    Attributes:
        coding_size: Number of latent dimensions.
        encoder_units: Widths of the encoder's Dense layers, input side first.
        decoder_units: Widths of the decoder's Dense layers, latent side first; ``None`` mirrors
            the encoder.
        activation: Activation of every hidden Dense layer.
        decoder_batch_norm: BatchNormalization after each decoder Dense layer (the notes' "BN").
        decoder_dropout: Dropout rate after each decoder Dense layer; 0 disables it.
        loss: Reconstruction loss, ``"focal"`` or ``"bce"``.
        focal_gamma: Focusing parameter of the focal loss.
        focal_alpha: Weight of the ones in the focal loss (class balancing); ``None`` applies no
            class balancing, which is what Keras does when ``apply_class_balancing`` is off.
        kl_beta: Weight of the KL term. The reconstruction loss is a mean over features, so the
            ELBO-scale weight is ``kl_beta * n_features`` (recorded with every trial).
        kl_warmup_epochs: Epochs over which the KL weight rises linearly from 0 to ``kl_beta``.
        dataset: ``"original"`` or ``"balanced"`` (majority expression class undersampled in the
            training split only).
        learning_rate: Adam's initial learning rate.
        batch_size: Rows per training step.
        epochs: Maximum number of training epochs.
        reduce_lr_on_plateau: Halve the learning rate when the validation loss stalls.
        early_stopping_patience: Stop after this many epochs without validation improvement;
            0 disables early stopping.
        label_weight: Weight of the label (expression) bit in the reconstruction loss, whose
            per-row mean over features becomes ``(sum of mark terms + label_weight * label
            term) / n_features``; 1 is the notes' loss, where the bit is 1/n_features of it.
        label_dropout: Share of training rows whose *input* label bit is hidden at each step
            (replaced by a fair coin, the two values the label-hidden probe averages over), so
            the model learns the label from the marks; targets keep the true bit, and
            validation and test rows are never hidden. 0 hides nothing.
        seed: Seed for weights, sampling noise, balancing and batch order.
    """

    coding_size: int = 300
    encoder_units: tuple[int, ...] = (1280, 1024, 768, 512)
    decoder_units: tuple[int, ...] | None = None
    activation: str = "relu"
    decoder_batch_norm: bool = False
    decoder_dropout: float = 0.0
    loss: str = "focal"
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    kl_beta: float = 1e-4
    kl_warmup_epochs: int = 0
    dataset: str = "balanced"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 10
    reduce_lr_on_plateau: bool = True
    early_stopping_patience: int = 0
    label_weight: float = 1.0
    label_dropout: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.coding_size >= 1, "coding_size", "an integer >= 1", self.coding_size)
        _check(
            len(self.encoder_units) >= 1 and all(u >= 1 for u in self.encoder_units),
            "encoder_units",
            "one or more layer widths >= 1",
            self.encoder_units,
        )
        if self.decoder_units is not None:
            _check(
                len(self.decoder_units) >= 1 and all(u >= 1 for u in self.decoder_units),
                "decoder_units",
                "one or more layer widths >= 1, or none to mirror the encoder",
                self.decoder_units,
            )
        _check(
            self.activation in ACTIVATIONS, "activation", f"one of {ACTIVATIONS}", self.activation
        )
        _check(
            0.0 <= self.decoder_dropout < 1.0,
            "decoder_dropout",
            "a rate in [0, 1)",
            self.decoder_dropout,
        )
        _check(self.loss in LOSSES, "loss", f"one of {LOSSES}", self.loss)
        _check(self.focal_gamma >= 0.0, "focal_gamma", "a number >= 0", self.focal_gamma)
        if self.focal_alpha is not None:
            _check(
                0.0 < self.focal_alpha < 1.0,
                "focal_alpha",
                "a weight in (0, 1), or none for no class balancing",
                self.focal_alpha,
            )
        _check(self.kl_beta >= 0.0, "kl_beta", "a number >= 0", self.kl_beta)
        _check(
            self.kl_warmup_epochs >= 0,
            "kl_warmup_epochs",
            "an integer >= 0",
            self.kl_warmup_epochs,
        )
        _check(self.dataset in DATASETS, "dataset", f"one of {DATASETS}", self.dataset)
        _check(self.learning_rate > 0.0, "learning_rate", "a number > 0", self.learning_rate)
        _check(self.batch_size >= 1, "batch_size", "an integer >= 1", self.batch_size)
        _check(self.epochs >= 1, "epochs", "an integer >= 1", self.epochs)
        _check(
            self.early_stopping_patience >= 0,
            "early_stopping_patience",
            "an integer >= 0 (0 = off)",
            self.early_stopping_patience,
        )
        _check(self.label_weight >= 0.0, "label_weight", "a number >= 0", self.label_weight)
        _check(
            0.0 <= self.label_dropout <= 1.0,
            "label_dropout",
            "a share in [0, 1]",
            self.label_dropout,
        )

    @property
    def resolved_decoder_units(self) -> tuple[int, ...]:
        """The decoder's layer widths, latent side first."""
        if self.decoder_units is None:
            return tuple(reversed(self.encoder_units))
        return self.decoder_units

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrialParams:
        """Build from a mapping of names to values, coercing strings and lists.

        Raises:
            ParamError: on an unknown name or a value of the wrong type or range.
        """
        unknown = sorted(set(values) - set(PARAM_NAMES))
        if unknown:
            raise ParamError(
                f"unknown hyperparameter {unknown[0]!r}; known: {', '.join(PARAM_NAMES)}"
            )
        coerced = {name: coerce(name, value) for name, value in values.items()}
        return cls(**coerced)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping; ``TrialParams.from_dict(p.to_dict()) == p``."""
        out = dataclasses.asdict(self)
        for name in ("encoder_units", "decoder_units"):
            if out[name] is not None:
                out[name] = list(out[name])
        return out

    def replace(self, **changes: Any) -> TrialParams:
        """A copy with some values changed (coerced and validated like :meth:`from_dict`)."""
        return TrialParams.from_dict({**self.to_dict(), **changes})


_SCALAR_KINDS: dict[Any, str] = {int: "int", float: "float", bool: "bool", str: "str"}


def _kind_of(hint: Any) -> str:
    """The value kind of one type annotation of :class:`TrialParams`."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return f"{_kind_of(inner)}_or_none"
    if typing.get_origin(hint) is tuple and args == (int, Ellipsis):
        return "units"
    if hint in _SCALAR_KINDS:
        return _SCALAR_KINDS[hint]
    raise TypeError(f"TrialParams: no value kind for the annotation {hint!r}")


_FIELD_KINDS: dict[str, str] = {
    name: _kind_of(hint) for name, hint in typing.get_type_hints(TrialParams).items()
}
PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrialParams))

_NONE_WORDS = {"none", "null", "off"}
_TRUE_WORDS = {"true", "yes", "on", "1"}
_FALSE_WORDS = {"false", "no", "off", "0"}


def field_kind(name: str) -> str:
    """The value kind of a hyperparameter: int, float, bool, str, units, or ``*_or_none``.

    Derived from the :class:`TrialParams` field's annotation.

    Raises:
        ParamError: ``name`` is not a field of :class:`TrialParams`.
    """
    if name not in _FIELD_KINDS:
        raise ParamError(f"unknown hyperparameter {name!r}; known: {', '.join(PARAM_NAMES)}")
    return _FIELD_KINDS[name]


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` (YAML scalar, list or CLI string) to the type of field ``name``.

    Layer stacks accept a list (``[512, 256]``) or a dash-joined string (``"512-256"``), the form
    the search space stores as a categorical choice. Fields that may be ``None`` take ``None`` or
    the words ``none``, ``null`` or ``off``; an empty string is never a value.

    Raises:
        ParamError: when the value cannot be converted, or is an empty string.
    """
    kind = field_kind(name)
    if isinstance(value, str) and not value.strip():
        hint = "; write none for no value" if kind.endswith("_or_none") else ""
        raise ParamError(
            f"invalid value for {name}: expected {_KIND_WORDS[kind]}, got an empty value{hint}"
        )
    try:
        if kind.endswith("_or_none"):
            if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_WORDS):
                return None
            kind = kind.removesuffix("_or_none")
        if kind == "int":
            return _to_int(value)
        if kind == "float":
            number = float(value) if not isinstance(value, bool) else _bad()
            return number if math.isfinite(number) else _bad()
        if kind == "bool":
            return _to_bool(value)
        if kind == "str":
            return value.strip() if isinstance(value, str) else _bad()
        if kind == "units":
            return _to_units(value)
    except (TypeError, ValueError):
        pass
    raise ParamError(f"invalid value for {name}: expected {_KIND_WORDS[kind]}, got {value!r}")


_KIND_WORDS = {
    "int": "an integer",
    "float": "a finite number",
    "bool": "true or false",
    "str": "a string",
    "units": "layer widths as a list or a dash-joined string such as 512-256",
    "units_or_none": "layer widths such as 512-256, or none",
    "float_or_none": "a number, or none",
}


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """Parse ``name=value`` strings (the CLI's ``--set``) into a coerced mapping.

    Raises:
        ParamError: on a missing ``=``, an unknown name or a bad value.
    """
    out: dict[str, Any] = {}
    for item in assignments:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParamError(f"expected name=value, got {item!r}")
        out[name] = coerce(name, raw)
    return out


def _bad() -> Any:
    raise ValueError


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError


def _to_units(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [p for p in value.replace(",", "-").split("-") if p.strip()]
        units = tuple(int(p) for p in parts)
    elif isinstance(value, (list, tuple)):
        units = tuple(_to_int(v) for v in value)
    else:
        raise TypeError
    if not units:
        raise ValueError
    return units


def units_label(units: Iterable[int]) -> str:
    """``(512, 256)`` -> ``"512-256"``, the form stored as a categorical choice."""
    return "-".join(str(u) for u in units)


def _check(ok: bool, name: str, expected: str, got: Any) -> None:
    if not ok:
        raise ParamError(f"invalid value for {name}: expected {expected}, got {got!r}")


#: The notes' hand-picked configuration, as the notes ran it, and :class:`TrialParams`'
#: defaults: one notes' configuration, whether ``sweep trial`` runs it with no options or a
#: study enqueues it as its baseline. Keras was given alpha but not ``apply_class_balancing``,
#: so alpha was never applied (``focal_alpha=None``).
NOTES_BASELINE = TrialParams()
#: Baselines ``sweep launch --baseline NAME`` can enqueue as trial 0, by name.
BASELINES: dict[str, TrialParams] = {"notes": NOTES_BASELINE}
