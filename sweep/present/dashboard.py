"""``sweep dashboard``: optuna-dashboard on 127.0.0.1 for a sweep's storage and artifact store.

The dashboard reads the same database the workers write. On SQLite that is risky: a dashboard
polling a study that workers are writing has broken it with "database is locked"
(optuna-dashboard #545), so :func:`live_sqlite_warning` names the running trials whose
heartbeats are fresh and recommends PostgreSQL. The port is checked before anything starts: a
port in use is one line and a non-zero exit. The page is read-only unless ``--allow-writes``
(:mod:`sweep.present.dashboard_app`).
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING
from typing import Any

from sweep.errors import UsageError

if TYPE_CHECKING:
    from sweep.store.read import StudyReader

_logger = logging.getLogger(__name__)
HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def check_port(port: int, host: str = HOST) -> None:
    """Refuse a port that another process listens on (or that cannot be bound).

    Raises:
        UsageError: the port is in use or out of range.
    """
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: expected 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UsageError(
                f"port {port} on {host} is in use ({e.strerror}); choose another with --port"
            ) from None


def live_sqlite_warning(url: str, names: list[str]) -> str | None:
    """A warning when ``url`` is a SQLite file that workers are writing now, else ``None``.

    Live means a RUNNING trial whose heartbeat is younger than its study's grace period (every
    trial a worker runs has one from its start).
    """
    from sweep.store.read import StudyReader
    from sweep.store.urls import parse_url

    if parse_url(url).get_backend_name() != "sqlite":
        return None
    live: list[str] = []
    with StudyReader(url) as reader:
        for name in names:
            grace = float((reader.config(name).config or {}).get("grace_period_s") or 60)
            for run in reader.running(name):
                age = run.heartbeat_age_s
                if age is not None and age < grace:
                    live.append(f"{name} #{run.number}")
    if not live:
        return None
    shown = ", ".join(live[:5]) + (f" and {len(live) - 5} more" if len(live) > 5 else "")
    return (
        f"workers are writing this SQLite file now (running: {shown}). optuna-dashboard's "
        "queries on a live SQLite study can make the workers fail with 'database is locked' "
        "(optuna-dashboard #545); for a live view use PostgreSQL, or `sweep status NAME`"
    )


def serve(
    url: str,
    name: str | None = None,
    port: int = DEFAULT_PORT,
    artifacts: str | None = None,
    *,
    allow_writes: bool = False,
    host: str = HOST,
) -> None:
    """Serve optuna-dashboard on 127.0.0.1:``port`` until interrupted.

    Read-only unless ``allow_writes``, with compact attributes and loss-curve figures
    (:class:`sweep.present.dashboard_app.SweepDashboard`).

    Args:
        url: The storage URL (never printed unmasked).
        name: A study to check and take the artifact store from; ``None``: every study, with
            the artifact store of the newest sweep study that keeps one.
        port: The port.
        artifacts: ``--artifacts DIR``: an artifact root to look in first
            (:func:`sweep.store.artifacts.locate`).
        allow_writes: Let the page change the database (delete studies, notes, uploads).
        host: The address to listen on (``0.0.0.0`` in a container; it has no login).

    Raises:
        UsageError: the port is in use, or optuna-dashboard is not installed.
        StudyNotFoundError: ``name`` is not a study of the storage.
        StorageError: the database cannot be reached or used.
    """
    from wsgiref.simple_server import make_server

    from sweep.present.dashboard_app import SweepDashboard
    from sweep.store.read import StudyReader
    from sweep.store.urls import mask_url

    check_port(port, host)
    try:
        from optuna_dashboard import wsgi
    except ImportError:
        raise UsageError(
            "optuna-dashboard is not installed: pip install 'sweep[dashboard]'"
        ) from None
    with StudyReader(url) as reader:
        if name is not None:
            names = [name]
            reader.config(name)  # an unknown study: one line, before the server starts
        else:
            names = [s.name for s in reader.studies()]
        artifacts = _artifacts_dir(url, reader, names, artifacts)
    warning = live_sqlite_warning(url, names)
    if warning:
        _logger.warning("%s", warning)
    store = _artifact_store(artifacts)
    storage = _storage(url)
    app = SweepDashboard(wsgi(storage, artifact_store=store), storage, allow_writes=allow_writes)
    try:
        server = make_server(host, port, app, handler_class=_quiet_handler())
    except OSError as e:  # lost a race for the port after the check
        raise UsageError(f"port {port} on {host}: {e.strerror or e}") from None
    _logger.info(
        "optuna-dashboard on http://%s:%d/dashboard/ for %s%s, %s (Ctrl-C stops it)",
        host,
        port,
        mask_url(url),
        f", artifacts in {artifacts}" if artifacts else "",
        "writes allowed" if allow_writes else "read-only",
    )
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass  # Ctrl-C: a normal stop


def _artifacts_dir(
    url: str, reader: StudyReader, names: list[str], root: str | None
) -> str | None:
    from sweep.store.artifacts import locate

    for name in reversed(names):  # the newest study first
        located = locate(url, (reader.config(name).config or {}).get("artifacts_dir"), root)
        if located is not None and located.exists:
            return str(located.folder)
        if located is not None:
            _logger.warning("no artifacts of study %r: looked in %s", name, located.describe())
    return None


def _artifact_store(directory: str | None) -> Any:
    import os

    if not directory or not os.path.isdir(directory):
        return None
    from optuna.artifacts import FileSystemArtifactStore

    return FileSystemArtifactStore(directory)


def _storage(url: str) -> Any:
    from sweep.log import quiet_optuna
    from sweep.store.rdb import open_storage

    quiet_optuna()
    return open_storage(url)


def _quiet_handler() -> Any:
    from wsgiref.simple_server import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        """Requests go to the debug log, not stderr (the page polls every few seconds)."""

        def log_message(self, format: str, *args: Any) -> None:
            _logger.debug("%s %s", self.address_string(), format % args)

    return QuietHandler
