#!/usr/bin/env bash
# A throwaway MariaDB on 127.0.0.1:$1 in a temp dir, for scenarios, with a
# shop.stock table. Prints "ready" once it answers; removes its data on exit.
set -euo pipefail
port=$1
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT TERM INT
mariadb-install-db --no-defaults --datadir="$dir/data" --user=root --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
mariadbd --no-defaults --datadir="$dir/data" --user=root --bind-address=127.0.0.1 --port="$port" --socket="$dir/s" \
  --skip-grant-tables --skip-log-bin --innodb-flush-log-at-trx-commit=0 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 200); do
  if mariadb --no-defaults -h 127.0.0.1 -P "$port" -u root --skip-ssl -e \
    "CREATE DATABASE IF NOT EXISTS shop; CREATE TABLE IF NOT EXISTS shop.stock (item VARCHAR(20) PRIMARY KEY, qty INT); REPLACE INTO shop.stock VALUES ('pen', 12), ('ink', 0)" >/dev/null 2>&1; then
    echo ready
    wait "$pid"
    exit 0
  fi
  sleep 0.1
done
echo "mariadb did not start" >&2
exit 1
