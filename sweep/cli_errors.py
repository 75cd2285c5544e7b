"""How an error that ends a ``sweep`` command becomes an exit code and one line.

The same in every command: 0 success; 1 refused input (any :class:`~sweep.errors.SweepError`:
a bad file, an unknown study, a value sweep's checks refuse); 2 usage error (what Click's parser
refuses: an unknown option, a missing argument, a value of the wrong type or out of the
option's range); 130 interrupted (Ctrl-C, SIGTERM); 1 for anything else (a bug).
"""

from __future__ import annotations

import click

from sweep.errors import SweepError

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def exit_code(error: BaseException) -> tuple[int, str]:
    """The exit code and the one line to print for an error that ends a command.

    Click's usage errors (unknown option, missing argument, a value of the wrong type or out of
    range) exit 2; a :class:`SweepError` (input that sweep's checks refuse) exits 1; Ctrl-C or a
    signal exits 130; anything else is a bug: 1, the traceback only with ``--debug``.
    """
    if isinstance(error, (click.exceptions.Abort, KeyboardInterrupt)):  # Click wraps Ctrl-C
        cause = error.__cause__ or error.__context__ or error
        name = getattr(cause, "signal_name", getattr(error, "signal_name", "SIGINT"))
        return EXIT_INTERRUPTED, (
            f"Interrupted by {name}: the trial in flight is recorded as FAIL; continue with "
            "`sweep resume NAME`"
        )
    if isinstance(error, click.UsageError):  # one line, not Click's usage block
        where = error.ctx.command_path if error.ctx is not None else "sweep"
        return EXIT_USAGE, f"Error: {error.format_message()} (see `{where} --help`)"
    if isinstance(error, click.ClickException):
        return error.exit_code, f"Error: {error.format_message()}"
    if isinstance(error, SweepError):
        return EXIT_REFUSED, f"Error: {error}"
    name = type(error).__name__
    return 1, f"Error: internal error {name}: {error} (run with --debug for details)"
