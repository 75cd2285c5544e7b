"""Running the `sweep` CLI in tests: one helper, in-process or as a real process.

:func:`run_sweep` runs ``sweep ARGS`` and returns a :class:`subprocess.CompletedProcess` either
way, so a test can switch modes without changing its assertions:

* in-process (the default) through Click's :class:`~click.testing.CliRunner` isolation and
  :func:`sweep.cli.main`: same exit codes and one-line errors, no interpreter or TensorFlow
  start-up per command;
* ``process=True``: ``python -m sweep ARGS`` in a subprocess, where a process is the point
  (signals, kills, import checks, environment isolation, several commands at once in threads).

Either way ``SWEEP_STORAGE``, ``SWEEP_STUDY`` and ``SWEEP_DATA`` start unset; ``storage`` sets the
first (the storage URL goes through the environment, never on the command line).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path

from sweep.config import DATA_ENV
from sweep.config import MAX_SEEDS_ENV
from sweep.config import STORAGE_ENV
from sweep.config import STUDY_ENV
from sweep.store.rdb import IDLE_CONNECTIONS_ENV

REPO = Path(__file__).resolve().parents[2]
TINY_SPACE = REPO / "search_spaces" / "tiny.yaml"
SWEEP_ENV_VARS = (STORAGE_ENV, STUDY_ENV, DATA_ENV, IDLE_CONNECTIONS_ENV)
#: Tests launch with one seed per trial (``--max-seeds 1``), so a study holds the trials a
#: test counts; the racing tests (tests/run/test_racing.py, the racing fault test) pass
#: ``--max-seeds`` themselves.
ONE_SEED = {MAX_SEEDS_ENV: "1"}

#: Runs exactly what ``python -m sweep`` runs, then reports heavy imports on stderr
#: (``IMPORTED tensorflow,keras``) so a test can check that a command never loaded them.
HEAVY_IMPORT_CHECK = (
    "import sys\n"
    "from sweep.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
    "if heavy:\n"
    "    sys.stderr.write('IMPORTED ' + ','.join(heavy) + '\\n')\n"
    "sys.exit(code)\n"
)


def sweep_argv(*args: str) -> list[str]:
    """The command line of ``sweep ARGS`` run with this interpreter."""
    return [sys.executable, "-m", "sweep", *args]


def sweep_env(storage: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a `sweep` process: sweep's variables cleared, TensorFlow quiet.

    Args:
        storage: Put in ``SWEEP_STORAGE`` when given.
        **extra: Further variables (they win over everything else).
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **ONE_SEED}
    for name in SWEEP_ENV_VARS:
        env.pop(name, None)
    if storage:
        env[STORAGE_ENV] = storage
    env.update(extra)
    return env


def run_sweep(
    *args: str,
    storage: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    process: bool = False,
    report_heavy_imports: bool = False,
    check: bool = False,
    timeout: float = 900,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``sweep ARGS`` to completion.

    Args:
        *args: The command line after ``sweep``.
        storage: Storage URL, passed in ``SWEEP_STORAGE``.
        env: Extra environment variables (e.g. ``PATH``).
        cwd: Working directory.
        process: Run a real ``python -m sweep`` process instead of in-process.
        report_heavy_imports: (implies ``process``) Run :data:`HEAVY_IMPORT_CHECK`.
        check: Fail the test when the exit code is not 0.
        timeout: Seconds a process may take (processes only).
        input: Text on the command's stdin (e.g. ``"n\n"`` to a confirmation).

    Returns:
        ``returncode``, ``stdout`` and ``stderr`` as text.
    """
    if process or report_heavy_imports:
        argv = (
            [sys.executable, "-c", HEAVY_IMPORT_CHECK, *args]
            if report_heavy_imports
            else sweep_argv(*args)
        )
        done = subprocess.run(
            argv,
            env=sweep_env(storage, **(env or {})),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )
    else:
        done = _in_process(list(args), storage, env or {}, cwd, input)
    if check and done.returncode != 0:
        raise AssertionError(
            f"sweep {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done


def _in_process(
    args: list[str],
    storage: str | None,
    env: Mapping[str, str],
    cwd: Path | str | None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    from click.testing import CliRunner

    from sweep.cli import main

    overrides: dict[str, str | None] = {**dict.fromkeys(SWEEP_ENV_VARS), **ONE_SEED}
    if storage:
        overrides[STORAGE_ENV] = storage
    overrides.update(env)
    isolation = CliRunner().isolation(input=input, env=overrides)
    with isolation as (out, err, _), _keep_logging(), _chdir(cwd):
        code = main(args)
        sys.stdout.flush()
        sys.stderr.flush()
    stdout, stderr = (stream.getvalue().decode(errors="replace") for stream in (out, err))
    return subprocess.CompletedProcess(args, code, stdout, stderr)


@contextlib.contextmanager
def _keep_logging() -> Iterator[None]:
    """Undo the handler the CLI attaches to the ``sweep`` logger (so ``caplog`` keeps working)."""
    logger = logging.getLogger("sweep")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@contextlib.contextmanager
def _chdir(path: Path | str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
