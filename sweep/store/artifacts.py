"""Where a study's artifacts (trial samples, kept weights) are: the one resolver.

A study created by this version stores its folder as a *key* relative to its storage's artifact
root: ``<db file>.artifacts/`` beside a SQLite file, so ``sweep.db`` keeps study ``k562``'s in
``sweep.db.artifacts/k562/`` and a copied or moved database (``.backup``, ``cp -r``, another
machine) finds the folder beside itself. With ``launch --artifacts DIR`` (PostgreSQL has no file)
the study stores ``DIR/<key>`` as an absolute path that every worker must reach; a reader
elsewhere passes its own ``--artifacts DIR`` and finds ``DIR/<key>``. Older studies stored the
absolute ``.../sweep.db.artifacts`` itself: it is used while it exists, else the folder beside
the database. ``sweep export``, ``show``, ``report``, ``dashboard``, ``copy``, ``delete`` and the
workers all go through :func:`locate`. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sweep.errors import ArtifactsNotFoundError
from sweep.store.urls import parse_url
from sweep.store.urls import sqlite_path

#: Suffix of the artifact root beside a SQLite file (``sweep.db`` -> ``sweep.db.artifacts``).
ROOT_SUFFIX = ".artifacts"
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Located:
    """A study's artifact folder and the places looked at to find it.

    Attributes:
        folder: The first candidate that exists, else the first candidate (where new files go).
        looked: Every candidate, in the order tried.
        foreign: :attr:`folder` is another database's (an older study's absolute path, read
            from a ``.backup`` copy while the original is still there): read it, never write
            or delete there.
    """

    folder: Path
    looked: tuple[Path, ...]
    foreign: bool = False

    @property
    def writable(self) -> Path:
        """Where new files go: :attr:`folder`, or beside this database when that is foreign."""
        return self.looked[0] if self.foreign else self.folder

    @property
    def exists(self) -> bool:
        """Whether :attr:`folder` is there."""
        return self.folder.is_dir()

    def describe(self) -> str:
        """``'A'`` or ``'A', then 'B'``: where it was looked for."""
        return ", then ".join(f"'{p}'" for p in self.looked)


def default_root(url: str) -> Path | None:
    """The artifact root beside a SQLite file (absolute); ``None`` for PostgreSQL."""
    path = sqlite_path(parse_url(url))
    return Path(f"{path.resolve()}{ROOT_SUFFIX}") if path else None


def study_key(name: str) -> str:
    """Study ``name``'s folder name under a root: the name itself when it is a plain file name,
    else its safe characters plus a short hash (``a/b`` -> ``a_b-1f3c...``)."""
    if _SAFE.fullmatch(name) and name not in (".", ".."):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', name)[:80].strip('.') or 'study'}-{digest}"


def new_location(url: str, name: str, root: str | None) -> str | None:
    """What a new study ``name`` stores: its key under the SQLite root (``root`` not given), or
    the absolute ``root/<key>``; ``None`` when there is no root (PostgreSQL without
    ``--artifacts``)."""
    key = study_key(name)
    if root:
        return str(Path(root).expanduser().absolute() / key)
    return key if default_root(url) is not None else None


def locate(url: str, stored: str | None, root: str | None = None) -> Located | None:
    """Where the artifacts of a study that stored ``stored`` are, for storage ``url``.

    Args:
        url: The storage the study is read from (its SQLite file anchors relative keys; ``""``:
            none).
        stored: The study's ``artifacts_dir`` (a key, an absolute path, or ``None``).
        root: ``--artifacts DIR`` given to this command: an artifact root tried first.

    Returns:
        The folder (the first candidate that exists, else the first one), or ``None`` when the
        study keeps no artifacts or a relative key has no root to resolve against.
    """
    if not stored:
        return None
    roots = [Path(root).expanduser().absolute()] if root else []
    beside = default_root(url) if url else None
    if beside is not None and beside not in roots:
        roots.append(beside)
    candidates: list[Path] = []
    path = Path(stored)
    foreign = path.is_absolute() and _foreign(path, url)
    if path.is_absolute():
        for base in roots:  # moved: the per-study folder, or the old layout's root itself
            candidates += [base, base / path.name] if foreign else [base / path.name, base]
        candidates.insert(len(candidates) if foreign else 0, path)
    else:
        candidates += [base / path for base in roots]
        candidates += roots[:1] if root else []  # --artifacts naming the folder itself
    unique = tuple(dict.fromkeys(candidates))
    if not unique:
        return None
    found = next((p for p in unique if p.is_dir()), unique[0])
    return Located(found, unique, foreign=foreign and found == path)


def _foreign(path: Path, url: str) -> bool:
    """Whether ``path`` is the old default folder (``<file>.artifacts``) of another SQLite file
    that exists: the original of a ``.backup`` copy."""
    mine = sqlite_path(parse_url(url)) if url else None
    if mine is None or not path.name.endswith(ROOT_SUFFIX):
        return False
    owner = path.with_name(path.name[: -len(ROOT_SUFFIX)])
    return owner.is_file() and owner.resolve() != mine.resolve()


def where(url: str, stored: str | None, root: str | None = None) -> str:
    """One phrase for ``show`` and ``report``: the folder, or why there is none."""
    located = locate(url, stored, root)
    if located is None:
        return "none kept" if not stored else f"{stored!r} (pass --artifacts DIR to find it)"
    if not located.exists:
        return f"not found (looked in {located.describe()})"
    return str(located.folder)


def require(url: str, name: str, stored: str | None, root: str | None = None) -> Path:
    """The existing artifact folder of study ``name``.

    Raises:
        ArtifactsNotFoundError: the study keeps none, needs ``--artifacts DIR``, or its folder
            is missing (the message says where it looked).
    """
    located = locate(url, stored, root)
    if located is None:
        if stored:
            raise ArtifactsNotFoundError(
                f"study {name!r} keeps its artifacts under {stored!r} relative to an artifact "
                "root; pass --artifacts DIR (the folder that holds it)"
            )
        raise ArtifactsNotFoundError(f"study {name!r} keeps no artifacts")
    if not located.exists:
        raise ArtifactsNotFoundError(
            f"the artifacts of study {name!r} are not there: looked in {located.describe()}; "
            "copy the folder beside the database or pass --artifacts DIR"
        )
    return located.folder


def make_folder(folder: Path) -> Path:
    """Create ``folder`` and any missing parent, each private (0o700); return it."""
    missing = []
    for parent in [folder, *folder.parents]:
        if parent.exists():
            break
        missing.append(parent)
    for path in reversed(missing):
        os.makedirs(path, mode=0o700, exist_ok=True)
    return folder
