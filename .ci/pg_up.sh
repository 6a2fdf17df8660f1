#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 and print its SQLAlchemy-style URL.
# Works as root (initdb runs as the postgres user) and installs PostgreSQL if it is missing.
set -euo pipefail
PGPORT_CI="${PGPORT_CI:-55433}"
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PGCI_DIR="$(mktemp -d /tmp/pgci.XXXXXX)"
echo "$PGCI_DIR" > "${PGCI_STATE:-/tmp/pgci.dir}"
RUN=()
if [ "$(id -u)" = 0 ]; then chown postgres: "$PGCI_DIR"; RUN=(runuser -u postgres --); fi
"${RUN[@]}" "$PGBIN/initdb" -D "$PGCI_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGCI_DIR/data" -l "$PGCI_DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT_CI -k $PGCI_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
"${RUN[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT_CI" -U postgres tests
echo "postgresql://postgres@127.0.0.1:$PGPORT_CI/tests"
