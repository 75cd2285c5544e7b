"""The budget lock (:mod:`sweep.store.lock`) across processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
import time
from typing import Any

from sweep.store.lock import budget_lock
from sweep.store.rdb import open_storage

SPAWN = multiprocessing.get_context("spawn")


def _hold_lock(
    url: str,
    study: str,
    started: multiprocessing.synchronize.Event,
    release: multiprocessing.synchronize.Event,
    seconds: float,
) -> None:
    """Hold ``study``'s lock until ``release`` is set (at most ``seconds``)."""
    storage = open_storage(url)
    with budget_lock(storage, study):
        started.set()
        release.wait(seconds)


def _holder(url: str, study: str, seconds: float) -> tuple[multiprocessing.Process, Any]:
    started = SPAWN.Event()
    release = SPAWN.Event()
    holder = SPAWN.Process(target=_hold_lock, args=(url, study, started, release, seconds))
    holder.start()
    assert started.wait(60), "the holder never took the lock"
    return holder, release


class _Taker:
    """Take ``study``'s lock in a thread of this process; keep it until :meth:`let_go`."""

    def __init__(self, url: str, study: str) -> None:
        self.acquired = threading.Event()
        self._let_go = threading.Event()
        storage = open_storage(url)
        self._thread = threading.Thread(target=self._run, args=(storage, study), daemon=True)
        self._thread.start()

    def _run(self, storage: Any, study: str) -> None:
        with budget_lock(storage, study):
            self.acquired.set()
            self._let_go.wait(60)

    def let_go(self) -> None:
        self._let_go.set()
        self._thread.join(30)
        assert not self._thread.is_alive()


def test_budget_lock_excludes_other_processes(storage_url: str) -> None:
    open_storage(storage_url, create=True)
    holder, release = _holder(storage_url, "study", seconds=2.0)
    waited = time.perf_counter()
    with budget_lock(open_storage(storage_url), "study"):
        waited = time.perf_counter() - waited
    holder.join(30)
    assert waited > 1.0


def test_a_different_studys_lock_is_independent(storage_url: str) -> None:
    open_storage(storage_url, create=True)
    holder, release = _holder(storage_url, "study-a", seconds=60.0)
    try:
        # Study B's lock is free while another process holds study A's...
        b = _Taker(storage_url, "study-b")
        assert b.acquired.wait(15), "study B's lock waited for study A's holder"
        # ...and while both are held, study A's lock still blocks a third taker.
        a = _Taker(storage_url, "study-a")
        assert not a.acquired.wait(1.5), "study A's lock was taken twice"
        assert holder.is_alive()
        release.set()
        assert a.acquired.wait(30), "study A's lock was not handed on after its release"
        a.let_go()
        b.let_go()
    finally:
        release.set()
        holder.join(30)
    assert holder.exitcode == 0
