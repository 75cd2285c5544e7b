"""Workers behind PgBouncer in transaction mode (``docker/pooler.sh``), on the test server.

The budget lock is a transaction-level advisory lock whose waiters poll without a transaction,
so it excludes across pooled server connections and a waiter never pins one; statements are
never prepared, so a client's next statement may run on any server connection.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sweep.errors import StorageError
from sweep.store.lock import budget_lock
from sweep.store.rdb import IDLE_CONNECTIONS_ENV
from sweep.store.rdb import idle_connections
from sweep.store.rdb import open_storage
from tests.support.cli import TINY_SPACE
from tests.support.cli import run_sweep
from tests.support.pooler import pgbouncer


class _ServerConnections:
    """Peak server connections the pooler holds for one database (its ``SHOW POOLS``)."""

    def __init__(self, pooled_url: str) -> None:
        url = make_url(pooled_url)
        self._database = url.database
        self._conninfo = (
            f"host={url.host} port={url.port} user={url.username} password={url.password} "
            "dbname=pgbouncer"
        )
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        # The admin console speaks the simple query protocol only: a client-side cursor.
        with psycopg.connect(
            self._conninfo, autocommit=True, cursor_factory=psycopg.ClientCursor
        ) as conn:
            while not self._stop.wait(0.05):
                cursor = conn.execute("SHOW POOLS")
                names = [d.name for d in cursor.description or []]
                for row in cursor.fetchall():
                    pool = dict(zip(names, row, strict=True))
                    if pool["database"] == self._database:
                        servers = sum(int(v) for k, v in pool.items() if k.startswith("sv_"))
                        self.peak = max(self.peak, servers)
                self.samples += 1

    def __enter__(self) -> _ServerConnections:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.mark.postgres
def test_the_budget_lock_excludes_through_the_pooler_and_waiters_pin_no_server_connection(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IDLE_CONNECTIONS_ENV, "1")
    with pgbouncer(postgres_url, server_connections=2) as pooled:
        holder, waiter, other = (open_storage(pooled) for _ in range(3))
        got = threading.Event()

        def wait_for_lock() -> None:
            with budget_lock(waiter, "s"):
                got.set()

        with budget_lock(holder, "s") as conn:
            assert conn is not None
            assert conn.execute(text("SELECT 1")).scalar_one() == 1  # reads under the lock
            thread = threading.Thread(target=wait_for_lock, daemon=True)
            thread.start()
            time.sleep(1.0)
            assert not got.is_set(), "a second client took the lock while it was held"
            # The holder pins one of the two server connections; the waiter must leave the other
            # free, or a holder's own insert (made on another connection) would wait forever.
            with other.engine.connect() as free:
                assert free.execute(text("SELECT 2")).scalar_one() == 2
            with budget_lock(other, "another study"):  # another study's lock is independent
                pass
        thread.join(15)
        assert got.is_set(), "the waiter never got the lock after it was released"
        for storage in (holder, waiter, other):
            storage.engine.dispose()


@pytest.mark.postgres
def test_workers_behind_the_pooler_keep_the_budget_exact_on_two_server_connections(
    postgres_url: str, synthetic_npz: Path
) -> None:
    with pgbouncer(postgres_url, server_connections=2) as pooled:
        with _ServerConnections(pooled) as server:
            done = run_sweep(
                "launch", "--space", str(TINY_SPACE), "--data", str(synthetic_npz),
                "--study", "pooled", "--n-trials", "6", "--workers", "3", "--pruner", "none",
                "--reference", "none",
                storage=pooled, env={IDLE_CONNECTIONS_ENV: "1"}, process=True, timeout=600,
            )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        # The read-only commands through the pooler too (their engine prepares nothing either).
        for command in (("trials", "pooled", "--format", "json"), ("best", "pooled")):
            read = run_sweep(*command, storage=pooled, process=True, timeout=120)
            assert read.returncode == 0, read.stderr[-2000:]
        trials = optuna.load_study(study_name="pooled", storage=postgres_url).get_trials()
        states = sorted(t.state.name for t in trials)
        assert states == ["COMPLETE"] * 6, states
        assert sorted(t.number for t in trials) == list(range(6))
        # Every worker's storage calls, heartbeats and budget claims shared two server
        # connections (the pooler's count: a replaced one may still be exiting on the server).
        assert server.samples > 100
        assert 1 <= server.peak <= 2, server.peak


@pytest.mark.parametrize("value", ["x", "-1", "65", "1.5"])
def test_a_bad_idle_connection_count_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(IDLE_CONNECTIONS_ENV, value)
    with pytest.raises(StorageError, match=f"^{IDLE_CONNECTIONS_ENV}=.*whole number 0-64$"):
        idle_connections()


def test_the_idle_connection_count_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(IDLE_CONNECTIONS_ENV, raising=False)
    assert idle_connections() == 0
    monkeypatch.setenv(IDLE_CONNECTIONS_ENV, " 2 ")
    assert idle_connections() == 2
