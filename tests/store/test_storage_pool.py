"""A PostgreSQL storage keeps no idle connection, however many threads used it (db_scale)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from sweep.store.rdb import open_storage


def _connections(url: str) -> int:
    """Other sessions connected to this test's database right now."""
    admin = create_engine(url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalar_one()
            )
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_threads_do_not_leave_idle_connections_behind(postgres_url: str) -> None:
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    storage = open_storage(postgres_url)
    engine = storage.engine
    barrier = threading.Barrier(4)
    during: list[int] = []

    def use() -> None:
        with engine.connect():
            barrier.wait(timeout=30)  # all four connections open at once
            if threading.current_thread() is threads[0]:
                during.append(_connections(url))
            barrier.wait(timeout=30)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert during == [4]  # the check sees them while they are open...
    assert _connections(url) == 0  # ...and none stays open once returned
    engine.dispose()
