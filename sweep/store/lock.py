"""The budget lock: one storage-wide lock per study, held while a worker claims a trial slot."""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from sweep.store.rdb import retrying_call
from sweep.store.urls import sqlite_path

if TYPE_CHECKING:
    import optuna


@contextlib.contextmanager
def budget_lock(storage: optuna.storages.RDBStorage, study_name: str) -> Iterator[None]:
    """Hold a storage-wide lock for one study while a worker claims a trial slot.

    PostgreSQL: a session-level advisory lock. SQLite: an ``fcntl`` lock on a file beside the
    database (SQLite studies are local, so every worker shares that file system). The lock is
    held only between counting the study's trials and creating the next one, so the budget is
    exact across workers.
    """
    engine = storage.engine
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        key = zlib.crc32(f"sweep:{study_name}".encode()) & 0x7FFFFFFF

        def lock() -> Any:
            connection = engine.connect()
            try:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                connection.commit()
            except BaseException:
                connection.close()
                raise
            return connection

        connection = retrying_call(storage, lock)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a lost connection has released it anyway
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
            connection.close()
    else:
        path = sqlite_path(engine.url)
        lock_path = f"{path}.lock" if path else None
        if lock_path is None:
            yield
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
