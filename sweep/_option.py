"""The rule of one command-line option: its flag, default and range check.

:data:`sweep.config.OPTIONS` holds the rules that settings share; :mod:`sweep.cli_options`
builds Click options from rules (adding help text). Standard library and :mod:`sweep.errors`
only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweep.errors import UsageError


@dataclass(frozen=True)
class Option:
    """The rule of one command-line option that a setting shares: its flag, default and check.

    The frozen settings of :mod:`sweep.config` take their defaults from rules and run
    :meth:`check` on construction, and :mod:`sweep.cli_options` builds the Click option from
    the same rule (adding its help text), so a value set from Python meets the same rule as
    one typed on the command line.

    Attributes:
        flag: The option's name on the command line, e.g. ``--n-trials``.
        dest: The Python name the value is passed as (a settings field where there is one).
        default: Its default (``None``: not given).
        type: ``int``, ``float``, ``str`` or ``bool`` (``bool`` makes a flag).
        minimum: Smallest accepted value (with ``positive``: values must be above it).
        positive: The value must be > ``minimum`` rather than >=.
        choices: The accepted values, if a fixed list.
        case_sensitive: Whether ``choices`` match case-sensitively.
        multiple: The option may repeat (the value is a tuple).
    """

    flag: str
    dest: str
    default: Any = None
    type: type = str
    minimum: float | None = None
    positive: bool = False
    choices: tuple[str, ...] | None = None
    case_sensitive: bool = True
    multiple: bool = False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not accepted (without the flag), or ``None`` when it is."""
        if value is None:
            return None
        if self.multiple:
            return next((p for p in map(self._problem, value) if p is not None), None)
        return self._problem(value)

    def _problem(self, value: Any) -> str | None:
        if self.choices is not None and not self._is_choice(value):
            return f"must be one of {', '.join(self.choices)}, got {value!r}"
        if self.minimum is None:
            return None
        if self.positive and not value > self.minimum:
            return f"must be a positive number of seconds, got {value}"
        if not self.positive and value < self.minimum:
            return f"must be at least {self.minimum:g}, got {value}"
        return None

    def _is_choice(self, value: Any) -> bool:
        assert self.choices is not None
        if self.case_sensitive:
            return value in self.choices
        return str(value).upper() in {c.upper() for c in self.choices}

    def check(self, value: Any) -> None:
        """Raise :class:`OptionError` when ``value`` is out of range or not a choice."""
        reason = self.problem(value)
        if reason is not None:
            raise OptionError(self, reason)


class OptionError(UsageError):
    """A value breaks its option's rule; the message starts with the option's flag.

    Attributes:
        option: The option whose rule was broken.
        reason: The rule and the received value, e.g. ``must be at least 1, got 0``.
    """

    def __init__(self, option: Option, reason: str) -> None:
        super().__init__(f"{option.flag} {reason}")
        self.option = option
        self.reason = reason
