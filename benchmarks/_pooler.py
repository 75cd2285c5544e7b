"""PgBouncer in front of a PostgreSQL server, started with the pooler image's entrypoint.

``docker/pooler.sh`` writes the configuration (transaction mode, SCRAM, N server connections)
and execs ``pgbouncer``; this runs it as a local process, for benchmarks/db_scale.py and the
pooler tests (tests/support/pooler.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

POOLER_SCRIPT = Path(__file__).resolve().parents[1] / "docker" / "pooler.sh"


class PoolerError(RuntimeError):
    """PgBouncer did not start (its log's tail is the message)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(server_url: str, *, server_connections: int) -> Iterator[str]:
    """Run PgBouncer in front of ``server_url``'s server; yield the same URL through it.

    As root (PgBouncer refuses to run as root) it runs as the ``postgres`` user.

    Raises:
        PoolerError: it exited or did not listen within 15 s.
    """
    url = make_url(server_url)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="sweep-pooler-") as tmp:
        password_file = Path(tmp) / "password"
        password_file.write_text(url.password or "")
        env = {
            **os.environ,
            "SWEEP_POOLER_DIR": f"{tmp}/run",
            "SWEEP_DB_PASSWORD_FILE": str(password_file),
            "SWEEP_DB_USER": url.username or "",
            "SWEEP_DB_HOST": url.host or "127.0.0.1",
            "SWEEP_DB_PORT": str(url.port or 5432),
            "SWEEP_POOLER_LISTEN": "127.0.0.1",
            "SWEEP_POOLER_PORT": str(port),
            "SWEEP_POOLER_SERVER_CONNECTIONS": str(server_connections),
        }
        if os.geteuid() == 0:
            os.chmod(tmp, 0o755)
            password_file.chmod(0o644)
            env["SWEEP_POOLER_RUN_AS"] = "postgres"
        log = Path(tmp) / "pgbouncer.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["sh", str(POOLER_SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 15
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise PoolerError(f"pgbouncer did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
            yield url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
