"""The budget lock: one storage-wide lock per study, held while a worker claims a trial slot.

Locks of different studies are independent, on both backends: PostgreSQL takes an advisory
lock keyed by the study name; SQLite locks one byte, at an offset keyed by the study name, of
the file ``<database>.lock`` beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from sweep.store.rdb import retrying_call
from sweep.store.urls import sqlite_path

if TYPE_CHECKING:
    import optuna
    from sqlalchemy.engine import Connection


@contextlib.contextmanager
def budget_lock(
    storage: optuna.storages.RDBStorage, study_name: str
) -> Iterator[Connection | None]:
    """Hold a storage-wide lock for one study while a worker claims a trial slot.

    PostgreSQL: a session-level advisory lock. SQLite: an open-file-description lock on one
    byte of a file beside the database (SQLite studies are local, so every worker shares that
    file system). The lock is held only between counting the study's trials and creating the
    next one, so the budget is exact across workers. It blocks until the lock is free.

    Yields:
        PostgreSQL: the connection that holds the lock, for queries made under it (no second
        connection to open while others wait; end each transaction on it). SQLite: ``None``.
    """
    engine = storage.engine
    key = _lock_key(study_name)
    if engine.dialect.name == "postgresql":
        from sqlalchemy import text

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
            yield connection
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
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
