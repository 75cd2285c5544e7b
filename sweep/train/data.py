"""Load and validate binary per-gene data files (``.npz``), split them, balance the train split.

One row per gene, one 0/1 column per position; the columns fall into named *sections* (marks)
and the last section is the label (``expressed``, width 1). Two file forms are read:

(a) the researcher's own split: arrays ``X_train``, ``X_val`` and optionally ``X_test``. The
    split is used as is. Sections come from ``sections`` + ``section_widths`` when the file has
    them, else :data:`NOTES_SECTIONS`.
(b) one matrix ``X`` plus ``sections`` and ``section_widths``. The project splits it:
    deterministic, stratified on the label, from ``split_seed``.

Guarantees: every matrix stays ``uint8`` with values 0/1 (no float copy of the matrix is ever
made); files are read with ``allow_pickle=False``; every problem with a file raises
:class:`sweep.errors.DataError` with one line naming the file; the arrays of a
:class:`Dataset` are read-only, and balancing touches the training rows only.

This module imports numpy only; scikit-learn is imported when a form (b) file is split.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweep.errors import DataError
from sweep.errors import ParamError

NOTES_SECTIONS: tuple[tuple[str, int], ...] = (
    ("DNA_methylation", 4000),
    ("H3K9me3", 4000),
    ("H3K27me3", 4000),
    ("expressed", 1),
)
"""The researcher's layout: three 4 kb marks around the TSS, then the label (12001 columns)."""

BUNDLED_DATA: Path = (
    Path(__file__).resolve().parent.parent / "data" / "roadmap_E123_K562_histone_tss4kb.npz"
)
"""Real K562 data shipped with the package (600 genes, 20001 columns, form (b))."""

_DATASET_CHOICES = ("original", "balanced")
_FORM_A = ("X_train", "X_val")
_FORM_B = ("X", "sections", "section_widths")
# What numpy, zipfile and zlib raise on a file that is not a readable .npz.
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class Section:
    """A named block of columns ``[start, stop)``."""

    name: str
    start: int
    stop: int

    @property
    def width(self) -> int:
        """Number of columns in the section."""
        return self.stop - self.start


@dataclass(frozen=True, eq=False)
class Dataset:
    """A validated data file, split into train / val (/ test).

    Attributes:
        path: The file the data came from.
        sections: Sections in column order; the last one is the label (width 1).
        train: ``uint8`` training rows, values 0/1, read-only.
        val: ``uint8`` validation rows, read-only; never balanced or changed.
        test: ``uint8`` test rows, read-only, or ``None`` when there is no test split. No trial
            trains, stops early, prunes or is selected on them.
        split: Human description of where the split came from.
        split_sha256: SHA-256 of the row indices of each split (:func:`split_digest`); two
            processes that split the same file the same way agree on it.
    """

    path: Path
    sections: tuple[Section, ...]
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray | None
    split: str
    split_sha256: str = ""

    @property
    def n_features(self) -> int:
        """Number of columns, label included."""
        return self.sections[-1].stop

    @property
    def label_column(self) -> int:
        """Index of the label column (the last one)."""
        return self.n_features - 1

    @property
    def mark_sections(self) -> tuple[Section, ...]:
        """Every section but the label."""
        return self.sections[:-1]

    def training_rows(self, dataset: str, seed: int) -> np.ndarray:
        """Rows to train on.

        Args:
            dataset: ``"original"`` (the training split as is) or ``"balanced"`` (the training
                split with the majority expression class undersampled to the minority count).
            seed: Seed of the undersampling; the same seed gives the same rows.

        Returns:
            A ``uint8`` matrix, rows in file order. The validation split is never touched.

        Raises:
            ParamError: ``dataset`` is neither ``"original"`` nor ``"balanced"``.
        """
        if dataset == "original":
            return self.train
        if dataset == "balanced":
            keep = balance_indices(self.train[:, self.label_column], seed)
            return self.train[keep]
        raise ParamError(
            f"invalid value for dataset: expected one of {', '.join(_DATASET_CHOICES)}, "
            f"got {dataset!r}"
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready description: rows and label rate per split, density of ones per section.

        Densities are measured on the training split.
        """
        splits = {"train": self.train, "val": self.val}
        if self.test is not None:
            splits["test"] = self.test
        col = self.label_column
        return {
            "path": str(self.path),
            "split": self.split,
            "split_sha256": self.split_sha256,
            "n_features": self.n_features,
            "sections": [
                {"name": s.name, "start": s.start, "stop": s.stop, "width": s.width}
                for s in self.sections
            ],
            "rows": {name: int(arr.shape[0]) for name, arr in splits.items()},
            "label_rate": {
                name: _rate(np.count_nonzero(arr[:, col]), arr.shape[0])
                for name, arr in splits.items()
            },
            "density": {
                s.name: _rate(
                    np.count_nonzero(self.train[:, s.start : s.stop]),
                    self.train.shape[0] * s.width,
                )
                for s in self.mark_sections
            },
        }


def load_dataset(
    path: str | Path,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> Dataset:
    """Load, validate and split a data file.

    Args:
        path: An ``.npz`` file in form (a) (``X_train``, ``X_val``, optional ``X_test``) or form
            (b) (``X``, ``sections``, ``section_widths``).
        val_fraction: Form (b) only: fraction of rows sent to validation.
        test_fraction: Form (b) only: fraction of rows sent to test (held out from every trial);
            0 means no test split.
        split_seed: Form (b) only: seed of the stratified split; the same seed gives the same
            split.

    Returns:
        The validated :class:`Dataset`; every matrix is ``uint8`` 0/1 and read-only.

    Raises:
        DataError: The file is missing, unreadable, malformed, not binary, inconsistent with its
            sections, too small to split, or its label has one class in train or val. The
            fractions are out of range.
    """
    path = Path(path)
    name = f"data file '{path}'"
    _check_fractions(val_fraction, test_fraction)
    if not path.exists():
        raise DataError(f"{name}: no such file")
    if not path.is_file():
        raise DataError(f"{name}: not a regular file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise DataError(f"{name}: not a readable .npz archive ({_one_line(exc)})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(
            f"{name}: holds a single .npy array, expected an .npz archive with "
            f"{'+'.join(_FORM_B)} or {'+'.join(_FORM_A)}"
        )
    with loaded as npz:
        files = set(npz.files)
        if "X" in files and (files & set(_FORM_A)):
            raise DataError(
                f"{name}: holds both X and X_train/X_val; expected one form, "
                f"{'+'.join(_FORM_B)} or {'+'.join(_FORM_A)}"
            )
        if "X" in files:
            missing = [a for a in _FORM_B if a not in files]
            if missing:
                raise DataError(
                    f"{name}: missing array(s) {', '.join(missing)}; "
                    f"expected {'+'.join(_FORM_B)} (or {'+'.join(_FORM_A)})"
                )
            sections = _read_sections(npz, name)
            X = _read_matrix(npz, "X", name)
            _check_columns(X, "X", sections, name)
            return _split_form_b(path, name, X, sections, val_fraction, test_fraction, split_seed)
        if all(a in files for a in _FORM_A):
            has_names = "sections" in files
            has_widths = "section_widths" in files
            if has_names != has_widths:
                given, lacking = (
                    ("sections", "section_widths") if has_names else ("section_widths", "sections")
                )
                raise DataError(f"{name}: has {given} but not {lacking}; give both or neither")
            sections = _read_sections(npz, name) if has_names else _make_sections(NOTES_SECTIONS)
            parts: dict[str, np.ndarray] = {}
            for key in ("X_train", "X_val", "X_test"):
                if key in files:
                    parts[key] = _read_matrix(npz, key, name)
            return _from_form_a(path, name, parts, sections)
        found = ", ".join(sorted(files)) or "no arrays"
        raise DataError(
            f"{name}: missing arrays; expected {'+'.join(_FORM_B)} or {'+'.join(_FORM_A)} "
            f"(optionally X_test), found: {found}"
        )


def balance_indices(labels: np.ndarray, seed: int) -> np.ndarray:
    """Row indices of a balanced undersample: every minority row plus as many majority rows.

    Args:
        labels: 1-D array of 0/1 labels.
        seed: Seed of the draw among the majority rows.

    Returns:
        Sorted ``int64`` indices; both classes appear equally often. Already balanced labels
        give every index.

    Raises:
        DataError: ``labels`` is not 1-D 0/1 or holds only one class.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"labels to balance must be 1-D, got shape {labels.shape}")
    ones = np.flatnonzero(labels == 1)
    zeros = np.flatnonzero(labels == 0)
    if ones.size + zeros.size != labels.size:
        raise DataError("labels to balance must be 0/1")
    if ones.size == 0 or zeros.size == 0:
        raise DataError(
            f"cannot balance labels with one class ({ones.size} ones, {zeros.size} zeros)"
        )
    minority, majority = (ones, zeros) if ones.size <= zeros.size else (zeros, ones)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(majority, size=minority.size, replace=False)
    return np.sort(np.concatenate([minority, drawn])).astype(np.int64)


def split_digest(parts: Mapping[str, np.ndarray]) -> str:
    """Hex SHA-256 of a split: each part's name and its sorted ``int64`` row indices.

    Args:
        parts: Split name (``train``, ``val``, ``test``) to the row indices it holds; for a file
            that brings its own split, the indices are those within each array.

    Returns:
        The digest; independent of the order of ``parts`` and of the order of the indices.
    """
    digest = hashlib.sha256()
    for name in sorted(parts):
        rows = np.sort(np.asarray(parts[name], dtype=np.int64))
        digest.update(f"{name}:{rows.size};".encode())
        digest.update(rows.astype("<i8").tobytes())
    return digest.hexdigest()


def check_split_sha256(data: Dataset, expected: str) -> None:
    """Refuse a split other than the study's (``expected`` empty: nothing to check).

    Raises:
        DataError: one line naming the file and both hashes.
    """
    if expected and data.split_sha256 != expected:
        raise DataError(
            f"data file '{data.path}' splits into rows with hash {data.split_sha256[:16]} but "
            f"the study's split has hash {expected[:16]} ({data.split}): same file and "
            "fractions, different split (another scikit-learn version?); refusing to run trials"
        )


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks.

    Raises:
        DataError: The file is missing or unreadable.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"data file '{path}': cannot read ({_one_line(exc)})") from None
    return digest.hexdigest()


def write_npz(path: str | Path, X: np.ndarray, sections: Sequence[tuple[str, int]]) -> None:
    """Write a form (b) file: ``X`` (``uint8``), ``sections``, ``section_widths``.

    The file is written compressed, to exactly ``path`` (no suffix added), and atomically
    (a temporary file in the same folder, then a rename).

    Raises:
        DataError: ``X`` is not 2-D 0/1, or the section widths do not sum to its column count.
    """
    path = Path(path)
    name = f"data file '{path}'"
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name}: X must be 2-D, got shape {X.shape}")
    if not sections:
        raise DataError(f"{name}: no sections given")
    names = [str(n) for n, _ in sections]
    widths = [int(w) for _, w in sections]
    parsed = _make_sections_checked(names, widths, name)
    _check_columns(X, "X", parsed, name)
    X = _to_binary_uint8(X, "X", name)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(
                fh,
                X=X,
                sections=np.array(names, dtype=np.str_),
                section_widths=np.array(widths, dtype=np.int64),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------------------------
# helpers


def _rate(count: int | np.integer, total: int) -> float | None:
    return float(count) / total if total else None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(
            f"val_fraction + test_fraction must be below 1, got {val_fraction!r} + "
            f"{test_fraction!r}"
        )


def _load_array(npz: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    try:
        value = npz[key]
    except _READ_ERRORS as exc:
        raise DataError(f"{name}: cannot read array {key} ({_one_line(exc)})") from None
    if not isinstance(value, np.ndarray):  # numpy hands back the raw bytes of a non-.npy member
        raise DataError(f"{name}: cannot read array {key} (member is not in .npy format)")
    return value


def _read_sections(npz: np.lib.npyio.NpzFile, name: str) -> tuple[Section, ...]:
    names = _load_array(npz, "sections", name)
    widths = _load_array(npz, "section_widths", name)
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DataError(
            f"{name}: sections must be a 1-D array of strings, got dtype {names.dtype} "
            f"shape {names.shape}"
        )
    if widths.ndim != 1 or widths.dtype.kind not in "iu":
        raise DataError(
            f"{name}: section_widths must be a 1-D integer array, got dtype {widths.dtype} "
            f"shape {widths.shape}"
        )
    if names.shape[0] != widths.shape[0]:
        raise DataError(
            f"{name}: sections has {names.shape[0]} names but section_widths has "
            f"{widths.shape[0]} widths"
        )
    decoded = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    return _make_sections_checked(decoded, [int(w) for w in widths.tolist()], name)


def _make_sections_checked(names: list[str], widths: list[int], name: str) -> tuple[Section, ...]:
    if not names:
        raise DataError(f"{name}: no sections")
    bad = [f"{n} {w}" for n, w in zip(names, widths, strict=True) if w <= 0]
    if bad:
        raise DataError(f"{name}: section widths must be positive, got {', '.join(bad)}")
    if any(not n for n in names):
        raise DataError(f"{name}: section names must not be empty")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"{name}: duplicate section names {', '.join(dupes)}")
    if widths[-1] != 1:
        raise DataError(
            f"{name}: the last section is the label and must have width 1, "
            f"got {names[-1]} {widths[-1]}"
        )
    if len(names) < 2:
        raise DataError(f"{name}: needs at least one mark section before the label")
    return _make_sections(tuple(zip(names, widths, strict=True)))


def _make_sections(spec: Sequence[tuple[str, int]]) -> tuple[Section, ...]:
    out = []
    start = 0
    for sec_name, width in spec:
        out.append(Section(sec_name, start, start + int(width)))
        start += int(width)
    return tuple(out)


def _describe_sections(sections: Sequence[Section]) -> str:
    return ", ".join(f"{s.name} {s.width}" for s in sections)


def _read_matrix(npz: np.lib.npyio.NpzFile, key: str, name: str) -> np.ndarray:
    arr = _load_array(npz, key, name)
    if arr.ndim != 2:
        raise DataError(f"{name}: array {key} must be 2-D (rows, columns), got shape {arr.shape}")
    return _to_binary_uint8(arr, key, name)


def _to_binary_uint8(arr: np.ndarray, key: str, name: str) -> np.ndarray:
    """Return ``arr`` as ``uint8`` 0/1, without a float copy; raise if any value is not 0/1."""
    kind = arr.dtype.kind
    if kind == "b":
        return arr.view(np.uint8)
    if kind == "u" and arr.dtype.itemsize == 1:
        if arr.size == 0 or int(arr.max()) <= 1:
            return arr
    elif kind == "f":
        nan = np.isnan(arr)
        n_nan = int(np.count_nonzero(nan))
        del nan
        if n_nan:
            raise DataError(f"{name}: array {key} holds {n_nan} NaN value(s); expected only 0/1")
    elif kind not in "iu":
        raise DataError(
            f"{name}: array {key} has dtype {arr.dtype}; expected bool, integer or float 0/1"
        )
    bad = (arr != 0) & (arr != 1)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        first = arr.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
        raise DataError(
            f"{name}: array {key} holds {n_bad} value(s) other than 0/1 "
            f"(e.g. {first.item()!r}); expected binary data"
        )
    del bad
    return arr.astype(np.uint8, copy=False)


def _check_columns(X: np.ndarray, key: str, sections: Sequence[Section], name: str) -> None:
    total = sections[-1].stop
    if X.shape[1] != total:
        raise DataError(
            f"{name}: {key} column count {X.shape[1]} does not match section widths summing "
            f"to {total} ({_describe_sections(sections)})"
        )


def _class_counts(X: np.ndarray) -> tuple[int, int]:
    ones = int(np.count_nonzero(X[:, -1]))
    return X.shape[0] - ones, ones


def _check_two_classes(X: np.ndarray, key: str, label: str, name: str) -> None:
    if X.shape[0] == 0:
        raise DataError(f"{name}: {key} has no rows")
    zeros, ones = _class_counts(X)
    if zeros == 0 or ones == 0:
        value = 1 if ones else 0
        raise DataError(
            f"{name}: label column '{label}' in {key} has one class (all {X.shape[0]} rows are "
            f"{value}); need both 0 and 1"
        )


def _freeze(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _from_form_a(
    path: Path, name: str, parts: dict[str, np.ndarray], sections: tuple[Section, ...]
) -> Dataset:
    widths = {key: arr.shape[1] for key, arr in parts.items()}
    if len(set(widths.values())) > 1:
        listed = ", ".join(f"{k} {w}" for k, w in widths.items())
        raise DataError(f"{name}: column counts differ between splits ({listed})")
    for key, arr in parts.items():
        _check_columns(arr, key, sections, name)
    label = sections[-1].name
    _check_two_classes(parts["X_train"], "X_train", label, name)
    _check_two_classes(parts["X_val"], "X_val", label, name)
    test = parts.get("X_test")
    split = "from file (X_train/X_val/X_test)" if test is not None else "from file (X_train/X_val)"
    return Dataset(
        path=path,
        sections=sections,
        train=_freeze(parts["X_train"]),
        val=_freeze(parts["X_val"]),
        test=_freeze(test) if test is not None else None,
        split=split,
        split_sha256=split_digest({k[2:]: np.arange(v.shape[0]) for k, v in parts.items()}),
    )


def _min_rows_per_class(val_fraction: float, test_fraction: float) -> int:
    """Rows each class needs so that every split of a stratified split gets one of it."""
    fractions = [val_fraction, 1.0 - val_fraction - test_fraction]
    if test_fraction > 0:
        fractions.append(test_fraction)
    # A class of c rows gets at least floor(c * f) rows of a split of fraction f (sklearn's
    # stratified rounding), so c >= 1 / f suffices; checked by brute force over small counts.
    return max(2, math.ceil(1.0 / min(fractions) - 1e-9))


def _split_form_b(
    path: Path,
    name: str,
    X: np.ndarray,
    sections: tuple[Section, ...],
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
) -> Dataset:
    label = sections[-1].name
    if X.shape[0] == 0:
        raise DataError(f"{name}: X has no rows")
    zeros, ones = _class_counts(X)
    if zeros == 0 or ones == 0:
        _check_two_classes(X, "X", label, name)
    per_class = _min_rows_per_class(val_fraction, test_fraction)
    fractions = f"val_fraction={val_fraction:g}" + (
        f", test_fraction={test_fraction:g}" if test_fraction > 0 else ""
    )
    too_few = (
        f"{name}: too few rows for a stratified split with {fractions}: needs at least "
        f"{2 * per_class} rows ({per_class} of each label class), found {X.shape[0]} "
        f"({zeros} with {label}=0, {ones} with {label}=1)"
    )
    if min(zeros, ones) < per_class:
        raise DataError(too_few)

    from sklearn.model_selection import train_test_split  # deferred: keep `import sweep` light

    y = X[:, -1]
    rows = np.arange(X.shape[0])
    # Whole row counts, so that float rounding cannot move a row between splits.
    n_test = math.ceil(test_fraction * X.shape[0] - 1e-9)
    n_val = math.ceil(val_fraction * X.shape[0] - 1e-9)
    try:
        test_idx: np.ndarray | None = None
        if n_test > 0:
            rows, test_idx = train_test_split(
                rows, test_size=n_test, stratify=y, random_state=split_seed
            )
        train_idx, val_idx = train_test_split(
            rows, test_size=n_val, stratify=y[rows], random_state=split_seed
        )
    except ValueError as exc:
        raise DataError(f"{too_few} ({_one_line(exc)})") from None
    parts = {"train": train_idx, "val": val_idx}
    if test_idx is not None:
        parts["test"] = test_idx
    for idx in parts.values():
        counts = np.bincount(y[idx], minlength=2)
        if counts.min() == 0:
            raise DataError(too_few)
    split = f"stratified, seed={split_seed}, {fractions}"
    return Dataset(
        path=path,
        sections=sections,
        train=_freeze(X[np.sort(train_idx)]),
        val=_freeze(X[np.sort(val_idx)]),
        test=_freeze(X[np.sort(test_idx)]) if test_idx is not None else None,
        split=split,
        split_sha256=split_digest(parts),
    )
