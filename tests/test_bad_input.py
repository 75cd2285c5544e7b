"""Bad input, one case per test: a one-line error naming the problem and the fix, nothing written.

Every case runs the real CLI in a subprocess against a storage that already holds a finished
one-trial study (SQLite, and PostgreSQL for the cases that touch a study), and checks:

* a non-zero exit code and exactly one line on stderr, without a traceback;
* the line names the problem (``problem``) and the fix (``fix``);
* TensorFlow and Keras were never imported (the command failed before any training code);
* the database is unchanged: every row of every table, dumped before and after, and no new file
  beside the SQLite database.

The commands run in a few threads at once to keep the file fast; none of them may write, which
is exactly what the dumps check.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.database import dump
from tests.support.postgres import fresh_postgres_database

POSTGRES_ENV = "SWEEP_TEST_POSTGRES_URL"
UNREACHABLE = "postgresql+psycopg://u:unreachable-Secret-1@127.0.0.1:1/db"
WRONG_PASSWORD = "Wrong-Secret-42"


@dataclass(frozen=True)
class Case:
    """One bad command: its arguments (``{name}`` placeholders) and what its error must say."""

    id: str
    args: tuple[str, ...]
    problem: tuple[str, ...]
    fix: tuple[str, ...]
    backends: tuple[str, ...] = ("sqlite",)
    storage: str | None = None  # a storage URL other than the fixture's (then via env)


def _launch(*extra: str) -> tuple[str, ...]:
    defaults = {"--space": "{tiny}", "--data": "{data}", "--study": "new", "--n-trials": "2"}
    given = set(extra[::2])
    args = ["launch", "--set", "epochs=1", "--no-run"]
    for key, value in defaults.items():
        if key not in given:
            args += [key, value]
    return (*args, *extra)


CASES = [
    # --- search-space file ---
    Case(
        "space-missing",
        _launch("--space", "{tmp}/nope.yaml"),
        ("nope.yaml", "does not exist"),
        ("search-space file",),
    ),
    Case(
        "space-not-yaml",
        _launch("--space", "{tmp}/not_yaml.yaml"),
        ("not valid YAML", "line"),
        ("not_yaml.yaml",),
    ),
    Case(
        "space-unknown-top-key",
        _launch("--space", "{tmp}/unknown_key.yaml"),
        ("unknown top-level key 'searhc'",),
        ("expected description, objective, search",),
    ),
    Case(
        "space-unknown-hyperparameter",
        _launch("--space", "{tmp}/unknown_param.yaml"),
        ("search.learning_rat", "unknown hyperparameter"),
        ("known:", "learning_rate"),
    ),
    Case(
        "space-low-above-high",
        _launch("--space", "{tmp}/low_high.yaml"),
        ("search.focal_gamma", "low (2.0) is greater than high (1.5)"),
        (),
    ),
    Case(
        "space-log-low-not-positive",
        _launch("--space", "{tmp}/log_low.yaml"),
        ("search.kl_beta", "log range needs low > 0"),
        (),
    ),
    Case(
        "space-empty-choices",
        _launch("--space", "{tmp}/empty_choices.yaml"),
        ("search.coding_size.choices", "non-empty list"),
        (),
    ),
    Case(
        "space-wrong-type",
        _launch("--space", "{tmp}/wrong_type.yaml"),
        ("search.coding_size.type", "int"),
        ("use type: categorical",),
    ),
    Case(
        "space-unknown-type",
        _launch("--space", "{tmp}/unknown_type.yaml"),
        ("search.focal_gamma.type", "'normal'"),
        ("expected float, int or categorical",),
    ),
    Case(
        "space-bad-objective-metric",
        _launch("--space", "{tmp}/bad_metric.yaml"),
        ("objective metric 'expression.aucroc' does not exist",),
        ("sweep metrics",),
    ),
    # --- data file ---
    Case("data-missing", _launch("--data", "{tmp}/nope.npz"), ("nope.npz", "no such file"), ()),
    Case(
        "data-not-npz",
        _launch("--data", "{tmp}/not_npz.npz"),
        ("not_npz.npz", "not a readable .npz"),
        (),
    ),
    Case(
        "data-wrong-width",
        _launch("--data", "{tmp}/wrong_width.npz"),
        ("column count 13", "summing to 12"),
        (),
    ),
    Case(
        "data-not-binary",
        _launch("--data", "{tmp}/not_binary.npz"),
        ("other than 0/1", "e.g. 2"),
        ("expected binary data",),
    ),
    Case("data-nan", _launch("--data", "{tmp}/nan.npz"), ("NaN",), ("expected only 0/1",)),
    Case(
        "data-too-few-rows",
        _launch("--data", "{tmp}/few_rows.npz"),
        ("too few rows", "found 4"),
        ("needs at least",),
    ),
    Case(
        "data-one-class",
        _launch("--data", "{tmp}/one_class.npz"),
        ("one class", "'expressed'"),
        ("need both 0 and 1",),
    ),
    Case(
        "data-hash-differs",
        ("worker", "base", "--data", "{tmp}/other.npz"),
        ("other.npz", "SHA-256"),
        ("use the same file",),
        ("sqlite", "postgres"),
    ),
    # --- storage ---
    Case(
        "storage-malformed",
        ("status", "base", "--storage", "postgresql+psycopg//oops"),
        ("malformed storage URL",),
        ("expected e.g. sqlite:///sweep.db",),
    ),
    Case(
        "storage-unsupported-backend",
        ("status", "base", "--storage", "mysql://u:p@h/db"),
        ("unsupported storage backend 'mysql'",),
        ("use sqlite:/// or postgresql",),
    ),
    Case(
        "storage-unreachable-status",
        ("status", "base"),
        ("127.0.0.1", "port 1", "Connection refused"),
        ("u:***@",),
        storage=UNREACHABLE,
    ),
    Case(
        "storage-unreachable-launch",
        _launch(),
        ("127.0.0.1", "port 1", "Connection refused"),
        ("u:***@",),
        storage=UNREACHABLE,
    ),
    Case(
        "storage-wrong-password",
        ("status", "base"),
        ("password authentication failed",),
        (":***@",),
        storage="{wrong_password}",
    ),
    Case(
        "storage-sqlite-file-missing",
        ("status", "base", "--storage", "sqlite:///{tmp}/no.db"),
        ("no study database at",),
        ("launch a sweep first",),
    ),
    # --- study ---
    Case(
        "study-not-found",
        ("status", "nosuch"),
        ("no study named 'nosuch'",),
        ("studies", "base"),
        ("sqlite", "postgres"),
    ),
    Case(
        "study-not-found-resume",
        ("resume", "nosuch"),
        ("no study named 'nosuch'",),
        ("studies", "base"),
        ("sqlite", "postgres"),
    ),
    Case(
        "study-different-space",
        _launch("--study", "base", "--space", "{tmp}/other_space.yaml"),
        ("'base' already exists with a different search space",),
        ("--force-new",),
        ("sqlite", "postgres"),
    ),
    Case(
        "study-different-data",
        _launch("--study", "base", "--data", "{tmp}/other.npz"),
        ("'base' already exists with a different data",),
        ("--force-new",),
        ("sqlite", "postgres"),
    ),
    # --- command line ---
    Case(
        "cli-zero-budget",
        _launch("--n-trials", "0"),
        ("--n-trials", "at least 1", "got 0"),
        ("sweep launch --help",),
        ("sqlite", "postgres"),
    ),
    Case(
        "cli-negative-budget",
        _launch("--n-trials", "-3"),
        ("--n-trials", "got -3"),
        ("sweep launch --help",),
    ),
    Case(
        "cli-resume-zero-budget",
        ("resume", "base", "--n-trials", "0"),
        ("--n-trials", "got 0"),
        ("sweep resume --help",),
    ),
    Case(
        "cli-zero-workers",
        _launch("--workers", "0"),
        ("--workers", "got 0"),
        ("sweep launch --help",),
    ),
    Case(
        "cli-unknown-sampler",
        _launch("--sampler", "bayes"),
        ("'bayes' is not one of",),
        ("'tpe'",),
    ),
    Case("cli-missing-gpu", _launch("--gpus", "7"), ("--gpus 7",), ("leave out --gpus",)),
    Case(
        "cli-bad-gpu-list",
        _launch("--gpus", "0,x"),
        ("--gpus", "'0,x'"),
        ("GPU indices like 0,1",),
    ),
    Case(
        "cli-zero-trials-per-gpu",
        _launch("--gpus", "0", "--trials-per-gpu", "0"),
        ("--trials-per-gpu", "got 0"),
        ("sweep launch --help",),
    ),
    Case(
        "cli-zero-gpu-memory",
        _launch("--gpus", "0", "--gpu-memory-mb", "0"),
        ("--gpu-memory-mb", "got 0"),
        ("sweep launch --help",),
    ),
    Case(
        "cli-trials-per-gpu-without-gpus",
        _launch("--trials-per-gpu", "2"),
        ("--trials-per-gpu and --gpu-memory-mb need --gpus",),
        (),
    ),
    Case(
        "cli-unknown-set-name",
        _launch("--set", "learning_rat=0.1"),
        ("learning_rat",),
        ("learning_rate",),
    ),
    Case("cli-unknown-command", ("lanch",), ("No such command 'lanch'",), ("sweep --help",)),
]

SPACE_FILES = {
    "not_yaml.yaml": "objective: {metric: expression.auroc\nsearch: [\n",
    "unknown_key.yaml": "objective: {metric: expression.auroc, direction: maximize}\nsearhc: {}\n",
    "unknown_param.yaml": "objective: {metric: expression.auroc, direction: maximize}\n"
    "search:\n  learning_rat: {type: float, low: 0.001, high: 0.01}\n",
    "low_high.yaml": "objective: {metric: expression.auroc, direction: maximize}\n"
    "search:\n  focal_gamma: {type: float, low: 2.0, high: 1.5}\n",
    "log_low.yaml": "objective: {metric: expression.auroc, direction: maximize}\n"
    "search:\n  kl_beta: {type: float, low: 0.0, high: 0.01, log: true}\n",
    "empty_choices.yaml": "objective: {metric: expression.auroc, direction: maximize}\n"
    "search:\n  coding_size: {type: categorical, choices: []}\n",
    "wrong_type.yaml": "objective: {metric: expression.auroc, direction: maximize}\n"
    "search:\n  coding_size: {type: float, low: 2.0, high: 8.0}\n",
    "unknown_type.yaml": "objective: {metric: expression.auroc, direction: maximize}\n"
    "search:\n  focal_gamma: {type: normal, low: 1.5, high: 2.0}\n",
    "bad_metric.yaml": "objective: {metric: expression.aucroc, direction: maximize}\n"
    "search:\n  focal_gamma: {type: float, low: 1.5, high: 2.0}\n",
}


def _small_npz(path: Path, X: np.ndarray, widths: tuple[int, ...] = (12, 1)) -> None:
    names = [f"mark{i}" for i in range(len(widths) - 1)] + ["expressed"]
    np.savez(path, X=X, sections=np.array(names), section_widths=np.array(widths))


def _write_bad_files(tmp: Path) -> None:
    for name, text in SPACE_FILES.items():
        (tmp / name).write_text(text)
    other = TINY_SPACE.read_text().replace("choices: [4, 8]", "choices: [4, 16]")
    assert other != TINY_SPACE.read_text()
    (tmp / "other_space.yaml").write_text(other)
    (tmp / "not_npz.npz").write_text("gene,mark\nA,1\n")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(60, 13), dtype=np.uint8)
    _small_npz(tmp / "wrong_width.npz", X, widths=(11, 1))
    not_binary = X.copy()
    not_binary[3, 4] = 2
    _small_npz(tmp / "not_binary.npz", not_binary)
    nan = X.astype(np.float32)
    nan[5, 2] = np.nan
    _small_npz(tmp / "nan.npz", nan)
    _small_npz(tmp / "few_rows.npz", np.array([[0] * 12 + [1], [1] * 12 + [0]] * 2, np.uint8))
    one_class = X.copy()
    one_class[:, -1] = 0
    _small_npz(tmp / "one_class.npz", one_class)
    from sweep.train.synth import write_synthetic

    write_synthetic(tmp / "other.npz", 240, seed=1)


# --- storages holding a finished one-trial study ---------------------------------------------


def _postgres_database() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def _run(args: list[str], storage: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A real process (several run at once), reporting any TensorFlow/Keras import."""
    return run_sweep(*args, storage=storage, cwd=cwd, report_heavy_imports=True, timeout=120)


@dataclass
class Batch:
    url: str
    results: dict[str, subprocess.CompletedProcess[str]]
    before: dict[str, Any]
    after: dict[str, Any]
    files_before: list[str]
    files_after: list[str]
    secrets: tuple[str, ...]


def _run_batch(backend: str, url: str, tmp: Path, data: Path) -> Batch:
    launched = _run(
        [
            "launch",
            "--space",
            str(TINY_SPACE),
            "--data",
            str(data),
            "--study",
            "base",
            "--n-trials",
            "1",
            "--set",
            "epochs=1",
            "--sampler",
            "random",
        ],
        url,
        tmp,
    )
    assert launched.returncode == 0, launched.stderr
    secrets = ["unreachable-Secret-1", WRONG_PASSWORD]
    from sqlalchemy.engine import make_url

    for candidate in (url, os.environ.get(POSTGRES_ENV)):
        password = make_url(candidate).password if candidate else None
        if password:
            secrets.append(str(password))
    wrong = ""
    if os.environ.get(POSTGRES_ENV):
        wrong = make_url(os.environ[POSTGRES_ENV]).set(password=WRONG_PASSWORD)
        wrong = wrong.render_as_string(hide_password=False)
    values = {"tiny": str(TINY_SPACE), "data": str(data), "tmp": str(tmp), "wrong_password": wrong}
    jobs = {}
    for case in CASES:
        if backend not in case.backends:
            continue
        storage = case.storage.format(**values) if case.storage else url
        if not storage:
            continue
        jobs[case.id] = ([a.format(**values) for a in case.args], storage)
    files_before = sorted(p.name for p in tmp.iterdir())
    before = dump(url)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(_run, args, url, tmp) for key, (args, url) in jobs.items()}
        results = {key: future.result() for key, future in futures.items()}
    return Batch(
        url,
        results,
        before,
        dump(url),
        files_before,
        sorted(p.name for p in tmp.iterdir()),
        tuple(secrets),
    )


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory, synthetic_npz: Path) -> Iterator[dict]:
    """Run every case once per backend (lazily, on first use) and keep the results."""
    made: dict[str, Batch] = {}
    cleanups: list[Iterator[str]] = []

    def get(backend: str) -> Batch:
        if backend not in made:
            tmp = tmp_path_factory.mktemp(f"bad-{backend}")
            _write_bad_files(tmp)
            if backend == "sqlite":
                url = f"sqlite:///{tmp / 'study.db'}"
            else:
                generator = _postgres_database()
                url = next(generator)
                cleanups.append(generator)
            made[backend] = _run_batch(backend, url, tmp, synthetic_npz)
        return made[backend]

    yield get  # type: ignore[misc]
    for generator in cleanups:
        for _ in generator:
            pass


PARAMS = [
    pytest.param(case, backend, id=f"{case.id}-{backend}")
    for case in CASES
    for backend in case.backends
]


@pytest.mark.parametrize(("case", "backend"), PARAMS)
def test_bad_input(case: Case, backend: str, batches: Any) -> None:
    if case.storage == "{wrong_password}" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(f"needs {POSTGRES_ENV}")
    batch: Batch = batches(backend)
    result = batch.results[case.id]
    lines = result.stderr.strip().splitlines()
    shown = f"exit {result.returncode}, stderr:\n{result.stderr}\nstdout:\n{result.stdout}"
    assert result.returncode != 0, shown
    assert len(lines) == 1, shown
    line = lines[0]
    assert "Traceback" not in result.stderr, shown
    assert line.startswith("Error: "), shown
    assert "internal error" not in line, shown
    for fragment in (*case.problem, *case.fix):
        assert fragment in line, f"{fragment!r} missing from: {line}"
    for secret in batch.secrets:
        assert secret not in result.stderr + result.stdout, f"password leaked: {line}"
    assert not result.stdout.strip(), shown


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_bad_input_changes_nothing(backend: str, batches: Any) -> None:
    batch: Batch = batches(backend)
    assert batch.before["studies"], "the base study should be there"
    assert [r[0] for r in batch.before["trials"]], "the base study has a finished trial"
    assert batch.after == batch.before
    assert batch.files_after == batch.files_before


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = _run(
        ["--debug", "status", "x", "--storage", f"sqlite:///{tmp_path}/no.db"],
        "",
        tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: no study database at")
    assert not (tmp_path / "no.db").exists()


def test_force_new_creates_a_study_beside_the_old_one(tmp_path: Path, synthetic_npz: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = [
        "launch",
        "--no-run",
        "--space",
        str(TINY_SPACE),
        "--data",
        str(synthetic_npz),
        "--study",
        "base",
        "--n-trials",
        "1",
        "--set",
        "epochs=1",
    ]
    assert _run(args, url, tmp_path).returncode == 0
    other = tmp_path / "other_space.yaml"
    other.write_text(TINY_SPACE.read_text().replace("choices: [4, 8]", "choices: [4, 16]"))
    args[args.index(str(TINY_SPACE))] = str(other)
    refused = _run(args, url, tmp_path)
    assert refused.returncode == 1 and "--force-new" in refused.stderr
    forced = _run([*args, "--force-new"], url, tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == "base-2"
