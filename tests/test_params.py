"""TrialParams: one schema, coercion from YAML and CLI strings, and range checks."""

from __future__ import annotations

import pytest

from sweep.errors import ParamError
from sweep.params import PARAM_NAMES
from sweep.params import TrialParams
from sweep.params import coerce
from sweep.params import field_kind
from sweep.params import parse_assignments


def test_defaults_are_the_notes_best() -> None:
    params = TrialParams()
    assert params.encoder_units == (1280, 1024, 768, 512)
    assert params.resolved_decoder_units == (512, 768, 1024, 1280)
    assert params.loss == "focal" and params.focal_alpha is None
    assert params.batch_size == 32 and params.epochs == 10 and params.reduce_lr_on_plateau
    # The baseline a study enqueues is this same configuration (kl_beta 1e-4, balanced).
    from sweep.params import BASELINES

    assert BASELINES["notes"] == params
    assert (params.kl_beta, params.dataset, params.coding_size) == (1e-4, "balanced", 300)


def test_round_trip_through_dict() -> None:
    params = TrialParams(encoder_units=(64, 32), decoder_units=(16,), focal_alpha=0.25)
    assert TrialParams.from_dict(params.to_dict()) == params
    assert set(params.to_dict()) == set(PARAM_NAMES)


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("coding_size", "150", 150),
        ("coding_size", 150.0, 150),
        ("kl_beta", "1e-3", 1e-3),
        ("focal_alpha", "none", None),
        ("focal_alpha", "0.25", 0.25),
        ("decoder_batch_norm", "true", True),
        ("decoder_batch_norm", "off", False),
        ("encoder_units", "1024-512-256", (1024, 512, 256)),
        ("encoder_units", [512, 256], (512, 256)),
        ("decoder_units", "null", None),
    ],
)
def test_coerce(name: str, raw: object, expected: object) -> None:
    assert coerce(name, raw) == expected


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("coding_size", "1.5"),
        ("coding_size", True),
        ("kl_beta", "nan"),
        ("kl_beta", "lots"),
        ("decoder_batch_norm", "maybe"),
        ("encoder_units", "a-b"),
        ("encoder_units", ""),
    ],
)
def test_coerce_rejects(name: str, raw: object) -> None:
    with pytest.raises(ParamError, match=name):
        coerce(name, raw)


@pytest.mark.parametrize(
    "values",
    [
        {"coding_size": 0},
        {"focal_alpha": 1.0},
        {"decoder_dropout": 1.0},
        {"loss": "mse"},
        {"dataset": "oversampled"},
        {"learning_rate": 0},
        {"epochs": 0},
        {"encoder_units": [0]},
        {"activation": "softmax"},
    ],
)
def test_range_checks_name_the_field(values: dict[str, object]) -> None:
    name = next(iter(values))
    with pytest.raises(ParamError, match=f"invalid value for {name}"):
        TrialParams.from_dict(values)


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ParamError, match="unknown hyperparameter 'gama'.*focal_gamma"):
        TrialParams.from_dict({"gama": 2})


def test_parse_assignments() -> None:
    assert parse_assignments(["epochs=2", "focal_alpha=none"]) == {
        "epochs": 2,
        "focal_alpha": None,
    }
    with pytest.raises(ParamError, match="expected name=value"):
        parse_assignments(["epochs"])


@pytest.mark.parametrize("raw", ["", "  "])
@pytest.mark.parametrize("name", ["focal_alpha", "decoder_units"])
def test_empty_value_is_an_error_that_suggests_none(name: str, raw: str) -> None:
    with pytest.raises(ParamError, match=f"invalid value for {name}: .*empty value.*write none"):
        coerce(name, raw)
    with pytest.raises(ParamError, match=f"{name}.*write none"):
        parse_assignments([f"{name}={raw}"])


@pytest.mark.parametrize("word", ["none", "None", "null", "off", " OFF "])
def test_none_words_still_mean_none(word: str) -> None:
    assert parse_assignments([f"focal_alpha={word}"]) == {"focal_alpha": None}


def test_empty_value_of_a_required_field_names_it() -> None:
    with pytest.raises(ParamError, match="invalid value for epochs: expected an integer"):
        parse_assignments(["epochs="])


def test_field_kinds_follow_the_annotations() -> None:
    expected = {
        "coding_size": "int",
        "encoder_units": "units",
        "decoder_units": "units_or_none",
        "activation": "str",
        "decoder_batch_norm": "bool",
        "decoder_dropout": "float",
        "focal_alpha": "float_or_none",
        "kl_beta": "float",
    }
    assert {name: field_kind(name) for name in expected} == expected
    assert {field_kind(name) for name in PARAM_NAMES} <= {
        "int",
        "float",
        "bool",
        "str",
        "units",
        "units_or_none",
        "float_or_none",
    }
    with pytest.raises(ParamError, match="unknown hyperparameter 'nope'"):
        field_kind("nope")
