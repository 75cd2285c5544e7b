"""The one writer of benchmark records: each benchmark owns a marked block of RESULTS.md.

A block is everything between ``<!-- begin: KEY -->`` and ``<!-- end: KEY -->``. Writing a
block replaces that block only; every other byte of the file (other benchmarks' blocks, the
title, hand-written text outside any block) is kept. A new block goes after the last block of
its group (``trial_speed`` and ``trial_speed/--epochs 2 ...`` stay together), else at the end.
Hand-written reading notes live in ``benchmarks/NOTES.md``, which no benchmark writes.

Every block starts with the same provenance lines (:func:`provenance`): the command, the date,
the machine (CPU, cores), the load before, during and after the run with a statement derived
from those numbers, and the Python, TensorFlow and Optuna versions (read from the installed
distributions, so TensorFlow is never imported for this).

Standard library only; the benchmarks import it as ``_records`` (their own folder is on
``sys.path`` when run as scripts) and the tests as ``benchmarks._records``.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import sys
import tempfile
import threading
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"
TITLE = (
    "# Benchmark results\n\n"
    "Generated: each benchmark writes its own block between `<!-- begin: KEY -->` and "
    "`<!-- end: KEY -->` markers (`benchmarks/_records.py`); rerunning one replaces only its "
    "block. Do not edit blocks by hand; reading notes are in `benchmarks/NOTES.md`.\n"
)
#: A 1-minute load average below this fraction of the cores, before the start, is "quiet".
QUIET_FRACTION = 0.25
_KEY = re.compile(r"^[A-Za-z0-9_./=,:+ -]+$")
_MARKER = re.compile(r"^<!-- (begin|end): (.+?) -->$", re.MULTILINE)


class RecordsError(ValueError):
    """RESULTS.md has markers this writer cannot pair up; nothing was written."""


def begin_marker(key: str) -> str:
    return f"<!-- begin: {key} -->"


def end_marker(key: str) -> str:
    return f"<!-- end: {key} -->"


def check_key(key: str) -> str:
    """``key`` if it can sit inside a marker (letters, digits, ``_./=,:+ -``), else raise."""
    if not key or not _KEY.match(key) or key != key.strip():
        raise RecordsError(f"invalid block key {key!r}: use letters, digits and _./=,:+ -")
    return key


def blocks(text: str) -> list[tuple[str, int, int]]:
    """``(key, start, end)`` of every block, in file order; ``text[start:end]`` spans both
    markers.

    Raises:
        RecordsError: a begin without its end, an end without its begin, nested or repeated
            blocks.
    """
    found: list[tuple[str, int, int]] = []
    open_key: str | None = None
    open_at = 0
    seen: set[str] = set()
    for match in _MARKER.finditer(text):
        kind, key = match.group(1), match.group(2)
        if kind == "begin":
            if open_key is not None:
                raise RecordsError(f"block {key!r} begins inside block {open_key!r}")
            if key in seen:
                raise RecordsError(f"block {key!r} appears twice")
            open_key, open_at = key, match.start()
        else:
            if open_key != key:
                raise RecordsError(f"end of block {key!r} without its begin")
            found.append((key, open_at, match.end()))
            seen.add(key)
            open_key = None
    if open_key is not None:
        raise RecordsError(f"block {open_key!r} has no end marker")
    return found


def group_of(key: str) -> str:
    """``trial_speed/--epochs 2`` -> ``trial_speed``."""
    return key.split("/", 1)[0]


def replace_block(text: str, key: str, body: str) -> str:
    """``text`` with block ``key`` set to ``body`` (added if missing); the rest untouched."""
    check_key(key)
    block = f"{begin_marker(key)}\n{body.strip(chr(10))}\n{end_marker(key)}"
    existing = blocks(text)
    for name, start, end in existing:
        if name == key:
            return text[:start] + block + text[end:]
    same_group = [end for name, _, end in existing if group_of(name) == group_of(key)]
    if same_group:
        at = same_group[-1]
        return text[:at] + "\n\n" + block + text[at:]
    if not text.strip():
        text = TITLE
    return text.rstrip("\n") + "\n\n" + block + "\n"


def read_block(text: str, key: str) -> str | None:
    """The body of block ``key`` (without markers), or ``None``."""
    for name, start, end in blocks(text):
        if name == key:
            inner = text[start + len(begin_marker(key)) : end - len(end_marker(key))]
            return inner.strip("\n")
    return None


def write_block(key: str, body: str, path: Path = RESULTS) -> Path:
    """Set block ``key`` of ``path`` to ``body``, atomically; other blocks stay as they are.

    Raises:
        RecordsError: the file's markers do not pair up (the file is left unchanged).
    """
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    new = replace_block(old, key, body)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# --- provenance ---------------------------------------------------------------------------------


def loadavg() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


@dataclass
class LoadMonitor:
    """The 1-minute load average before, during (sampled every ``interval_s``) and after a run.

    Use as a context manager around the measured work.
    """

    interval_s: float = 5.0
    before: tuple[float, float, float] | None = None
    after: tuple[float, float, float] | None = None
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __enter__(self) -> LoadMonitor:
        self.before = loadavg()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="load-monitor")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 1)
        self.after = loadavg()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = loadavg()
            if now is not None:
                self.samples.append(now[0])


def load_statement(
    before: tuple[float, float, float] | None,
    after: tuple[float, float, float] | None,
    samples: list[float] | tuple[float, ...] = (),
    cores: int | None = None,
) -> str:
    """One sentence on the machine's load, derived from the measured load averages.

    "Quiet" only when the 1-minute load before the start was below :data:`QUIET_FRACTION` of
    the cores; otherwise it says how many cores other work was using. The load during and
    after the run includes the benchmark's own processes.
    """
    cores = cores or os.cpu_count() or 1
    if before is None:
        return "Load: unknown (no load average on this system)."
    fmt = "/".join(f"{x:.1f}" for x in before)
    text = f"Load average (1/5/15 min) before: {fmt}"
    if samples:
        text += f"; during (1 min): max {max(samples):.1f}, mean {sum(samples) / len(samples):.1f}"
    if after is not None:
        text += f"; after: {'/'.join(f'{x:.1f}' for x in after)}"
    text += f", on {cores} cores. "
    if before[0] < QUIET_FRACTION * cores:
        text += "Quiet machine at the start (nothing else using a core)"
    else:
        text += (
            f"Shared machine: other work kept about {before[0]:.1f} of {cores} cores busy at "
            "the start"
        )
    return text + "; the load during and after includes this benchmark's own processes."


def cpu_model() -> str:
    model = platform.processor() or platform.machine() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def machine() -> str:
    """``CPU model, N cores, OS release``."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def package_version(name: str) -> str:
    """The installed version of distribution ``name`` (never imports it), or ``not installed``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions(extra: dict[str, str] | None = None) -> str:
    """``Python 3.11.7, TensorFlow 2.21.0, Optuna 5.0.0`` plus ``extra`` (e.g. PostgreSQL)."""
    parts = {
        "Python": platform.python_version(),
        "TensorFlow": package_version("tensorflow"),
        "Optuna": package_version("optuna"),
        **(extra or {}),
    }
    return ", ".join(f"{k} {v}" for k, v in parts.items())


def command_line(script: str, argv: list[str] | tuple[str, ...]) -> str:
    """How to rerun: ``.venv/bin/python benchmarks/X.py ARGS`` (arguments shell-quoted)."""
    args = " ".join(shlex.quote(a) for a in argv)
    return f".venv/bin/python benchmarks/{script} {args}".rstrip()


def provenance(
    command: str,
    load: LoadMonitor | None,
    *,
    started: datetime.datetime | None = None,
    seconds: float | None = None,
    extra_versions: dict[str, str] | None = None,
    command_note: str = "",
) -> str:
    """The lines every block starts with: command, date, machine, load and versions."""
    when = (started or datetime.datetime.now().astimezone()).isoformat(timespec="seconds")
    took = f"; whole run {seconds / 60:.1f} min" if seconds is not None else ""
    statement = (
        load_statement(load.before, load.after, load.samples)
        if load is not None
        else load_statement(loadavg(), None)
    )
    return (
        f"Command: `{command}`{command_note}  \n"
        f"Date: {when}{took}. Machine: {machine()}. {versions(extra_versions)}.  \n"
        f"{statement}\n"
    )


def script_argv() -> list[str]:
    return list(sys.argv[1:])
