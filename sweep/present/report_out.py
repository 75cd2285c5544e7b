"""Where ``sweep report`` writes: one self-contained HTML file, or a folder of page and PNGs.

``--out report.html`` (or ``.htm``) that is not an existing folder gets one file: the figures
inline as ``data:image/png;base64`` URIs, nothing beside it, written whole or not at all. Any
other ``--out`` is a folder holding ``index.html`` and ``figures/``, as before.
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import UsageError
from sweep.present.plotting import prepare_out_dir

#: An ``--out`` ending in one of these (any case) is one HTML file.
ONE_FILE_SUFFIXES = (".html", ".htm")


@dataclass(frozen=True)
class ReportTarget:
    """A checked ``--out``: the path, and whether it is one HTML file (else a folder)."""

    path: Path
    one_file: bool


def report_target(out: str | Path, force: bool) -> ReportTarget:
    """Decide and check where a report goes, before anything is read or written.

    Raises:
        UsageError: the file exists and ``force`` is not set; the path is something else than
            a file or folder; or, for a folder, what :func:`prepare_out_dir` refuses.
    """
    path = Path(out)
    if path.suffix.lower() not in ONE_FILE_SUFFIXES or path.is_dir():
        return ReportTarget(prepare_out_dir(path, force), one_file=False)
    if path.exists() and not path.is_file():
        raise UsageError(f"--out {path}: exists and is not a file")
    if path.exists() and not force:
        raise UsageError(f"--out {path}: file exists; pass --force to overwrite")
    return ReportTarget(path, one_file=True)


def png_data_uri(path: Path) -> str:
    """The PNG file ``path`` as a ``data:`` URI, to inline in a page."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_whole(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, renamed into place: a
    reader never sees half a page, and a failure leaves no file (parent folders are made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as a plain open() would have made it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
