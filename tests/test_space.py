"""Search-space files: parsing, validation messages, suggestion, fingerprints, grids."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from sweep.errors import SpaceError
from sweep.names import metric_names
from sweep.params import TrialParams
from sweep.space import SearchSpace
from sweep.space import load_space

REPO = Path(__file__).resolve().parent.parent
NOTES_SECTIONS = ["DNA_methylation", "H3K9me3", "H3K27me3", "expressed"]


@pytest.mark.parametrize("name", ["notes", "notes_wide", "notes_pareto", "tiny"])
def test_bundled_spaces_load_and_suggest(name: str) -> None:
    space = load_space(REPO / "search_spaces" / f"{name}.yaml")
    space.check_metrics(metric_names(NOTES_SECTIONS))
    study = optuna.create_study(directions=space.directions)
    for _ in range(5):
        trial = study.ask()
        params = space.suggest(trial)
        assert isinstance(params, TrialParams)
        for key, value in space.fixed.items():
            assert getattr(params, key) == value


def test_notes_space_matches_the_notes() -> None:
    space = load_space("notes")
    assert space.search["coding_size"]["choices"] == [150, 300, 400, 500]
    assert (space.search["focal_gamma"]["low"], space.search["focal_gamma"]["high"]) == (1.5, 2.0)
    assert (space.search["focal_alpha"]["low"], space.search["focal_alpha"]["high"]) == (
        0.25,
        0.75,
    )
    assert space.search["kl_beta"]["log"] is True
    assert space.search["dataset"]["choices"] == ["original", "balanced"]
    assert space.metric_names == ["expression_hidden.auroc"] and space.directions == ["maximize"]


def test_stacks_are_categorical_strings_and_become_tuples() -> None:
    space = load_space("notes_wide")
    assert "1280-1024-768-512" in space.search["encoder_units"]["choices"]
    trial = optuna.trial.FixedTrial(
        {
            **{
                k: v["choices"][0] if v["type"] == "categorical" else v["low"]
                for k, v in space.search.items()
            }
        }
    )
    params = space.suggest(trial)
    assert params.encoder_units == (512, 256)


def test_fingerprint_changes_with_content_not_description() -> None:
    base = load_space("notes").to_json()
    same = {**base, "description": "other words"}
    changed = {**base, "fixed": {**base["fixed"], "epochs": 3}}
    fp = SearchSpace.from_mapping(base).fingerprint()
    assert SearchSpace.from_mapping(same).fingerprint() == fp
    assert SearchSpace.from_mapping(changed).fingerprint() != fp


def test_with_fixed_overrides_search_and_fixed() -> None:
    space = load_space("notes").with_fixed({"epochs": 2, "coding_size": 150})
    assert space.fixed["epochs"] == 2 and space.fixed["coding_size"] == 150
    assert "coding_size" not in space.search


def test_grid() -> None:
    space = SearchSpace.from_mapping(
        {
            "objective": {"metric": "expression.auroc", "direction": "maximize"},
            "search": {
                "coding_size": {"type": "categorical", "choices": [4, 8]},
                "epochs": {"type": "int", "low": 1, "high": 3},
                "focal_gamma": {"type": "float", "low": 1.0, "high": 2.0, "step": 0.5},
            },
        }
    )
    assert space.grid() == {
        "coding_size": [4, 8],
        "epochs": [1, 2, 3],
        "focal_gamma": [1.0, 1.5, 2.0],
    }
    with pytest.raises(SpaceError, match="grid sampler needs"):
        load_space("notes").grid()


def _space(**search: object) -> dict[str, object]:
    return {"objective": {"metric": "expression.auroc", "direction": "maximize"}, "search": search}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "expected a mapping at the top level"),
        ({"objective": {"metric": "x", "direction": "up"}}, "maximize or minimize"),
        ({"search": {}}, "missing objective"),
        ({**_space(), "serach": {}}, "unknown top-level key 'serach'"),
        (
            _space(gama={"type": "float", "low": 1, "high": 2}),
            "search.gama: unknown hyperparameter",
        ),
        (_space(focal_gamma={"type": "float", "low": 2, "high": 1}), "low .* greater than high"),
        (_space(kl_beta={"type": "float", "low": 0, "high": 1, "log": True}), "needs low > 0"),
        (_space(coding_size={"type": "categorical", "choices": []}), "non-empty list"),
        (_space(coding_size={"type": "float", "low": 1, "high": 2}), "takes int values"),
        (_space(coding_size={"type": "int", "low": 1, "high": 2, "lo": 1}), "unknown key 'lo'"),
        (_space(coding_size={"type": "normal"}), "expected float, int or categorical"),
        (_space(coding_size={"type": "int", "low": "a", "high": 2}), "expected a number"),
        (_space(coding_size={"type": "int", "low": 0, "high": 2}), "coding_size"),
        (_space(loss={"type": "categorical", "choices": ["focal", "mse"]}), "loss"),
        (
            {**_space(epochs={"type": "int", "low": 1, "high": 2}), "fixed": {"epochs": 3}},
            "both searched and fixed",
        ),
    ],
)
def test_invalid_documents(document: object, message: str) -> None:
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_mapping(document, source="x.yaml")


def test_unknown_objective_metric_names_the_metric() -> None:
    space = SearchSpace.from_mapping(
        {"objective": {"metric": "expression.auc", "direction": "maximize"}}, source="s.yaml"
    )
    with pytest.raises(SpaceError, match="'expression.auc' does not exist"):
        space.check_metrics(metric_names(NOTES_SECTIONS))


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("search: [unclosed\n")
    with pytest.raises(SpaceError, match="not valid YAML at line"):
        load_space(bad)
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(evil)
