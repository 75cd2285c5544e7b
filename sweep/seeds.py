"""Seeds inside the search: a configuration's value is the mean over its seeds, and racing
decides which configuration gets another seed.

A *configuration* is one sampled trial; its extra seeds are trials of the same study with the
same parameters, marked by :data:`RACE_ATTR` (the configuration's trial number) and
:data:`SEED_INDEX_ATTR`. Seed index 0 is the configuration's own trial (its own seed); index
``k >= 1`` runs with seed :func:`race_seed` ``(k)``, the same for every configuration, so
configurations are compared on paired seeds.

**The racing rule.** After every finished run, with ``s`` the pooled seed-to-seed standard
deviation of the configurations that have two or more seeds (measured, not chosen) and the
incumbent ``i`` the configuration with the best mean, a contender ``c`` is *separated* (worse)
when ``mean_i - mean_c > RACE_Z * s * sqrt(1/n_c + 1/n_i)`` (signs flipped when minimising):
a one-sided 95 % bound on the difference of two means. A contender that is not separated gets
one more seed (up to ``max_seeds``). The incumbent always gets its seeds, up to ``max_seeds``:
it is the pick, so a lucky first draw cannot hold the top, and its seeds measure the spread
early. Until a spread is measured, nothing is separated. Standard library only.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

#: Trial user attribute of an extra seed: the number of its configuration's trial.
RACE_ATTR = "race_of"
#: Trial user attribute of an extra seed: its seed index (1, 2, ...).
SEED_INDEX_ATTR = "seed_index"
#: Seed index ``k >= 1`` runs with seed ``SEED_BASE + k`` (``confirm`` uses 1000 + k).
SEED_BASE = 100
#: The one-sided normal quantile of the separation bound (95 %).
RACE_Z = 1.645
#: States in which a seed index counts as taken (a FAIL is retried under the same index).
_PENDING = ("RUNNING", "WAITING")


def race_seed(seed_index: int) -> int:
    """The seed that extra seed ``seed_index`` (1, 2, ...) of every configuration runs with."""
    return SEED_BASE + seed_index


@dataclass(frozen=True)
class SeedRun:
    """One trial as racing sees it: its number, state, value and, for an extra seed, whose."""

    number: int
    state: str
    value: float | None
    race_of: int | None = None
    seed_index: int = 0


def seed_run(trial: FrozenTrial) -> SeedRun:
    """``trial`` as racing sees it (the first objective only)."""
    race_of = trial.user_attrs.get(RACE_ATTR)
    values = trial.values
    return SeedRun(
        number=trial.number,
        state=trial.state.name,
        value=values[0] if values else None,
        race_of=int(race_of) if race_of is not None else None,
        seed_index=int(trial.user_attrs.get(SEED_INDEX_ATTR, 0)),
    )


@dataclass(frozen=True)
class Configuration:
    """A configuration's runs so far.

    Attributes:
        number: Its own trial's number (seed index 0).
        values: Objective values of its COMPLETE runs, by seed index.
        taken: Seed indexes taken in any state (the next one is ``max(taken) + 1``).
        pending: Runs queued or running.
    """

    number: int
    values: tuple[float, ...]
    taken: frozenset[int]
    pending: int

    @property
    def n(self) -> int:
        """Complete seeds."""
        return len(self.values)

    @property
    def mean(self) -> float:
        """The mean over complete seeds (NaN with none)."""
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def sd(self) -> float | None:
        """The sample standard deviation over complete seeds (``None`` below two)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def next_index(self) -> int:
        """The seed index a new extra seed takes."""
        return max(self.taken) + 1


def configurations(runs: Iterable[SeedRun]) -> list[Configuration]:
    """Group runs into configurations, in trial-number order.

    A configuration appears once its own trial is COMPLETE (a pruned or failed one is never
    raced); extra seeds of a configuration that is not complete are ignored.
    """
    runs = list(runs)
    own = {r.number: r for r in runs if r.race_of is None and r.state == "COMPLETE"}
    values: dict[int, dict[int, float]] = {n: {} for n in own}
    taken: dict[int, set[int]] = {n: {0} for n in own}
    pending = dict.fromkeys(own, 0)
    for r in runs:
        key = r.number if r.race_of is None else r.race_of
        if key not in own:
            continue
        index = 0 if r.race_of is None else r.seed_index
        taken[key].add(index)
        if r.state == "COMPLETE" and r.value is not None and math.isfinite(r.value):
            values[key][index] = float(r.value)
        elif r.state in _PENDING:
            pending[key] += 1
    return [
        Configuration(
            number=n,
            values=tuple(v for _, v in sorted(values[n].items())),
            taken=frozenset(taken[n]),
            pending=pending[n],
        )
        for n in sorted(own)
        if values[n]
    ]


def pooled_sd(configs: Iterable[Configuration]) -> float | None:
    """The seed-to-seed standard deviation pooled over configurations with two or more seeds."""
    squares, dof = 0.0, 0
    for c in configs:
        if c.n > 1:
            squares += (c.n - 1) * statistics.variance(c.values)
            dof += c.n - 1
    return math.sqrt(squares / dof) if dof else None


def ranked(configs: Iterable[Configuration], *, maximize: bool) -> list[Configuration]:
    """Configurations by mean, best first (ties: the earlier trial)."""
    sign = -1.0 if maximize else 1.0
    return sorted(configs, key=lambda c: (sign * c.mean, c.number))


def separated(
    best: Configuration, other: Configuration, sd: float | None, *, maximize: bool
) -> bool:
    """Whether ``other`` is worse than ``best`` by more than seed noise explains."""
    if sd is None:
        return False
    gap = (best.mean - other.mean) if maximize else (other.mean - best.mean)
    return gap > RACE_Z * sd * math.sqrt(1.0 / other.n + 1.0 / best.n)


def race(configs: Sequence[Configuration], *, maximize: bool, max_seeds: int) -> list[int]:
    """The configurations (trial numbers) that get one more seed now, by the racing rule."""
    if max_seeds <= 1 or not configs:
        return []
    order = ranked(configs, maximize=maximize)
    incumbent = order[0]
    sd = pooled_sd(configs)
    close = [incumbent] + [
        c for c in order[1:] if not separated(incumbent, c, sd, maximize=maximize)
    ]
    return [c.number for c in close if c.pending == 0 and len(c.taken) < max_seeds]


def summary(config: Configuration) -> dict[str, object]:
    """``seeds``, ``value_mean``, ``value_sd`` and ``seed_values`` for ``best --format json``."""
    return {
        "seeds": config.n,
        "value_mean": config.mean,
        "value_sd": config.sd,
        "seed_values": list(config.values),
    }
