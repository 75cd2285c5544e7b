"""Security: passwords never printed, no unsafe YAML or pickle, private files.

* Every command (launch, resume, worker, status, best, trials, studies) runs with a storage URL
  that holds a password, given by ``--storage`` and by ``SWEEP_STORAGE``, against a reachable
  PostgreSQL and an unreachable one, with ``-v`` and ``--debug``: the password appears neither
  on stdout nor on stderr, nor on a worker process's command line.
* YAML is read with the safe loader: a ``!!python/...`` tag is refused with SpaceError and
  never executed.
* Nothing is unpickled: an ``.npz`` holding an object array is refused with DataError and the
  object's ``__reduce__`` never runs.
* Files the service writes (the SQLite database, its lock file, the artifacts folder and its
  files) are private to the user (``mode & 0o077 == 0``), even under a permissive umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil
import pytest

from sweep.errors import DataError
from sweep.errors import SpaceError
from sweep.space import load_space
from sweep.train.data import load_dataset
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.cli import sweep_argv
from tests.support.cli import sweep_env
from tests.support.postgres import fresh_postgres_database

POSTGRES_ENV = "SWEEP_TEST_POSTGRES_URL"
UNREACHABLE_PASSWORD = "Unreach-Pw-7391"
UNREACHABLE = f"postgresql+psycopg://sweeper:{UNREACHABLE_PASSWORD}@127.0.0.1:1/sweep"


def _sweep(
    args: list[str], storage_env: str | None, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """A real process: what it prints, and its children's command lines, are what is checked."""
    return run_sweep(*args, storage=storage_env, cwd=cwd, process=True, timeout=timeout)


@pytest.fixture(scope="module")
def pg_study(tmp_path_factory: pytest.TempPathFactory, synthetic_npz: Path) -> Iterator[str]:
    """A fresh password-protected PostgreSQL database (the tests create study ``sec`` in it)."""
    from sqlalchemy.engine import make_url

    with fresh_postgres_database() as url:
        assert make_url(url).password, "the test server must use password authentication"
        yield url


def _commands(data: Path) -> list[list[str]]:
    launch = [
        "launch",
        "--space",
        str(TINY_SPACE),
        "--data",
        str(data),
        "--study",
        "sec",
        "--n-trials",
        "1",
        "--set",
        "epochs=1",
        "--sampler",
        "random",
    ]
    return [
        launch,
        ["resume", "sec"],
        ["resume", "sec", "--n-trials", "1"],
        ["worker", "sec", "--wait-for-db", "2"],
        ["status", "sec"],
        ["status", "sec", "--format", "json"],
        ["best", "sec"],
        ["trials", "sec", "--format", "csv"],
        ["studies"],
        ["status", "no-such-study"],
    ]


def _variants(url: str, data: Path) -> list[tuple[list[str], str | None]]:
    """Each command with the URL on the command line and in SWEEP_STORAGE, -v and --debug."""
    out: list[tuple[list[str], str | None]] = []
    for command in _commands(data):
        out.append(([*command, "--storage", url], None))
        out.append((["--debug", *command, "--storage", url], None))
        out.append((["-v", *command], url))
    return out


def _check_no_password(
    results: list[tuple[list[str], subprocess.CompletedProcess[str]]], password: str
) -> None:
    assert password
    for args, result in results:
        text = result.stdout + result.stderr
        assert password not in text, f"`sweep {' '.join(args)}` printed the password:\n{text}"


def test_reachable_postgres_never_prints_the_password(
    pg_study: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    password = str(make_url(pg_study).password)
    # the first launch runs the one trial (with debug logging), the rest find it finished
    first = _sweep(["-v", *_commands(synthetic_npz)[0]], pg_study, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "***@" in first.stderr  # the masked URL is what gets logged
    jobs = _variants(pg_study, synthetic_npz)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: (job[0], _sweep(job[0], job[1], tmp_path)), jobs))
    _check_no_password([(["-v", "launch"], first), *results], password)
    codes = {" ".join(a): r.returncode for a, r in results}
    assert codes[f"status sec --storage {pg_study}"] == 0
    assert codes["-v status sec"] == 0
    assert codes[f"worker sec --wait-for-db 2 --storage {pg_study}"] == 0
    assert codes[f"resume sec --storage {pg_study}"] == 0  # already complete: nothing to do


def test_unreachable_postgres_never_prints_the_password(
    synthetic_npz: Path, tmp_path: Path
) -> None:
    jobs = _variants(UNREACHABLE, synthetic_npz)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: (job[0], _sweep(job[0], job[1], tmp_path, 120)), jobs))
    _check_no_password(results, UNREACHABLE_PASSWORD)
    for args, result in results:
        assert result.returncode == 1, (args, result.stderr)
        assert "sweeper:***@127.0.0.1:1" in result.stderr, (args, result.stderr)


def test_wrong_password_is_not_printed(synthetic_npz: Path, tmp_path: Path) -> None:
    from sqlalchemy.engine import make_url

    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"needs {POSTGRES_ENV}")
    right = str(make_url(base).password)
    wrong = make_url(base).set(password="Wrong-Pw-5521").render_as_string(hide_password=False)
    for args, storage in _variants(wrong, synthetic_npz)[::4]:
        result = _sweep(args, storage, tmp_path, 120)
        assert result.returncode == 1
        for secret in ("Wrong-Pw-5521", right):
            assert secret not in result.stdout + result.stderr, result.stderr


def test_worker_processes_get_the_url_from_the_environment(
    pg_study: str, synthetic_npz: Path, tmp_path: Path
) -> None:
    from sqlalchemy.engine import make_url

    password = str(make_url(pg_study).password)
    launch = subprocess.Popen(
        sweep_argv(
            "launch",
            "--space",
            str(TINY_SPACE),
            "--data",
            str(synthetic_npz),
            "--study",
            "sec",
            "--n-trials",
            "1",
            "--set",
            "epochs=1",
            "--sampler",
            "random",
            "--workers",
            "2",
            "--storage",
            pg_study,
        ),
        env=sweep_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[str] = []
    try:
        # launch itself got the URL on its command line (this test's point is its children); a
        # child caught between fork and exec still shows launch's command line, so skip those.
        own = " ".join(str(arg) for arg in launch.args)
        while launch.poll() is None:
            try:
                for child in psutil.Process(launch.pid).children(recursive=True):
                    line = " ".join(child.cmdline())
                    if line != own:
                        seen.append(line)
            except psutil.Error:
                pass
            time.sleep(0.02)
        out, err = launch.communicate(timeout=60)
    finally:
        if launch.poll() is None:
            launch.kill()
    assert launch.returncode == 0, err
    workers = [c for c in seen if " worker sec" in c]
    assert workers, "no worker process was seen"
    assert not [c for c in seen if password in c]
    assert password not in out + err


# --- YAML and pickle --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "search: !!python/object/apply:os.system ['touch {marker}']\n",
        "search: !!python/object/apply:subprocess.call [['touch', '{marker}']]\n",
        "objective: !!python/object/new:pathlib.Path ['{marker}']\n",
        "!!python/name:os.system\n",
    ],
)
def test_yaml_python_tags_are_refused(payload: str, tmp_path: Path, synthetic_npz: Path) -> None:
    marker = tmp_path / "pwned"
    space = tmp_path / "evil.yaml"
    space.write_text(payload.format(marker=marker))
    with pytest.raises(SpaceError):
        load_space(space)
    result = _sweep(
        [
            "launch",
            "--space",
            str(space),
            "--data",
            str(synthetic_npz),
            "--storage",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        None,
        tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: search-space file")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not marker.exists(), "a YAML tag ran code"
    assert not (tmp_path / "x.db").exists()


class _Pwn:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (Path(self.marker), "pwned"))  # type: ignore[return-value]


@pytest.mark.parametrize("key", ["X", "sections", "X_train"])
def test_npz_object_arrays_are_refused_unread(key: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = np.empty(2, dtype=object)
    evil[0] = _Pwn(str(marker))
    evil[1] = 1
    rows = np.zeros((40, 3), dtype=np.uint8)
    rows[::2, -1] = 1
    contents = {
        "X": rows,
        "sections": np.array(["m", "expressed"]),
        "section_widths": np.array([2, 1]),
    }
    if key == "X_train":
        contents = {"X_train": rows, "X_val": rows}
    contents[key] = evil
    path = tmp_path / "evil.npz"
    np.savez(path, **contents)
    with pytest.raises(DataError, match="evil.npz"):
        load_dataset(path)
    assert not marker.exists(), "an object array was unpickled"


# --- file modes -------------------------------------------------------------------------------


def test_files_written_by_a_sweep_are_private(tmp_path: Path, synthetic_npz: Path) -> None:
    db = tmp_path / "sweep.db"
    result = subprocess.run(  # a process of its own: the umask below must not touch pytest's
        sweep_argv(
            "launch",
            "--space",
            str(TINY_SPACE),
            "--data",
            str(synthetic_npz),
            "--study",
            "modes",
            "--n-trials",
            "1",
            "--set",
            "epochs=1",
            "--storage",
            f"sqlite:///{db}",
        ),
        env=sweep_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=lambda: os.umask(0o002),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = [p for p in tmp_path.iterdir() if p.name.startswith("sweep.db")]
    names = {p.name for p in written}
    assert {"sweep.db", "sweep.db.lock", "sweep.db.artifacts"} <= names, names
    assert list((tmp_path / "sweep.db.artifacts").iterdir()), "no artifact was written"
    # (files inside the artifacts folder follow the umask; the folder's 0o700 keeps them private)
    loose = {
        p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written if p.stat().st_mode & 0o077
    }
    assert not loose, f"readable by others: {loose}"
