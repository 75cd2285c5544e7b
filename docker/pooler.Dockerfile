# syntax=docker/dockerfile:1.7
#
# The pooler image: PgBouncer in transaction mode in front of the study database, for sweeps of
# more workers than one PostgreSQL serves connections (docker/README.md, "Many workers").
#
#   docker build -f docker/pooler.Dockerfile -t sweep-pooler:1 .
#
# Entrypoint: docker/pooler.sh, which writes pgbouncer.ini and the user list from SWEEP_DB_* and
# the password file (a Docker or Kubernetes secret), then execs pgbouncer on port 6432.

FROM debian:12.8-slim

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --no-create-home --shell /usr/sbin/nologin pooler

COPY --chmod=0755 docker/pooler.sh /usr/local/bin/sweep-pooler

USER 10002
EXPOSE 6432
ENTRYPOINT ["/usr/local/bin/sweep-pooler"]
