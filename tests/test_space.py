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


# --- conditional names: alpha as the notes ran it ---------------------------------------------

_SWITCH = {"type": "categorical", "choices": [False, True]}
_ALPHA = {"type": "float", "low": 0.25, "high": 0.75, "when": {"focal_alpha_applied": True}}


def test_notes_alpha_is_applied_or_not_and_sampled_only_when_applied() -> None:
    space = load_space("notes")
    assert space.search["focal_alpha_applied"] == _SWITCH
    assert space.search["focal_alpha"]["when"] == {"focal_alpha_applied": True}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = space.suggest(trial)
        applied = trial.params["focal_alpha_applied"]
        seen.add(applied)
        if applied:
            assert 0.25 <= trial.params["focal_alpha"] <= 0.75
            assert params.focal_alpha == trial.params["focal_alpha"]
        else:
            assert "focal_alpha" not in trial.params
            assert params.focal_alpha is None
        study.tell(trial, 0.5)
    assert seen == {False, True}


def test_conditional_space_runs_with_the_study_sampler() -> None:
    from sweep.config import study_config
    from sweep.run.sampling import make_sampler

    config = study_config(load_space("notes"))
    study = optuna.create_study(sampler=make_sampler(config, 0), direction="maximize")
    space = config.search_space
    for i in range(14):  # past TPE's 10 start-up trials
        trial = study.ask()
        params = space.suggest(trial)
        assert (params.focal_alpha is None) == (not trial.params["focal_alpha_applied"])
        study.tell(trial, float(i))


def test_fingerprint_changes_with_the_condition() -> None:
    base = load_space("notes").to_json()
    fp = SearchSpace.from_mapping(base).fingerprint()
    unconditional = {k: v for k, v in _ALPHA.items() if k != "when"}
    search = {k: v for k, v in base["search"].items() if k != "focal_alpha_applied"}
    changed = {**base, "search": {**search, "focal_alpha": unconditional}}
    assert SearchSpace.from_mapping(changed).fingerprint() != fp
    flipped = {**base["search"], "focal_alpha": {**_ALPHA, "when": {"focal_alpha_applied": False}}}
    assert SearchSpace.from_mapping({**base, "search": flipped}).fingerprint() != fp
    assert SearchSpace.from_mapping({**base, "baseline": None}).fingerprint() == fp


def test_grid_refuses_a_conditional_space_in_one_line() -> None:
    space = load_space("notes").with_fixed({"focal_gamma": 2.0, "kl_beta": 1e-3})
    with pytest.raises(SpaceError, match="grid sampler cannot search a conditional") as e:
        space.grid()
    assert "\n" not in str(e.value)


def test_fixing_a_parent_or_the_child_resolves_the_condition() -> None:
    space = load_space("notes")
    fixed_alpha = space.with_fixed({"focal_alpha": 0.5})
    assert "focal_alpha_applied" not in fixed_alpha.search
    assert fixed_alpha.suggest(optuna.create_study().ask()).focal_alpha == 0.5
    wide = SearchSpace.from_mapping(
        _space(
            loss={"type": "categorical", "choices": ["focal", "bce"]},
            focal_gamma={"type": "float", "low": 1.0, "high": 2.0, "when": {"loss": "focal"}},
        )
    )
    assert "when" not in wide.with_fixed({"loss": "focal"}).search["focal_gamma"]
    assert "focal_gamma" not in wide.with_fixed({"loss": "bce"}).search


@pytest.mark.parametrize(
    ("search", "message"),
    [
        (
            {
                "focal_alpha": {**_ALPHA, "when": {"applied": True}},
                "loss": {"type": "categorical", "choices": ["focal"]},
            },  # noqa: E501
            "search.focal_alpha.when: unknown parent 'applied'",
        ),
        (
            {
                "focal_gamma": {"type": "float", "low": 1, "high": 2},
                "focal_alpha": {**_ALPHA, "when": {"focal_gamma": 1.5}},
            },  # fmt: skip
            "parent 'focal_gamma' is a float range; expected a categorical",
        ),
        (
            {
                "focal_alpha_applied": _SWITCH,
                "focal_alpha": {**_ALPHA, "when": {"focal_alpha_applied": "yes"}},
            },  # fmt: skip
            r"when.focal_alpha_applied: expected one of \[False, True\], got 'yes'",
        ),
        (
            {
                "focal_alpha_applied": _SWITCH,
                "focal_alpha": {**_ALPHA, "when": {"focal_alpha_applied": True, "loss": "x"}},
            },  # fmt: skip
            "when: expected one parent and its value",
        ),
        (
            {
                "focal_alpha_applied": {"type": "float", "low": 0, "high": 1},
                "focal_alpha": _ALPHA,
            },  # fmt: skip
            "focal_alpha_applied is not a hyperparameter, so it can only be a switch",
        ),
        (
            {
                "focal_alpha_applied": _SWITCH,
                "loss": {
                    **_SWITCH,
                    "choices": ["focal", "bce"],
                    "when": {"focal_alpha_applied": True},
                },
                "focal_alpha": {**_ALPHA, "when": {"loss": "focal"}},
            },  # fmt: skip
            "parent 'loss' is itself conditional",
        ),
        (
            {
                "focal_alpha_applied": _SWITCH,
                "focal_alpha": {"type": "float", "low": 0.25, "high": 0.75},
            },  # fmt: skip
            "search.focal_alpha_applied: unknown hyperparameter",
        ),
        (
            {
                "loss": {"type": "categorical", "choices": ["focal", "bce"]},
                "focal_gamma": {"type": "float", "low": 1, "high": 2, "when": {"loss": "mse"}},
            },  # fmt: skip
            r"when.loss: expected one of \['focal', 'bce'\], got 'mse'",
        ),
    ],
)
def test_bad_conditions_are_refused_in_one_line(search: dict[str, object], message: str) -> None:
    with pytest.raises(SpaceError, match=message) as e:
        SearchSpace.from_mapping(_space(**search), source="x.yaml")
    assert str(e.value).startswith("x.yaml: ") and "\n" not in str(e.value)


def test_baseline_key_is_checked() -> None:
    with pytest.raises(SpaceError, match="baseline: expected one of notes, got 'mine'"):
        SearchSpace.from_mapping({**_space(), "baseline": "mine"}, source="x.yaml")
