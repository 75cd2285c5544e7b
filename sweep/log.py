"""Logging for the CLI: the ``sweep`` logger's handler and a filter that masks passwords.

Library code only calls ``logging.getLogger(__name__)``; handlers are attached here, by the CLI.
"""

from __future__ import annotations

import logging
import sys

from sweep.store.urls import redact


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact` before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure(verbosity: int = 0) -> None:
    """Send ``sweep`` log records to stderr, one line each, passwords masked.

    Args:
        verbosity: -1 quiet (warnings only), 0 normal, 1 debug.
    """
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
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
