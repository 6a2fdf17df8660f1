#!/usr/bin/env bash
# Stop the throwaway PostgreSQL started by pg_up.sh and remove its files.
set -uo pipefail
STATE="${PGCI_STATE:-/tmp/pgci.dir}"
[ -f "$STATE" ] || exit 0
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PGCI_DIR="$(cat "$STATE")"
RUN=()
[ "$(id -u)" = 0 ] && RUN=(runuser -u postgres --)
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$PGCI_DIR/data" -m fast -w stop >/dev/null 2>&1
rm -rf "$PGCI_DIR" "$STATE"
