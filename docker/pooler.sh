#!/bin/sh
# Entrypoint of the pooler image (docker/pooler.Dockerfile): PgBouncer in transaction mode in
# front of the study database, so that many workers share a few server connections.
# Contract: docker/README.md, "Many workers: the pooler".
#
# Writes pgbouncer.ini and the user list into SWEEP_POOLER_DIR (/tmp/pgbouncer, mode 0700), then
# execs pgbouncer. Settings (defaults in brackets):
#   SWEEP_DB_HOST [db], SWEEP_DB_PORT [5432]    the PostgreSQL server it forwards to
#   SWEEP_DB_USER [sweep], SWEEP_DB_PASSWORD_FILE [/run/secrets/db_password]
#                                               the one role it accepts, with the password it
#                                               checks clients against (SCRAM) and logs in with
#   SWEEP_POOLER_LISTEN [0.0.0.0], SWEEP_POOLER_PORT [6432]
#   SWEEP_POOLER_SERVER_CONNECTIONS [20]        server connections per database (all workers)
#   SWEEP_POOLER_MAX_CLIENTS [2000]             client connections (about 2 per worker)
#   SWEEP_POOLER_RUN_AS                         pgbouncer -u USER (only when started as root)
# Workers then use SWEEP_DB_HOST=<pooler> SWEEP_DB_PORT=6432 SWEEP_DB_IDLE_CONNECTIONS=1.
set -eu

dir=${SWEEP_POOLER_DIR:-/tmp/pgbouncer}
password_file=${SWEEP_DB_PASSWORD_FILE:-/run/secrets/db_password}
user=${SWEEP_DB_USER:-sweep}
if [ ! -r "$password_file" ]; then
    echo "sweep-pooler: password file '$password_file' is missing or unreadable by uid $(id -u)" >&2
    exit 1
fi
password=$(cat "$password_file")
if [ -z "$password" ]; then
    echo "sweep-pooler: the password file is empty" >&2
    exit 1
fi
for number in "${SWEEP_DB_PORT:-5432}" "${SWEEP_POOLER_PORT:-6432}" \
    "${SWEEP_POOLER_SERVER_CONNECTIONS:-20}" "${SWEEP_POOLER_MAX_CLIENTS:-2000}"; do
    case "$number" in
        '' | *[!0-9]*) echo "sweep-pooler: '$number' is not a whole number" >&2; exit 2 ;;
    esac
done

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
# auth_file lines are "user" "password", a double quote inside doubled.
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
printf '%s %s\n' "$(quote "$user")" "$(quote "$password")" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=${SWEEP_DB_HOST:-db} port=${SWEEP_DB_PORT:-5432}

[pgbouncer]
listen_addr = ${SWEEP_POOLER_LISTEN:-0.0.0.0}
listen_port = ${SWEEP_POOLER_PORT:-6432}
unix_socket_dir =
pidfile = $dir/pgbouncer.pid
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
; A server connection serves one transaction, then the next client's: sweep's budget lock is a
; transaction-level advisory lock, and it prepares no statements (psycopg prepare_threshold).
pool_mode = transaction
default_pool_size = ${SWEEP_POOLER_SERVER_CONNECTIONS:-20}
max_client_conn = ${SWEEP_POOLER_MAX_CLIENTS:-2000}
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
; The role may read the pooler's counters: psql -p 6432 pgbouncer -c 'SHOW POOLS'.
stats_users = $user
log_connections = 0
log_disconnections = 0
INI
if [ -n "${SWEEP_POOLER_RUN_AS:-}" ]; then
    chown -R "$SWEEP_POOLER_RUN_AS" "$dir"
    exec pgbouncer -u "$SWEEP_POOLER_RUN_AS" "$dir/pgbouncer.ini"
fi
exec pgbouncer "$dir/pgbouncer.ini"
