#!/bin/bash
# The streaming replica: cloned from the primary on first start (pg_basebackup -R writes the standby settings).
set -euo pipefail
export PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h postgres -p 5432; do sleep 1; done
  pg_basebackup -h postgres -U replicator -D "$PGDATA" -R -X stream
  chmod 0700 "$PGDATA"
fi
exec postgres
