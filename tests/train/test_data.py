"""Tests for sweep.train.data: both file forms, every validation error, splitting and balancing."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sweep.errors import DataError
from sweep.errors import ParamError
from sweep.train.data import BUNDLED_DATA
from sweep.train.data import NOTES_SECTIONS
from sweep.train.data import Dataset
from sweep.train.data import Section
from sweep.train.data import balance_indices
from sweep.train.data import file_sha256
from sweep.train.data import load_dataset
from sweep.train.data import write_npz

TINY_EXACT = Path(__file__).parent / "data" / "k562_exact_layout_12001_tiny.npz"
SMALL_SECTIONS = (("markA", 6), ("markB", 4), ("expressed", 1))
SMALL_COLS = 11


def _matrix(rows: int = 60, ones_rate: float = 0.4, seed: int = 0, cols: int = SMALL_COLS):
    rng = np.random.default_rng(seed)
    X = (rng.random((rows, cols)) < 0.2).astype(np.uint8)
    n_ones = round(rows * ones_rate)
    X[:, -1] = 0
    X[rng.permutation(rows)[:n_ones], -1] = 1
    return X


def _save(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)  # np.savez keeps the name when it already ends in .npz
    return path


def _form_b(path: Path, X: np.ndarray, sections=SMALL_SECTIONS) -> Path:
    names = np.array([n for n, _ in sections])
    widths = np.array([w for _, w in sections], dtype=np.int32)
    return _save(path, X=X, sections=names, section_widths=widths)


def _expect_error(path: Path, *fragments: str, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture
def small_b(tmp_path: Path) -> Path:
    return _form_b(tmp_path / "small.npz", _matrix())


@pytest.fixture(scope="module")
def bundled() -> Dataset:
    return load_dataset(BUNDLED_DATA)


# ---------------------------------------------------------------------------------------------
# real data


def test_bundled_data_loads(bundled: Dataset) -> None:
    assert bundled.test is not None  # the default 20 % test split, held out from every trial
    assert bundled.train.shape[0] + bundled.val.shape[0] + bundled.test.shape[0] == 600
    assert len(bundled.sections) == 6
    assert bundled.sections[-1] == Section("expressed", 20000, 20001)
    assert bundled.n_features == 20001
    assert bundled.label_column == 20000
    assert [s.name for s in bundled.mark_sections] == [
        "H3K4me1",
        "H3K4me3",
        "H3K9me3",
        "H3K27me3",
        "H3K36me3",
    ]
    assert all(s.width == 4000 for s in bundled.mark_sections)
    assert bundled.train.dtype == np.uint8 and bundled.val.dtype == np.uint8
    assert bundled.val.shape[0] == 120 and bundled.test.shape[0] == 120
    assert bundled.split == "stratified, seed=0, val_fraction=0.2, test_fraction=0.2"


def test_bundled_summary_is_json_and_matches_readme(bundled: Dataset) -> None:
    summary = json.loads(json.dumps(bundled.summary()))
    assert summary["rows"] == {"train": 360, "val": 120, "test": 120}
    assert summary["split"] == bundled.split
    assert abs(summary["label_rate"]["train"] - 0.553) < 0.02
    # README densities over all 600 genes: H3K4me3 0.263, H3K9me3 0.0053.
    assert abs(summary["density"]["H3K4me3"] - 0.263) < 0.02
    assert abs(summary["density"]["H3K9me3"] - 0.0053) < 0.002
    assert "expressed" not in summary["density"]


def test_tiny_exact_layout_loads_in_form_b() -> None:
    data = load_dataset(TINY_EXACT)
    assert [(s.name, s.width) for s in data.sections] == list(NOTES_SECTIONS)
    assert data.n_features == 12001
    assert data.train.shape == (8, 12001) and data.val.shape == (4, 12001)
    assert data.test is not None and data.test.shape == (4, 12001)
    for part in (data.train, data.val, data.test):
        labels = part[:, -1]
        assert 0 < labels.sum() < len(labels)


def test_tiny_exact_layout_too_small_for_a_test_split() -> None:
    # 6 genes with label 0: a 10 % test split needs 10 rows of each class.
    message = _expect_error(TINY_EXACT, "needs at least 20 rows", test_fraction=0.1)
    assert "6 with expressed=0, 10 with expressed=1" in message


# ---------------------------------------------------------------------------------------------
# splitting


def test_split_is_deterministic_by_seed(tmp_path: Path) -> None:
    path = _form_b(tmp_path / "d.npz", _matrix(rows=200))
    a = load_dataset(path, split_seed=3)
    b = load_dataset(path, split_seed=3)
    c = load_dataset(path, split_seed=4)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    assert not np.array_equal(a.val, c.val)
    assert np.array_equal(a.test, b.test)
    assert a.split_sha256 == b.split_sha256 != c.split_sha256
    assert a.split == "stratified, seed=3, val_fraction=0.2, test_fraction=0.2"


def test_split_is_stratified(bundled: Dataset) -> None:
    whole = np.concatenate([bundled.train[:, -1], bundled.val[:, -1]]).mean()
    assert abs(bundled.val[:, -1].mean() - whole) < 0.02
    assert abs(bundled.train[:, -1].mean() - whole) < 0.02


def test_split_partitions_rows(tmp_path: Path) -> None:
    X = _matrix(rows=100)
    X[:, :7] = ((np.arange(100)[:, None] >> np.arange(7)) & 1).astype(np.uint8)  # unique rows
    path = _form_b(tmp_path / "d.npz", X)
    data = load_dataset(path, val_fraction=0.25, test_fraction=0.15)
    assert data.test is not None
    assert (data.train.shape[0], data.val.shape[0], data.test.shape[0]) == (60, 25, 15)
    seen = {row.tobytes() for part in (data.train, data.val, data.test) for row in part}
    assert seen == {row.tobytes() for row in X}
    assert data.split == "stratified, seed=0, val_fraction=0.25, test_fraction=0.15"
    assert set(data.summary()["rows"]) == {"train", "val", "test"}


def test_arrays_are_read_only_uint8(small_b: Path) -> None:
    data = load_dataset(small_b)
    for part in (data.train, data.val):
        assert part.dtype == np.uint8
        with pytest.raises(ValueError):
            part[0, 0] = 1


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"), [(0.0, 0.0), (1.0, 0.0), (0.2, -0.1), (0.6, 0.4)]
)
def test_bad_fractions(small_b: Path, val_fraction: float, test_fraction: float) -> None:
    with pytest.raises(DataError, match="fraction"):
        load_dataset(small_b, val_fraction=val_fraction, test_fraction=test_fraction)


# ---------------------------------------------------------------------------------------------
# balancing


def test_balancing_touches_training_rows_only(bundled: Dataset) -> None:
    original = bundled.training_rows("original", seed=0)
    balanced = bundled.training_rows("balanced", seed=0)
    assert original is bundled.train
    assert balanced.dtype == np.uint8
    labels = balanced[:, -1]
    minority = min(int(bundled.train[:, -1].sum()), int((bundled.train[:, -1] == 0).sum()))
    assert labels.sum() == (labels == 0).sum() == minority
    # Every balanced row is a training row; validation is the same object, unchanged.
    train_rows = {row.tobytes() for row in bundled.train}
    assert all(row.tobytes() in train_rows for row in balanced)
    val_before = bundled.val.copy()
    bundled.training_rows("balanced", seed=1)
    assert np.array_equal(bundled.val, val_before)


def test_balancing_is_seeded(bundled: Dataset) -> None:
    a = bundled.training_rows("balanced", seed=5)
    b = bundled.training_rows("balanced", seed=5)
    c = bundled.training_rows("balanced", seed=6)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_training_rows_rejects_unknown_dataset(small_b: Path) -> None:
    with pytest.raises(ParamError, match="balanced"):
        load_dataset(small_b).training_rows("oversampled", seed=0)


def test_balance_indices() -> None:
    labels = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 1], dtype=np.uint8)
    idx = balance_indices(labels, seed=0)
    assert np.all(np.diff(idx) > 0)
    assert labels[idx].sum() == 3 and len(idx) == 6
    assert set(np.flatnonzero(labels)) <= set(idx.tolist())
    assert np.array_equal(balance_indices(np.array([0, 1, 1, 0]), seed=9), [0, 1, 2, 3])
    with pytest.raises(DataError, match="one class"):
        balance_indices(np.ones(5), seed=0)
    with pytest.raises(DataError, match="0/1"):
        balance_indices(np.array([0, 1, 2]), seed=0)


# ---------------------------------------------------------------------------------------------
# form (a) and dtypes


def test_form_a_uses_file_split_and_notes_sections(tmp_path: Path) -> None:
    train = _matrix(rows=30, cols=12001, seed=1)
    val = _matrix(rows=10, cols=12001, seed=2)
    test = _matrix(rows=5, cols=12001, seed=3)
    path = _save(tmp_path / "a.npz", X_train=train, X_val=val, X_test=test)
    data = load_dataset(path, val_fraction=0.5, split_seed=7)  # ignored for form (a)
    assert np.array_equal(data.train, train) and np.array_equal(data.val, val)
    assert data.test is not None and np.array_equal(data.test, test)
    assert [(s.name, s.width) for s in data.sections] == list(NOTES_SECTIONS)
    assert data.split == "from file (X_train/X_val/X_test)"
    assert data.training_rows("balanced", 0).shape == (24, 12001)  # 12 of each class


def test_form_a_with_own_sections_and_no_test(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "a.npz",
        X_train=_matrix(rows=20).astype(bool),
        X_val=_matrix(rows=8, seed=1).astype(np.int64),
        sections=np.array([n for n, _ in SMALL_SECTIONS]),
        section_widths=np.array([w for _, w in SMALL_SECTIONS]),
    )
    data = load_dataset(path)
    assert data.test is None
    assert data.split == "from file (X_train/X_val)"
    assert data.train.dtype == np.uint8 and data.val.dtype == np.uint8
    assert [s.name for s in data.sections] == ["markA", "markB", "expressed"]
    assert data.mark_sections[1] == Section("markB", 6, 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint16, bool])
def test_binary_dtypes_become_uint8(tmp_path: Path, dtype) -> None:
    X = _matrix()
    data = load_dataset(_form_b(tmp_path / "d.npz", X.astype(dtype)))
    assert data.train.dtype == np.uint8
    assert data.test is not None
    assert data.train.sum() + data.val.sum() + data.test.sum() == X.sum()


# ---------------------------------------------------------------------------------------------
# validation errors


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.npz", "no such file")


def test_directory(tmp_path: Path) -> None:
    _expect_error(tmp_path, "not a regular file")


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.npz"
    path.write_text("gene,DNA_methylation\nA,1\n")
    _expect_error(path, "not a readable .npz")


def test_npy_file(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, _matrix())
    _expect_error(path, "single .npy array")


def test_zip_without_arrays(tmp_path: Path) -> None:
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    _expect_error(path, "missing arrays", "X+sections+section_widths", "X_train+X_val", "readme")


def test_empty_zip(tmp_path: Path) -> None:
    path = tmp_path / "z.npz"
    zipfile.ZipFile(path, "w").close()
    _expect_error(path, "missing arrays", "no arrays")


def test_corrupt_npz(tmp_path: Path, small_b: Path) -> None:
    data = small_b.read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: len(data) // 2])
    _expect_error(path, "not a readable .npz")


def test_corrupt_member(tmp_path: Path) -> None:
    path = tmp_path / "bad_member.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", b"\x93NUMPY garbage")
        zf.writestr("sections.npy", b"junk")  # numpy returns a non-.npy member as raw bytes
        zf.writestr("section_widths.npy", b"junk")
    _expect_error(path, "cannot read array")


def test_corrupt_x_member(tmp_path: Path) -> None:
    path = tmp_path / "bad_x.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("X.npy", b"\x93NUMPY\x01\x00garbage")
        with zf.open("sections.npy", "w") as fh:
            np.save(fh, np.array(["a", "expressed"]))
        with zf.open("section_widths.npy", "w") as fh:
            np.save(fh, np.array([1, 1]))
    _expect_error(path, "cannot read array X")


def test_flipped_bytes_in_compressed_member(tmp_path: Path) -> None:
    path = tmp_path / "flipped.npz"
    write_npz(path, _matrix(rows=400), SMALL_SECTIONS)
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 3
    raw[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(raw))
    _expect_error(path, "data file")


def test_pickled_object_array(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(
        path,
        X=np.array([[0, 1]], dtype=object),
        sections=np.array(["a", "expressed"]),
        section_widths=np.array([1, 1]),
    )
    _expect_error(path, "cannot read array X")


def test_form_b_missing_sections(tmp_path: Path) -> None:
    path = _save(tmp_path / "b.npz", X=_matrix())
    _expect_error(path, "missing array(s) sections, section_widths", "X+sections+section_widths")


def test_form_a_missing_val(tmp_path: Path) -> None:
    path = _save(tmp_path / "a.npz", X_train=_matrix(cols=12001))
    _expect_error(path, "missing arrays", "X_train+X_val", "found: X_train")


def test_both_forms(tmp_path: Path) -> None:
    X = _matrix()
    path = _save(tmp_path / "ab.npz", X=X, X_train=X, X_val=X)
    _expect_error(path, "both X and X_train")


def test_form_a_sections_without_widths(tmp_path: Path) -> None:
    X = _matrix()
    path = _save(tmp_path / "a.npz", X_train=X, X_val=X, sections=np.array(["a", "b", "c"]))
    _expect_error(path, "has sections but not section_widths")


def test_not_2d(tmp_path: Path) -> None:
    path = _form_b(tmp_path / "flat.npz", _matrix().reshape(-1))
    _expect_error(path, "array X must be 2-D", "shape (660,)")


def test_form_a_not_2d(tmp_path: Path) -> None:
    X = _matrix(cols=12001)
    path = _save(tmp_path / "a.npz", X_train=X, X_val=X[None])
    _expect_error(path, "array X_val must be 2-D")


def test_values_other_than_binary(tmp_path: Path) -> None:
    X = _matrix().astype(np.int64)
    X[3, 2] = 2
    X[5, 7] = -1
    X[9, 1] = 7
    path = _form_b(tmp_path / "counts.npz", X)
    _expect_error(path, "3 value(s) other than 0/1", "e.g. 2")


def test_uint8_values_other_than_binary(tmp_path: Path) -> None:
    X = _matrix()
    X[0, 0] = 255
    _expect_error(_form_b(tmp_path / "u8.npz", X), "1 value(s) other than 0/1", "e.g. 255")


def test_float_values_other_than_binary(tmp_path: Path) -> None:
    X = _matrix().astype(np.float32)
    X[1, 1] = 0.5
    _expect_error(_form_b(tmp_path / "f.npz", X), "1 value(s) other than 0/1", "e.g. 0.5")


def test_nan(tmp_path: Path) -> None:
    X = _matrix().astype(np.float64)
    X[1, 1] = np.nan
    X[2, 2] = np.nan
    _expect_error(_form_b(tmp_path / "nan.npz", X), "2 NaN")


def test_string_matrix(tmp_path: Path) -> None:
    X = _matrix().astype(str)
    _expect_error(
        _form_b(tmp_path / "s.npz", X), "has dtype <U", "expected bool, integer or float"
    )


def test_width_sum_mismatch(tmp_path: Path) -> None:
    path = _form_b(tmp_path / "x.npz", _matrix(cols=12000), sections=NOTES_SECTIONS)
    message = _expect_error(path)
    assert message == (
        f"data file '{path}': X column count 12000 does not match section widths summing to "
        "12001 (DNA_methylation 4000, H3K9me3 4000, H3K27me3 4000, expressed 1)"
    )


def test_form_a_default_sections_mismatch(tmp_path: Path) -> None:
    X = _matrix()
    path = _save(tmp_path / "a.npz", X_train=X, X_val=X)
    _expect_error(path, "X_train column count 11", "summing to 12001")


def test_sections_length_mismatch(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "x.npz",
        X=_matrix(),
        sections=np.array(["markA", "markB", "expressed"]),
        section_widths=np.array([10, 1]),
    )
    _expect_error(path, "3 names but section_widths has 2 widths")


@pytest.mark.parametrize("bad_width", [0, -4])
def test_non_positive_width(tmp_path: Path, bad_width: int) -> None:
    sections = (("markA", 10 - bad_width), ("markB", bad_width), ("expressed", 1))
    path = _form_b(tmp_path / "x.npz", _matrix(), sections=sections)
    _expect_error(path, "must be positive", f"markB {bad_width}")


def test_last_section_not_width_one(tmp_path: Path) -> None:
    sections = (("markA", 6), ("expressed", 5))
    _expect_error(_form_b(tmp_path / "x.npz", _matrix(), sections=sections), "expressed 5")


def test_bad_sections_dtype(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "x.npz",
        X=_matrix(),
        sections=np.array([1, 2, 3]),
        section_widths=np.array([6, 4, 1]),
    )
    _expect_error(path, "sections must be a 1-D array of strings")


def test_split_column_counts_differ(tmp_path: Path) -> None:
    train = _matrix(cols=12001)
    path = _save(tmp_path / "a.npz", X_train=train, X_val=train, X_test=train[:, :-5])
    _expect_error(path, "column counts differ", "X_train 12001", "X_test 11996")


def test_too_few_rows(tmp_path: Path) -> None:
    X = _matrix(rows=12, ones_rate=0.25)  # 3 ones, 9 zeros; val 0.2 needs 5 of each
    message = _expect_error(_form_b(tmp_path / "few.npz", X), "needs at least 10 rows")
    assert "5 of each label class" in message and "3 with expressed=1" in message


def test_too_few_rows_for_small_val_fraction(tmp_path: Path) -> None:
    X = _matrix(rows=100, ones_rate=0.05)  # 5 ones; val 0.1 needs 10 of each class
    _expect_error(_form_b(tmp_path / "f.npz", X), "needs at least 20 rows", val_fraction=0.1)


def test_smallest_splittable_file_splits(tmp_path: Path) -> None:
    X = _matrix(rows=10, ones_rate=0.5)  # exactly 5 of each class: enough for val 0.2
    data = load_dataset(_form_b(tmp_path / "ok.npz", X))
    for part in (data.train, data.val):
        assert 0 < part[:, -1].sum() < part.shape[0]


def test_label_with_one_class(tmp_path: Path) -> None:
    X = _matrix()
    X[:, -1] = 1
    _expect_error(_form_b(tmp_path / "ones.npz", X), "one class", "all 60 rows are 1")


def test_form_a_val_with_one_class(tmp_path: Path) -> None:
    train = _matrix(cols=12001)
    val = _matrix(rows=8, cols=12001)
    val[:, -1] = 0
    path = _save(tmp_path / "a.npz", X_train=train, X_val=val)
    _expect_error(path, "in X_val has one class")


def test_form_a_train_with_one_class(tmp_path: Path) -> None:
    train = _matrix(cols=12001)
    train[:, -1] = 1
    path = _save(tmp_path / "a.npz", X_train=train, X_val=_matrix(cols=12001))
    _expect_error(path, "in X_train has one class")


def test_form_a_empty_val(tmp_path: Path) -> None:
    train = _matrix(cols=12001)
    path = _save(tmp_path / "a.npz", X_train=train, X_val=train[:0])
    _expect_error(path, "X_val has no rows")


# ---------------------------------------------------------------------------------------------
# writing and hashing


def test_write_npz_round_trip(tmp_path: Path) -> None:
    X = _matrix(rows=40).astype(bool)
    path = tmp_path / "written.data"  # no .npz suffix is added
    write_npz(path, X, SMALL_SECTIONS)
    assert path.exists() and not (tmp_path / "written.data.npz").exists()
    assert list(tmp_path.iterdir()) == [path]
    with np.load(path, allow_pickle=False) as npz:
        assert npz["X"].dtype == np.uint8
        assert np.array_equal(npz["X"], X)
        assert npz["sections"].tolist() == ["markA", "markB", "expressed"]
        assert npz["section_widths"].tolist() == [6, 4, 1]
    assert load_dataset(path).n_features == SMALL_COLS


def test_write_npz_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="summing to 11"):
        write_npz(tmp_path / "w.npz", _matrix(cols=12), SMALL_SECTIONS)
    X = _matrix()
    X[0, 0] = 3
    with pytest.raises(DataError, match="other than 0/1"):
        write_npz(tmp_path / "w.npz", X, SMALL_SECTIONS)
    assert not any(tmp_path.iterdir())


def test_file_sha256(small_b: Path, tmp_path: Path) -> None:
    assert file_sha256(small_b) == hashlib.sha256(small_b.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="missing.npz"):
        file_sha256(tmp_path / "missing.npz")
