#!/usr/bin/env bash
# A throwaway PostgreSQL 15 on 127.0.0.1:$1 in a temp dir, for scenarios.
# Prints "ready" once it accepts connections; removes its data on exit.
set -euo pipefail
port=$1
bin=/usr/lib/postgresql/15/bin
dir=$(mktemp -d)
chmod 777 "$dir"
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT TERM INT
runuser -u postgres -- "$bin/initdb" -A trust --no-sync -U postgres -D "$dir/data" >/dev/null
runuser -u postgres -- "$bin/postgres" -D "$dir/data" -k "$dir" -h 127.0.0.1 -p "$port" -F >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
  if psql -h 127.0.0.1 -p "$port" -U postgres -Atc 'CREATE TABLE orders (id int primary key, item text); INSERT INTO orders VALUES (1, '"'"'pen'"'"'), (2, '"'"'ink'"'"')' >/dev/null 2>&1; then
    echo ready
    wait "$pid"
    exit 0
  fi
  sleep 0.1
done
echo "postgres did not start" >&2
exit 1
