"""Fuzzing the two file parsers: whatever the input, they load or raise sweep's own error.

* :meth:`sweep.space.SearchSpace.from_mapping` and :func:`sweep.space.load_space` get arbitrary
  nested documents, near-valid spaces and arbitrary text; a space that loads must round-trip
  through its JSON form and give Optuna distributions a trial can sample.
* :func:`sweep.train.data.load_dataset` gets ``.npz`` files with arbitrary arrays (dtype, shape,
  values, names, missing keys) and arbitrary bytes.

Any exception other than :class:`sweep.errors.SweepError` is a bug.
"""

from __future__ import annotations

import io
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sweep.errors import SweepError
from sweep.params import PARAM_NAMES
from sweep.space import SearchSpace
from sweep.space import load_space
from sweep.train.data import load_dataset

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
KEYS = (
    "description",
    "objective",
    "search",
    "fixed",
    "metric",
    "direction",
    "type",
    "low",
    "high",
    "log",
    "step",
    "choices",
    "maximize",
    "minimize",
    "float",
    "int",
    "categorical",
    *PARAM_NAMES,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(KEYS),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3), st.none())
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)

numbers = st.one_of(
    st.integers(-5, 600), st.floats(-10, 1e3, allow_nan=False), st.sampled_from([0, 1e-4, 0.5])
)
specs = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["float", "int"]), "low": numbers, "high": numbers},
        optional={"log": st.one_of(st.booleans(), scalars), "step": numbers, "choices": scalars},
    ),
    st.fixed_dictionaries(
        {"type": st.just("categorical"), "choices": st.lists(scalars | numbers, max_size=4)}
    ),
    documents,
)
near_valid = st.fixed_dictionaries(
    {
        "objective": st.one_of(
            st.fixed_dictionaries(
                {
                    "metric": st.sampled_from(["expression.auroc", "expression.f1", "x"]),
                    "direction": st.sampled_from(["maximize", "minimize", "up"]),
                }
            ),
            documents,
        ),
        "search": st.dictionaries(st.sampled_from(PARAM_NAMES), specs, max_size=4),
    },
    optional={
        "fixed": st.dictionaries(st.sampled_from(PARAM_NAMES), scalars | numbers, max_size=3),
        "description": scalars,
    },
)


def _check_space(space: SearchSpace) -> None:
    """A loaded space round-trips and can be sampled by a real Optuna trial."""
    import optuna

    again = SearchSpace.from_mapping(space.to_json(), source="round trip")
    assert again == space
    assert again.fingerprint() == space.fingerprint()
    distributions = space.distributions()
    assert set(distributions) == set(space.search)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        directions=space.directions, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    params = space.suggest(study.ask())
    for name, value in space.fixed.items():
        assert getattr(params, name) == value


def _load_mapping(data: Any) -> None:
    try:
        space = SearchSpace.from_mapping(data, source="fuzz")
    except SweepError as e:
        assert str(e).startswith("fuzz"), str(e)
        return
    _check_space(space)


@FUZZ
@given(documents)
def test_arbitrary_documents_load_or_raise_space_error(data: Any) -> None:
    _load_mapping(data)


@FUZZ
@given(near_valid)
def test_near_valid_spaces_load_or_raise_space_error(data: Any) -> None:
    _load_mapping(data)


def _load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "space.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            space = load_space(path)
        except SweepError as e:
            assert "space.yaml" in str(e), str(e)
            return
        _check_space(space)


@FUZZ
@given(st.one_of(documents, near_valid))
def test_yaml_files_of_arbitrary_documents(data: Any) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    _load_text(text)


yaml_fragments = st.sampled_from(
    [
        "objective:",
        " {metric: expression.auroc, direction: maximize}",
        "\nsearch:",
        "\n  kl_beta: ",
        "{type: float, low: 1.0e-4, high: 1.0e-2, log: true}",
        "\nfixed:",
        "\n  epochs: ",
        "2001-02-30",
        "!!binary aGVsbG8=",
        "&a [1, *a]",
        "*a",
        "!!set {a, b}",
        "!!timestamp 2001-13-45",
        "!!float nan",
        ".inf",
        "[",
        "]",
        "{",
        "}",
        ": ",
        "- ",
        "\t",
        "'",
        '"',
        "\\u0000",
        "%YAML 1.1\n---\n",
        "---\n",
        "!!str",
        "!!int 0x1F",
        "~",
        "? ",
        "!!python/tuple [1, 2]",
        "!!merge <<",
        "<<: {low: 1}",
        "1e400",
        "0o17",
        "\n",
    ]
)


@FUZZ
@given(st.lists(st.one_of(yaml_fragments, st.text(max_size=6)), max_size=14))
def test_arbitrary_yaml_text(parts: list[str]) -> None:
    _load_text("".join(parts))


# --- data files ------------------------------------------------------------------------------

ARRAY_NAMES = ("X", "sections", "section_widths", "X_train", "X_val", "X_test", "extra")
dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="="),
    hnp.complex_number_dtypes(endianness="="),
    hnp.unicode_string_dtypes(max_len=6),
    hnp.byte_string_dtypes(max_len=6),
    hnp.datetime64_dtypes(),
)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=14)
arrays = st.one_of(
    hnp.arrays(dtypes, shapes),
    # mostly-binary matrices with a label column, so the deeper checks run
    hnp.arrays(
        np.uint8, st.tuples(st.integers(0, 40), st.integers(1, 14)), elements=st.integers(0, 1)
    ),
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 12), st.integers(1, 6)),
        elements=st.sampled_from([0.0, 1.0, 2.0, math.nan]),
    ),
)
section_names = hnp.arrays(
    np.dtype("<U5"), st.integers(0, 4), elements=st.text(max_size=5).map(lambda t: t.rstrip("\0"))
)
section_widths = hnp.arrays(np.int64, st.integers(0, 4), elements=st.integers(-2, 14))
archives = st.builds(
    lambda base, extra: {**base, **extra},
    st.dictionaries(st.sampled_from(ARRAY_NAMES), arrays, max_size=5),
    st.fixed_dictionaries(
        {}, optional={"sections": section_names, "section_widths": section_widths}
    ),
)


@st.composite
def near_valid_archives(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Form (b) files whose sections nearly fit X: reaches the split and class checks."""
    widths = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)) + [1]
    rows = draw(st.integers(0, 40))
    columns = sum(widths) + draw(st.sampled_from([0, 0, 0, 1, -1]))
    X = draw(hnp.arrays(np.uint8, (rows, max(columns, 1)), elements=st.integers(0, 1)))
    names = [f"m{i}" for i in range(len(widths) - 1)] + ["expressed"]
    if draw(st.booleans()):
        names[0] = draw(st.sampled_from(["", "expressed", "m1"]))
    return {"X": X, "sections": np.array(names), "section_widths": np.array(widths)}


def _load_npz_bytes(payload: bytes, val_fraction: float = 0.2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        path.write_bytes(payload)
        try:
            dataset = load_dataset(path, val_fraction=val_fraction)
        except SweepError as e:
            assert "data.npz" in str(e) or "fraction" in str(e), str(e)
            return
    for split in (dataset.train, dataset.val):
        assert split.dtype == np.uint8 and split.ndim == 2
        assert not split.flags.writeable
        assert set(np.unique(split).tolist()) <= {0, 1}
        assert split.shape[1] == dataset.n_features
    assert dataset.sections[-1].width == 1
    labels = dataset.train[:, -1]
    assert 0 < labels.sum() < len(labels)


@FUZZ
@given(st.one_of(archives, near_valid_archives()), st.sampled_from([0.2, 0.5]))
def test_arbitrary_npz_archives_load_or_raise_data_error(
    contents: dict[str, np.ndarray], val_fraction: float
) -> None:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.savez(buffer, **contents)
    _load_npz_bytes(buffer.getvalue(), val_fraction)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_load_or_raise_data_error(payload: bytes, as_zip: bool) -> None:
    if as_zip:  # a real zip archive whose members are not .npy data
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("X.npy", payload)
            archive.writestr("sections.npy", payload[::-1])
        payload = buffer.getvalue()
    _load_npz_bytes(payload)


@pytest.mark.parametrize(
    "text",
    [
        "search: !!python/object/apply:os.system ['true']\n",
        "objective: !!python/name:os.system\n",
        "!!python/object:sweep.space.SearchSpace {}\n",
    ],
)
def test_python_tags_are_refused(text: str) -> None:
    with pytest.raises(SweepError, match="not valid YAML"):
        _raise_on_load(text)


def _raise_on_load(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "space.yaml"
        path.write_text(text)
        load_space(path)
