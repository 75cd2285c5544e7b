"""Storage URLs: which database, its parsing, and the one way `sweep` masks passwords.

Every URL `sweep` prints or logs goes through :func:`mask_url` (``user:***@host``); text that
may hold a URL (a driver's error message, a log line) goes through :func:`redact` or
:func:`scrub`. Only SQLAlchemy's URL handling is used; this module imports nothing heavier.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.config import STORAGE_ENV
from sweep.errors import StorageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_STORAGE_URL = "sqlite:///sweep.db"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")

# scheme://user:password@host  ->  scheme://user:***@host, for URLs inside free text
# (the password runs to the last "@" before the host, so passwords containing "@" are masked whole)
_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<pw>[^\s]+)(?=@[^\s@]*)"
)


def resolve_url(url: str | None) -> str:
    """``--storage`` if given, else ``$SWEEP_STORAGE``, else ``sqlite:///sweep.db``.

    Raises:
        StorageError: ``$SWEEP_STORAGE`` is set but empty (a missing secret, say): falling back
            to a local SQLite file would put the study where no other worker can see it.
    """
    if url:
        return url
    from_env = os.environ.get(STORAGE_ENV)
    if from_env is not None and not from_env.strip():
        raise StorageError(
            f"{STORAGE_ENV} is set but empty; set it to the study database's URL, or unset it "
            f"to use {DEFAULT_STORAGE_URL}"
        )
    return from_env or DEFAULT_STORAGE_URL


def parse_url(url: str) -> URL:
    """Parse and check a storage URL; ``postgresql://`` gets the psycopg 3 driver.

    Raises:
        StorageError: on a malformed URL or an unsupported backend (message masked).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise StorageError(
            f"malformed storage URL {_mask_unparsed(url)!r}; expected e.g. sqlite:///sweep.db or "
            "postgresql+psycopg://user:password@host:5432/dbname"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StorageError(
            f"unsupported storage backend {backend!r} in {mask_url(parsed)}; use sqlite:/// or "
            "postgresql+psycopg://"
        )
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and not parsed.database:
        raise StorageError(f"storage URL {mask_url(parsed)} names no database file")
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``; safe to print and log."""
    if isinstance(url, str):
        try:
            from sqlalchemy.engine import make_url

            return make_url(url).render_as_string(hide_password=True)
        except Exception:
            return _mask_unparsed(url)
    return url.render_as_string(hide_password=True)


def _mask_unparsed(text: str) -> str:
    """Masking of ``scheme://user:password@host`` in text that did not parse as a URL."""
    return redact(text)


def scrub(text: str, url: str | URL | None) -> str:
    """Remove the password (and the raw URL) of ``url`` from ``text``."""
    if url is None:
        return text
    raw = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    text = text.replace(raw, mask_url(url))
    try:
        password = parse_url(raw).password if isinstance(url, str) else url.password
    except StorageError:
        password = None
    if password:
        text = text.replace(str(password), "***")
    return text


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL; ``None`` for other backends or in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def redact(text: str) -> str:
    """Mask the password of every URL inside free ``text`` (log lines, error messages)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***", text)
