"""Shared test set-up: the tiers, seeds, quiet TensorFlow, tiny real data, SQLite and PostgreSQL.

Every test starts from the same seeds (``random``, NumPy, and Keras when a test already imported
it). Helpers shared by several test modules live in :mod:`tests.support`, never in a test module;
the one way to run the CLI is :func:`tests.support.cli.run_sweep`.

**Tiers.** :func:`pytest_collection_modifyitems` marks every test, so a new test lands in its
tier by where it lives and what it asks for:

* ``faults``: everything under ``tests/faults/`` (real kills and restarts);
* ``postgres``: asks for ``postgres_url``, or is the ``postgres`` case of a parametrized storage
  (``storage_url``, ``fault_storage``); a test that opens
  :func:`tests.support.postgres.fresh_postgres_database` itself carries ``@pytest.mark.postgres``;
* ``training``: trains a Keras model or runs real trials: asks, directly or through another
  fixture, for one of :data:`TRAINING_FIXTURES` (``synthetic_npz``, the data file trials train
  on, among them), lives in a module of :data:`TRAINING_MODULES`, or carries
  ``@pytest.mark.training``;
* ``unit``: none of those (nor ``slow``). ``make test-unit`` runs ``-m unit``: no TensorFlow
  training, no PostgreSQL, no fault tests, under two minutes. A unit test slower than
  :data:`UNIT_BUDGET_S` is named at the end of the run, to be marked ``training`` or ``slow``.

``make test`` runs every tier, as CI does; ``make test-faults`` runs ``-m faults``.

PostgreSQL tests use the server named by ``SWEEP_TEST_POSTGRES_URL`` (``.ci/run`` starts one and
sets it; see :mod:`tests.support.postgres`). Each test gets its own fresh database, dropped
afterwards. Locally, without the variable, those tests skip with a one-line reason; under CI
(``CI=true``) they fail instead.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Generator
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from tests.support.postgres import fresh_postgres_database  # noqa: E402  (after the above)

TESTS = Path(__file__).resolve().parent
TEST_SEED = 0
#: The markers that keep a test out of the unit tier.
NOT_UNIT = ("faults", "postgres", "training", "slow")
#: Fixtures that mean training: a plain name, or ``module.fixture`` for one module's fixture.
TRAINING_FIXTURES = frozenset({"synthetic_npz", "tests.run.test_export.study"})
#: Modules, relative to tests/, where every test trains or runs real trials.
TRAINING_MODULES = frozenset(
    {
        "test_sweep.py",
        "train/test_engine.py",
        "train/test_label_levers.py",
        "train/test_model.py",
    }
)
#: Seconds past which a unit test is named at the end of the run.
UNIT_BUDGET_S = 5.0


def _uses_postgres(item: pytest.Item) -> bool:
    if "postgres_url" in getattr(item, "fixturenames", ()):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in [
        v for v in callspec.params.values() if isinstance(v, str)
    ]


def _fixture_names(item: pytest.Item) -> set[str]:
    """The plain and ``module.name`` names of every fixture ``item`` uses, however indirectly."""
    names = set(getattr(item, "fixturenames", ()))
    info = getattr(item, "_fixtureinfo", None)  # pytest has no public map to fixture functions
    for definitions in getattr(info, "name2fixturedefs", {}).values():
        func = definitions[-1].func
        names.add(f"{func.__module__}.{func.__name__}")
    return names


def _trains(item: pytest.Item) -> bool:
    if Path(item.path).relative_to(TESTS).as_posix() in TRAINING_MODULES:
        return True
    return bool(TRAINING_FIXTURES & _fixture_names(item))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each test in its tiers (see the module docstring)."""
    for item in items:
        if Path(item.path).relative_to(TESTS).parts[0] == "faults":
            item.add_marker(pytest.mark.faults)
        if _uses_postgres(item):
            item.add_marker(pytest.mark.postgres)
        if _trains(item):
            item.add_marker(pytest.mark.training)
        if not any(item.get_closest_marker(name) for name in NOT_UNIT):
            item.add_marker(pytest.mark.unit)


_slow_unit_tests: list[tuple[float, str]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, None, None]:
    yield
    if item.get_closest_marker("unit") and call.duration > UNIT_BUDGET_S:
        _slow_unit_tests.append((call.duration, f"{item.nodeid} ({call.when})"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _slow_unit_tests:
        terminalreporter.section("unit tests over their budget")
        terminalreporter.write_line(
            f"over {UNIT_BUDGET_S:g} s in one phase (a loaded machine can do that too); a test "
            "that trains belongs in `training` (see tests/conftest.py):"
        )
        for seconds, name in sorted(_slow_unit_tests, reverse=True):
            terminalreporter.write_line(f"  {seconds:6.1f} s  {name}")


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Seed ``random`` and NumPy before every test; Keras too, if something imported it."""
    random.seed(TEST_SEED)
    np.random.seed(TEST_SEED)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(TEST_SEED)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a fresh, empty PostgreSQL database (password auth over TCP)."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A URL to a SQLite file in the test's temporary directory (not yet created)."""
    return f"sqlite:///{tmp_path / 'study.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage backend in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic file in the notes' 12001-column layout (240 rows)."""
    from sweep.train.synth import write_synthetic

    path = tmp_path_factory.mktemp("data") / "synthetic.npz"
    write_synthetic(path, 240, seed=0)
    return path
