"""PgBouncer for tests: ``docker/pooler.sh``, the pooler image's own entrypoint, run locally.

It forwards to the test PostgreSQL server in transaction mode, with a given number of server
connections (``benchmarks/_pooler.py`` starts it). Without a ``pgbouncer`` binary a test skips
with a one-line reason; under CI (``CI=true``) it fails instead (``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _pooler  # noqa: E402


@contextlib.contextmanager
def pgbouncer(server_url: str, *, server_connections: int) -> Iterator[str]:
    """Run PgBouncer in front of ``server_url``'s server; yield the same URL through it."""
    if shutil.which("pgbouncer") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("pgbouncer is not installed under CI: .ci/run must install it")
        pytest.skip("pooler tests need pgbouncer (apt-get install pgbouncer)")
    try:
        with _pooler.pgbouncer(server_url, server_connections=server_connections) as url:
            yield url
    except _pooler.PoolerError as e:
        pytest.fail(str(e))
