"""Logging for the CLI: the ``sweep`` logger's handler and a filter that masks passwords.

Library code only calls ``logging.getLogger(__name__)``; handlers are attached here, by the CLI.
"""

from __future__ import annotations

import logging
import re
import sys

from sweep.store.urls import redact

_ANSI_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def plain(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves, hyperlinks)."""
    return _ANSI_ESCAPE.sub("", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact` before any handler formats it, and
    drops ANSI escapes (a trial's error text can carry Keras' colours) unless ``keep_colours``."""

    def __init__(self, keep_colours: bool = False) -> None:
        super().__init__()
        self._keep_colours = keep_colours

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if not self._keep_colours:
            clean = plain(clean)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure(verbosity: int = 0) -> None:
    """Send ``sweep`` log records to stderr, one line each, passwords masked, and without ANSI
    escapes unless stderr is a terminal.

    Args:
        verbosity: -1 quiet (warnings only), 0 normal, 1 debug.
    """
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter(keep_colours=sys.stderr.isatty()))
    logger = logging.getLogger("sweep")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


def quiet_optuna(level: int = logging.WARNING) -> None:
    """Keep Optuna's own log lines (sweep reports trials itself) and experimental warnings off.

    Heartbeats and stale-trial retries are marked experimental in Optuna; sweep relies on them
    knowingly.
    """
    import warnings

    import optuna

    optuna.logging.set_verbosity(level)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
