#!/bin/sh
# Entrypoint of the sweep image (docker/worker.Dockerfile). Contract: docker/README.md.
#
# 1. If SWEEP_STORAGE is unset and SWEEP_DB_PASSWORD_FILE names a file (a Docker secret), build
#    SWEEP_STORAGE=postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME[?OPTIONS] from it and from
#    SWEEP_DB_USER (sweep), SWEEP_DB_HOST (db), SWEEP_DB_PORT (5432), SWEEP_DB_NAME (sweep) and
#    SWEEP_DB_OPTIONS (e.g. sslmode=require). User and password are percent-encoded. The URL
#    lives only in the environment: never on a command line, never printed.
# 2. `dashboard` runs `sweep dashboard` (read-only; extra arguments such as --allow-writes
#    are passed on) on SWEEP_STORAGE (port SWEEP_DASHBOARD_PORT, 8080).
#    Anything else runs `sweep "$@"` (exec, so sweep gets SIGTERM directly).
set -eu

if [ -z "${SWEEP_STORAGE:-}" ] && [ -n "${SWEEP_DB_PASSWORD_FILE:-}" ]; then
    if [ ! -r "$SWEEP_DB_PASSWORD_FILE" ]; then
        echo "sweep-entrypoint: password file '$SWEEP_DB_PASSWORD_FILE' is missing or" \
            "unreadable by uid $(id -u); see docker/README.md, 'Passwords'" >&2
        exit 1
    fi
    SWEEP_STORAGE=$(python - <<'PY'
import os
import sys
from urllib.parse import quote

with open(os.environ["SWEEP_DB_PASSWORD_FILE"], encoding="utf-8") as handle:
    password = handle.read().rstrip("\r\n")
if not password:
    sys.exit("sweep-entrypoint: the password file is empty")
user = os.environ.get("SWEEP_DB_USER") or "sweep"
host = os.environ.get("SWEEP_DB_HOST") or "db"
port = os.environ.get("SWEEP_DB_PORT") or "5432"
name = os.environ.get("SWEEP_DB_NAME") or "sweep"
options = (os.environ.get("SWEEP_DB_OPTIONS") or "").lstrip("?")
url = f"postgresql+psycopg://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{name}"
print(url + (f"?{options}" if options else ""))
PY
    )
    export SWEEP_STORAGE
fi

if [ "${1:-}" = "dashboard" ]; then
    shift
    if [ -z "${SWEEP_STORAGE:-}" ]; then
        echo "sweep-entrypoint: dashboard needs SWEEP_STORAGE or SWEEP_DB_PASSWORD_FILE" >&2
        exit 2
    fi
    exec sweep dashboard \
        --host "${SWEEP_DASHBOARD_HOST:-0.0.0.0}" --port "${SWEEP_DASHBOARD_PORT:-8080}" "$@"
fi

exec sweep "$@"
