"""The budget lock: one storage-wide lock per study, held while a worker claims a trial slot.

Locks of different studies are independent, on both backends: PostgreSQL takes a
transaction-level advisory lock keyed by the study name (so it also holds through a pooler in
transaction mode, such as PgBouncer); SQLite locks one byte, at an offset keyed by the study
name, of the file ``<database>.lock`` beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import struct
import time
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from sweep.store.rdb import retrying_call
from sweep.store.urls import sqlite_path

#: The first and the longest pause between two tries of a waiting PostgreSQL claim. Holds last
#: tens of milliseconds (benchmarks/db_scale.py), so a waiter retries a few times per hold.
LOCK_POLL_MIN_S = 0.005
LOCK_POLL_MAX_S = 0.1

if TYPE_CHECKING:
    import optuna
    from sqlalchemy.engine import Connection


@contextlib.contextmanager
def budget_lock(
    storage: optuna.storages.RDBStorage, study_name: str
) -> Iterator[Connection | None]:
    """Hold a storage-wide lock for one study while a worker claims a trial slot.

    PostgreSQL: a transaction-level advisory lock (``pg_try_advisory_xact_lock``), held by a
    transaction left open on its own connection until the lock is released. It holds through a
    pooler in transaction mode (PgBouncer hands a server connection to another client at each
    commit, so a session-level lock would leak to it), and a lost connection aborts the
    transaction, which frees the lock. Waiters poll instead of blocking in a query, with no
    transaction open between tries: behind a pooler a blocked waiter would pin a server
    connection, and enough of them would leave the holder none to insert its trial with.
    SQLite: an open-file-description lock on one byte of a file beside the database (SQLite
    studies are local, so every worker shares that file system). The lock is held only between
    counting the study's trials and creating the next one, so the budget is exact across
    workers. It waits until the lock is free.

    Yields:
        PostgreSQL: the connection that holds the lock, for reads made under it (no second
        connection to open while others wait). Its transaction *is* the lock: never commit or
        roll back on it; the release does. SQLite: ``None``.
    """
    engine = storage.engine
    key = _lock_key(study_name)
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

        try_lock = text("SELECT pg_try_advisory_xact_lock(:k)")

        def lock() -> Any:
            connection = engine.connect()
            try:
                pause = LOCK_POLL_MIN_S
                while not connection.execute(try_lock, {"k": key}).scalar_one():
                    connection.rollback()  # no transaction, so no server connection, meanwhile
                    time.sleep(random.uniform(pause / 2, pause))
                    pause = min(pause * 1.5, LOCK_POLL_MAX_S)
            except BaseException:
                connection.close()
                raise
            return connection

        connection = retrying_call(storage, lock)
        try:
            yield connection
        finally:
            try:
                connection.rollback()  # ends the transaction, so releases the lock
            except Exception:  # a lost connection has released it anyway; a live one must go
                with contextlib.suppress(Exception):
                    connection.invalidate()  # never back to a pool still holding the lock
            connection.close()
    else:
        path = sqlite_path(engine.url)
        lock_path = f"{path}.lock" if path else None
        if lock_path is None:
            yield None
            return
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock_byte(fd, key)
            yield None
        finally:
            os.close(fd)  # releases the lock


def _lock_key(study_name: str) -> int:
    """A non-negative 31-bit key for ``study_name`` (advisory-lock key, byte offset)."""
    return zlib.crc32(f"sweep:{study_name}".encode()) & 0x7FFFFFFF


def _lock_byte(fd: int, offset: int) -> None:
    """Wait for an exclusive lock on byte ``offset`` of ``fd``'s file.

    Linux: an open-file-description lock, owned by ``fd`` like ``flock`` (two descriptors
    exclude each other even in one process) and released when ``fd`` is closed. Elsewhere: a
    POSIX record lock, owned by the process (a worker holds one claim at a time).
    """
    command = getattr(fcntl, "F_OFD_SETLKW", None)
    if command is None:
        fcntl.lockf(fd, fcntl.LOCK_EX, 1, offset)
        return
    # struct flock {short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid;}
    request = struct.pack("@hhqqi", fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    fcntl.fcntl(fd, command, request + bytes(8))
