"""benchmarks/racing.py's replays on a made-up table: each method spends its budget and picks a
point of the grid, and racing ranks by seed means (no training: the table is synthetic)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import racing  # noqa: E402
import search_efficiency  # noqa: E402

from sweep.space import load_space  # noqa: E402

EPOCHS = 2


def _table() -> tuple[object, dict[str, list[dict]]]:
    space = load_space(racing.SPACE).with_fixed({"epochs": EPOCHS})
    rng = random.Random(0)
    table = {}
    for point in search_efficiency.grid_points(space):
        truth = 0.5 + 0.1 * point["focal_gamma"] + (0.05 if point["dataset"] == "original" else 0)
        runs = []
        for _ in racing.seeds():
            final = truth + rng.gauss(0, 0.03)
            runs.append({"curve": [final - 0.05, final], "final": final})
        table[search_efficiency.point_key(point)] = runs
    return space, table


def test_every_method_spends_its_budget_and_picks_a_grid_point() -> None:
    space, table = _table()
    budget = 30
    for runs in (1, racing.MAX_SEEDS):
        pick, spent = racing.replay_single(space, table, budget, seed=1, epochs=EPOCHS, runs=runs)
        assert pick in table and budget <= spent < budget + runs * EPOCHS
    pick, spent = racing.replay_racing(space, table, budget, seed=1, epochs=EPOCHS)
    assert pick in table and budget <= spent < budget + EPOCHS


def test_racings_pick_is_among_the_better_points() -> None:
    space, table = _table()
    truth = {k: sum(r["final"] for r in rows) / len(rows) for k, rows in table.items()}
    picks = [racing.replay_racing(space, table, 60, seed=s, epochs=EPOCHS)[0] for s in range(3)]
    median_truth = sorted(truth.values())[len(truth) // 2]
    assert all(truth[p] > median_truth for p in picks)
