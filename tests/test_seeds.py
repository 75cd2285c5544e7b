"""The racing rule (:mod:`sweep.seeds`): who gets another seed, from stored runs alone."""

from __future__ import annotations

import math

import pytest

from sweep.seeds import Configuration
from sweep.seeds import SeedRun
from sweep.seeds import configurations
from sweep.seeds import pooled_sd
from sweep.seeds import race
from sweep.seeds import race_seed
from sweep.seeds import ranked
from sweep.seeds import separated


def _config(number: int, *values: float, pending: int = 0) -> Configuration:
    return Configuration(number, tuple(values), frozenset(range(len(values))), pending)


#: A measured spread: two far worse configurations with three seeds each, seed sd 0.02.
MEASURED = [_config(10, 0.30, 0.32, 0.34), _config(11, 0.20, 0.22, 0.24)]


def test_a_configuration_near_the_incumbent_gets_another_seed() -> None:
    incumbent = _config(0, 0.81)
    near = _config(1, 0.80)  # 0.01 below: well inside 1.645 * 0.02 * sqrt(2)
    assert pooled_sd(MEASURED) == pytest.approx(0.02)
    assert race([incumbent, near, *MEASURED], maximize=True, max_seeds=3) == [0, 1]


def test_a_clearly_worse_configuration_gets_none() -> None:
    incumbent = _config(0, 0.81, 0.83)
    worse = _config(1, 0.70)  # 0.12 below: 1.645 * 0.02 * sqrt(1 + 1/2) = 0.04
    assert separated(incumbent, worse, 0.02, maximize=True)
    assert race([incumbent, worse, *MEASURED], maximize=True, max_seeds=3) == [0]


def test_the_closeness_bound_follows_the_measured_spread() -> None:
    incumbent, contender = _config(0, 0.81), _config(1, 0.75)
    assert race([incumbent, contender, *MEASURED], maximize=True, max_seeds=3) == [0]
    noisy = [_config(10, 0.20, 0.30, 0.40), _config(11, 0.10, 0.20, 0.30)]  # sd 0.1
    assert race([incumbent, contender, *noisy], maximize=True, max_seeds=3) == [0, 1]


def test_the_incumbent_gets_seeds_so_a_lucky_draw_cannot_hold_the_top() -> None:
    lucky = _config(0, 0.90)
    steady = _config(1, 0.88, 0.87)
    # even where the spread separates them, the pick is never left on one draw
    assert race([lucky, steady], maximize=True, max_seeds=3) == [0]
    assert race([lucky], maximize=True, max_seeds=3) == [0]
    # without a measured spread nothing is separated: both are raced
    assert race([_config(0, 0.9), _config(1, 0.5)], maximize=True, max_seeds=3) == [0, 1]


def test_minimising_flips_the_sides() -> None:
    low, high = _config(0, 0.10, 0.12), _config(1, 0.30)
    assert ranked([high, low], maximize=False)[0].number == 0
    assert separated(low, high, 0.02, maximize=False)
    assert not separated(low, high, 0.02, maximize=True)


def test_no_seed_past_max_seeds_or_while_one_is_pending() -> None:
    full = [_config(0, 0.8, 0.81, 0.79), _config(1, 0.8, 0.8, 0.8)]
    assert race(full, maximize=True, max_seeds=3) == []
    pending = [_config(0, 0.8, pending=1), _config(1, 0.8, pending=1)]
    assert race(pending, maximize=True, max_seeds=3) == []
    assert race([_config(0, 0.8), _config(1, 0.8)], maximize=True, max_seeds=1) == []


def test_configurations_from_runs_count_each_seed_index_once() -> None:
    runs = [
        SeedRun(0, "COMPLETE", 0.8),
        SeedRun(1, "COMPLETE", 0.7),
        SeedRun(2, "FAIL", None, race_of=0, seed_index=1),  # killed ...
        SeedRun(3, "WAITING", None, race_of=0, seed_index=1),  # ... and retried: one index
        SeedRun(4, "COMPLETE", 0.75, race_of=1, seed_index=1),
        SeedRun(5, "PRUNED", 0.1),  # a pruned configuration is never raced
        SeedRun(6, "COMPLETE", math.nan),
    ]
    by_number = {c.number: c for c in configurations(runs)}
    assert sorted(by_number) == [0, 1]
    assert by_number[0].values == (0.8,) and by_number[0].pending == 1
    assert by_number[0].taken == {0, 1} and by_number[0].next_index == 2
    assert by_number[1].values == (0.7, 0.75) and by_number[1].mean == pytest.approx(0.725)
    assert race_seed(1) != race_seed(2) and race_seed(1) < 1000  # confirm uses 1000 + i
