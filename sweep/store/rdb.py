"""Opening the study database: Optuna's RDB storage with heartbeats, reconnects and retries.

URLs and masking are in :mod:`sweep.store.urls`; what a sweep stores in a study is in
:mod:`sweep.store.study`; the Optuna internals this module relies on (the private methods it
wraps, the schema-version check run before a database is opened) are in
:mod:`sweep.store._optuna_schema`. Passwords never leave this module unmasked: every message
carries :func:`~sweep.store.urls.mask_url` output, and driver errors are scrubbed of the URL
before they are re-raised. This module never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import TypeVar

from sweep.config import RECONNECT_TIMEOUT_S
from sweep.config import Heartbeat
from sweep.errors import StorageError
from sweep.store._optuna_schema import CREATE_METHOD
from sweep.store._optuna_schema import HEARTBEAT_METHOD
from sweep.store._optuna_schema import PREPARE_TRIAL_METHOD
from sweep.store._optuna_schema import RETRIED_METHODS
from sweep.store._optuna_schema import SCHEMA_RACE_MESSAGES
from sweep.store._optuna_schema import STATE_METHOD
from sweep.store._optuna_schema import add_first_heartbeat
from sweep.store._optuna_schema import check_schema
from sweep.store._optuna_schema import claim_token
from sweep.store._optuna_schema import claimed_trial
from sweep.store._optuna_schema import with_claim_token
from sweep.store._optuna_schema import write_user_attrs
from sweep.store.urls import mask_url
from sweep.store.urls import parse_url
from sweep.store.urls import scrub
from sweep.store.urls import sqlite_path

if TYPE_CHECKING:
    import optuna
    from sqlalchemy.engine import URL
    from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_S = 60.0
POSTGRES_CONNECT_TIMEOUT_S = 10
#: Idle PostgreSQL connections a storage keeps for its next call (0: none, each call connects
#: afresh). Every thread of a process shares them; more at once open extra ones, closed after.
#: Set by :data:`IDLE_CONNECTIONS_ENV`; keep 0 against a server, 1 behind a pooler.
POSTGRES_IDLE_CONNECTIONS = 0
#: The environment variable that overrides :data:`POSTGRES_IDLE_CONNECTIONS`. Behind PgBouncer
#: in transaction mode an idle client connection costs the server nothing, and reusing it saves
#: a connection start (and its authentication) per storage call.
IDLE_CONNECTIONS_ENV = "SWEEP_DB_IDLE_CONNECTIONS"
#: The longest pause between two attempts of a retried call (shorter with a shorter heartbeat
#: interval: see :func:`sweep.config.max_reconnect_timeout`).
RETRY_PAUSE_MAX_S = 5.0

_logger = logging.getLogger(__name__)
T = TypeVar("T")


def open_storage(
    url: str,
    *,
    heartbeat: Heartbeat | None = None,
    create: bool = False,
    reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
) -> optuna.storages.RDBStorage:
    """Open Optuna's RDB storage with pre-ping, reconnect retries and optional heartbeats.

    Args:
        url: Storage URL (unmasked; it is never printed).
        heartbeat: Enables Optuna heartbeats and retries of stale trials (workers need it;
            read-only commands do not).
        create: Allow creating a new SQLite file. Without it a missing file is an error, so a
            typo never leaves an empty database behind.
        reconnect_timeout_s: How long storage calls keep retrying a lost connection.

    Raises:
        SchemaVersionError: the database holds an Optuna schema sweep does not support
            (checked before anything is written to it).
        StorageError: when the database cannot be reached or used (message masked).
    """
    parsed = parse_url(url)
    _check_sqlite_file(parsed, create=create)
    _check_stored_schema(parsed)
    from sqlalchemy.pool import NullPool

    # No pool by default: a connection lives for one storage call (or one budget-lock hold) and
    # is closed after it. A pool keeps one idle connection per thread that used it (a worker's
    # main thread, budget lock, heartbeat and stale-trial threads), so 64 workers exhausted
    # PostgreSQL's default max_connections (100); benchmarks/db_scale.py measures both. Behind a
    # pooler, idle client connections cost the server nothing: SWEEP_DB_IDLE_CONNECTIONS=1.
    engine_kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "poolclass": NullPool,
        "connect_args": _connect_args(parsed),
    }
    if parsed.get_backend_name() != "sqlite":
        idle = idle_connections()
        if idle > 0:
            from sqlalchemy.pool import QueuePool

            engine_kwargs.update(poolclass=QueuePool, pool_size=idle, max_overflow=-1)
    # Optuna's own schema check is skipped: _check_stored_schema made the same check (and a
    # stricter one) above, and Optuna's opens a second connection inside an open transaction,
    # which deadlocks workers that start together behind a pooler with few server connections.
    kwargs: dict[str, Any] = {"engine_kwargs": engine_kwargs, "skip_compatibility_check": True}
    if heartbeat is not None:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        kwargs.update(
            heartbeat_interval=heartbeat.interval_s,
            grace_period=heartbeat.grace_period_s,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=heartbeat.max_retry
            ),
        )
    storage_cls = _reconnecting_storage_class()
    for attempt in range(3):
        try:
            with storage_errors(parsed, action="open"):
                _enable_sqlite_wal(parsed)
                storage = storage_cls(parsed.render_as_string(hide_password=False), **kwargs)
            break
        except StorageError as e:
            # Two processes creating Optuna's tables in a new database at once: one of them
            # loses the insert of the schema version; the tables are there now, so try again.
            if attempt == 2 or not any(m in str(e) for m in SCHEMA_RACE_MESSAGES):
                raise
            time.sleep(0.5)
    storage._sweep_reconnect_timeout_s = reconnect_timeout_s  # type: ignore[attr-defined]
    storage._sweep_masked_url = mask_url(parsed)  # type: ignore[attr-defined]
    return storage


def idle_connections() -> int:
    """Idle PostgreSQL connections each storage keeps: :data:`IDLE_CONNECTIONS_ENV` if set.

    Raises:
        StorageError: the variable is set to anything but a whole number from 0 to 64.
    """
    value = os.environ.get(IDLE_CONNECTIONS_ENV, "").strip()
    if not value:
        return POSTGRES_IDLE_CONNECTIONS
    if not value.isdigit() or int(value) > 64:
        raise StorageError(f"{IDLE_CONNECTIONS_ENV}={value!r}: expected a whole number 0-64")
    return int(value)


class ClaimGate(Protocol):
    """What a worker's budget claim does around the one trial it creates or pops.

    :meth:`enter` runs right before the first RUNNING trial is created or a WAITING one is
    turned RUNNING (it may take a lock, count, and raise to refuse the trial); :meth:`created`
    runs right after that trial exists.
    """

    def enter(self) -> None: ...

    def created(self) -> None: ...


@contextlib.contextmanager
def claim_gate(storage: optuna.storages.RDBStorage, gate: ClaimGate) -> Iterator[None]:
    """Pass this thread's next trial creation (or pop from the queue) through ``gate``.

    So that a budget lock is held only around the insert itself: Optuna's own reads before it
    (its stale-trial check, the read of the queue) run before :meth:`ClaimGate.enter`. Trials
    created WAITING (a retry being queued, an enqueued seed) and other threads' calls pass
    untouched. Only storages made by :func:`open_storage` honour it.
    """
    import threading

    local = storage.__dict__.setdefault("_sweep_gate", threading.local())
    previous = getattr(local, "gate", None)
    local.gate = gate
    try:
        yield
    finally:
        local.gate = previous


def _active_gate(storage: Any) -> ClaimGate | None:
    local = storage.__dict__.get("_sweep_gate")
    return getattr(local, "gate", None) if local is not None else None


def read_engine(url: str) -> Engine:
    """A plain SQLAlchemy engine for read-only queries (never creates a SQLite file)."""
    from sqlalchemy import create_engine

    parsed = parse_url(url)
    _check_sqlite_file(parsed, create=False)
    with storage_errors(parsed, action="open"):
        return create_engine(parsed, connect_args=_connect_args(parsed), pool_pre_ping=True)


def _connect_args(url: URL) -> dict[str, Any]:
    """The driver's options: SQLite's busy timeout; PostgreSQL's connect timeout, unprepared.

    No PostgreSQL statement is prepared on the server: behind a pooler in transaction mode
    (PgBouncer before 1.21) a connection's next statement may run on another server connection,
    which never saw the prepared statement.
    """
    if url.get_backend_name() == "sqlite":
        return {"timeout": SQLITE_BUSY_TIMEOUT_S}
    return {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "prepare_threshold": None}


@contextlib.contextmanager
def storage_errors(url: URL | str, *, action: str = "use") -> Iterator[None]:
    """Re-raise database errors as one-line :class:`StorageError` with the URL masked."""
    import sqlalchemy.exc

    # Optuna's wrapper of driver errors; read-only commands never import Optuna for this.
    optuna_exceptions = sys.modules.get("optuna.exceptions")
    wrapped: tuple[type[Exception], ...] = (
        (optuna_exceptions.StorageInternalError,) if optuna_exceptions is not None else ()
    )
    caught: tuple[type[Exception], ...] = (sqlalchemy.exc.SQLAlchemyError, OSError, *wrapped)
    try:
        yield
    except StorageError:
        raise
    except caught as e:
        reason = _first_line(_root_cause(e))
        raise StorageError(
            f"cannot {action} storage {mask_url(url)}: {scrub(reason, url)}"
        ) from None
    except RuntimeError as e:  # Optuna's schema-version mismatch and similar
        raise StorageError(
            f"cannot {action} storage {mask_url(url)}: {scrub(_first_line(str(e)), url)}"
        ) from None


def retrying_call(storage: optuna.storages.RDBStorage, call: Callable[[], T]) -> T:
    """``call()``, retried on a lost connection like the storage's own calls."""
    return _retrying(lambda _storage: call())(storage)


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """``trial.set_user_attr`` for each of ``attrs``, in one transaction on an RDB storage.

    Retried on a lost connection like the storage's own calls (each write is an upsert, so a
    retry after a lost acknowledgement writes the same rows). Any other storage: one call each.
    """
    if not attrs:
        return
    backend: Any = getattr(trial.storage, "_backend", trial.storage)
    if not hasattr(backend, "scoped_session"):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    retrying_call(backend, lambda: write_user_attrs(backend, trial._trial_id, attrs))
    trial._cached_frozen_trial.user_attrs.update(attrs)


def _check_sqlite_file(url: URL, *, create: bool) -> None:
    path = sqlite_path(url)
    if path is None:
        return
    if path.exists():
        if not path.is_file():
            raise StorageError(f"storage {mask_url(url)}: {path} is not a file")
        return
    if not create:
        raise StorageError(
            f"no study database at {path} (storage {mask_url(url)}); launch a sweep first or "
            "pass --storage"
        )
    if not path.parent.exists():
        raise StorageError(f"cannot create {path}: directory {path.parent} does not exist")
    # Create the file private to this user before SQLite does (SQLite follows the umask).
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it a moment ago
        return
    os.close(fd)


def _check_stored_schema(url: URL) -> None:
    """Refuse an unsupported Optuna schema before Optuna (or the WAL switch) touches the file."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    with storage_errors(url, action="open"):
        engine = create_engine(url, connect_args=_connect_args(url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                check_schema(conn, url)
        finally:
            engine.dispose()


def _enable_sqlite_wal(url: URL) -> None:
    """WAL lets readers run beside a writer; the setting persists in the file."""
    path = sqlite_path(url)
    if path is None:
        return
    import sqlite3

    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            # Switching needs the file to itself: another process is opening it right now.
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise StorageError(f"cannot switch {path} to WAL mode: {e}") from None
        finally:
            connection.close()
        time.sleep(0.2)


def _is_transient(error: BaseException) -> bool:
    """A lost connection or a locked database: worth retrying."""
    import sqlalchemy.exc

    for e in _chain(error):
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
    return False


def _retrying(method: Callable[..., T]) -> Callable[..., T]:
    """Retry ``method`` on a lost connection until the storage's reconnect deadline.

    Once one call has given up, the storage counts as lost: later calls try once and fail at
    once (no second wait), until a call succeeds again.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        timeout = getattr(self, "_sweep_reconnect_timeout_s", RECONNECT_TIMEOUT_S)
        lost = getattr(self, "_sweep_lost", False)
        deadline = time.monotonic() + (0.0 if lost else timeout)
        # A heartbeat must follow the database's return within one interval.
        pause_max = min(RETRY_PAUSE_MAX_S, getattr(self, "heartbeat_interval", None) or 5.0)
        delay = min(0.5, pause_max)
        while True:
            try:
                result = method(self, *args, **kwargs)
                self._sweep_lost = False
                return result
            except Exception as e:
                if not _is_transient(e):
                    raise
                if time.monotonic() + delay > deadline:
                    self._sweep_lost = True
                    url = getattr(self, "_sweep_masked_url", "the study database")
                    raise StorageError(
                        f"lost the connection to {url} and could not reconnect within "
                        f"{timeout:.0f} s: {_first_line(_root_cause(e))}"
                    ) from None
                _logger.warning(
                    "storage call %s failed (%s); retrying in %.1f s",
                    method.__name__,
                    _first_line(_root_cause(e)),
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, pause_max)

    return wrapper


def _heartbeat_or_warn(record: Callable[..., None]) -> Callable[..., None]:
    """Heartbeats run in a side thread: after the retries, warn instead of killing the thread.

    The missed heartbeats make the trial stale for the other workers, which is what should happen
    when this worker has lost the database; its main thread reports the error itself.
    """

    @functools.wraps(record)
    def wrapper(self: Any, trial_id: int) -> None:
        try:
            record(self, trial_id)
        except StorageError as e:
            _logger.warning("heartbeat of trial id %d not recorded: %s", trial_id, e)

    return wrapper


def _with_claim_token(create: Callable[..., T]) -> Callable[..., T]:
    """Give each trial creation a claim token, written in the creating transaction.

    ``create`` (retried, and retried again by Optuna on deadlocks) may run its insert more than
    once when a commit succeeded but its acknowledgement was lost; every attempt after the first
    looks for a trial holding the token and returns it instead of inserting another
    (:func:`_prepared_once`).
    """

    @functools.wraps(create)
    def wrapper(self: Any, study_id: int, template_trial: Any = None) -> T:
        import uuid

        template = with_claim_token(template_trial, uuid.uuid4().hex)
        attempts = self.__dict__.setdefault("_sweep_create_attempts", {})
        token = claim_token(template)
        attempts[token] = 0
        try:
            return create(self, study_id, template)
        finally:
            attempts.pop(token, None)

    return wrapper


def _prepared_once(prepare: Callable[..., Any]) -> Callable[..., Any]:
    """Optuna's insert of a new trial, skipped when an earlier attempt's commit went through.

    A trial created RUNNING gets its heartbeat row in the same transaction (with heartbeats on).
    """

    @functools.wraps(prepare)
    def wrapper(self: Any, study_id: int, template_trial: Any, session: Any) -> Any:
        token = claim_token(template_trial)
        attempts = self.__dict__.get("_sweep_create_attempts", {})
        if token is not None and token in attempts:
            attempts[token] += 1
            if attempts[token] > 1:
                existing = claimed_trial(session, study_id, token)
                if existing is not None:
                    _logger.warning(
                        "trial %d was created by a commit whose acknowledgement was lost; "
                        "using it rather than creating another",
                        existing.number,
                    )
                    return existing
        trial = prepare(self, study_id, template_trial, session)
        running = template_trial is None or template_trial.state.name == "RUNNING"
        if running and self.heartbeat_interval:
            add_first_heartbeat(session, trial)
        return trial

    return wrapper


def _heartbeat_when_popped(set_state: Callable[..., bool]) -> Callable[..., bool]:
    """Write a trial's first heartbeat as soon as a worker has turned it RUNNING.

    A WAITING trial (enqueued, or re-queued after a failure) becomes RUNNING through this call;
    recording its heartbeat right away leaves no gap in which a killed worker's trial has no
    heartbeat row, which Optuna's stale check would never fail.
    """

    @functools.wraps(set_state)
    def wrapper(self: Any, trial_id: int, state: Any, *args: Any, **kwargs: Any) -> bool:
        changed = set_state(self, trial_id, state, *args, **kwargs)
        if changed and getattr(state, "name", None) == "RUNNING" and self.heartbeat_interval:
            self.record_heartbeat(trial_id)
        return changed

    return wrapper


def _gated_create(create: Callable[..., T]) -> Callable[..., T]:
    """A RUNNING trial's creation passes the thread's :class:`ClaimGate`, if one is set."""

    @functools.wraps(create)
    def wrapper(self: Any, study_id: int, template_trial: Any = None) -> T:
        gate = _active_gate(self)
        running = template_trial is None or template_trial.state.name == "RUNNING"
        if gate is None or not running:
            return create(self, study_id, template_trial)
        gate.enter()
        trial = create(self, study_id, template_trial)
        gate.created()
        return trial

    return wrapper


def _gated_pop(set_state: Callable[..., bool]) -> Callable[..., bool]:
    """Turning a trial RUNNING (Optuna popping a WAITING one) passes the thread's gate."""

    @functools.wraps(set_state)
    def wrapper(self: Any, trial_id: int, state: Any, *args: Any, **kwargs: Any) -> bool:
        gate = _active_gate(self)
        if gate is None or getattr(state, "name", None) != "RUNNING":
            return set_state(self, trial_id, state, *args, **kwargs)
        gate.enter()
        changed = set_state(self, trial_id, state, *args, **kwargs)
        if changed:
            gate.created()
        return changed

    return wrapper


@functools.cache
def _reconnecting_storage_class() -> type:
    """Optuna's RDBStorage whose calls retry transient connection errors until a deadline.

    Trial creation is idempotent under those retries (a claim token), every RUNNING trial a
    worker creates or pops has a heartbeat row from the start, so Optuna's stale check sees it,
    and that creation or pop passes the worker's :class:`ClaimGate` (:func:`claim_gate`).
    """
    from optuna.storages import RDBStorage

    methods: dict[str, Any] = {name: getattr(RDBStorage, name) for name in RETRIED_METHODS}
    namespace: dict[str, Any] = {name: _retrying(method) for name, method in methods.items()}
    namespace[CREATE_METHOD] = _gated_create(_with_claim_token(namespace[CREATE_METHOD]))
    namespace[PREPARE_TRIAL_METHOD] = _prepared_once(getattr(RDBStorage, PREPARE_TRIAL_METHOD))
    namespace[HEARTBEAT_METHOD] = _heartbeat_or_warn(namespace[HEARTBEAT_METHOD])
    # The gate outside the retries, inside the first heartbeat: that write waits for no lock.
    namespace[STATE_METHOD] = _heartbeat_when_popped(_gated_pop(namespace[STATE_METHOD]))
    namespace["__doc__"] = "RDBStorage that retries lost connections (see sweep.store.rdb)."
    namespace["__module__"] = __name__
    return type("ReconnectingRDBStorage", (RDBStorage,), namespace)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _root_cause(error: BaseException) -> str:
    *_, last = _chain(error)
    orig = getattr(last, "orig", None)
    return str(orig if orig is not None else last)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
