"""A PostgreSQL storage keeps one idle connection, however many threads used it (db_scale)."""

from __future__ import annotations

import threading

import pytest

from sweep.store.rdb import open_storage


@pytest.mark.postgres
def test_threads_do_not_leave_idle_connections_behind(postgres_url: str) -> None:
    storage = open_storage(postgres_url)
    engine = storage.engine
    barrier = threading.Barrier(4)

    def use() -> None:
        with engine.connect():
            barrier.wait(timeout=30)  # all four connections open at once

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert engine.pool.checkedout() == 0
    assert engine.pool.checkedin() == 1  # the others closed when returned
    engine.dispose()
