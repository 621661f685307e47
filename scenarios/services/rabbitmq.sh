#!/usr/bin/env bash
# A throwaway RabbitMQ on 127.0.0.1:$1 (Erlang distribution on a free port of its own), run by the broker's own script as the
# calling user (Debian's wrapper in /usr/sbin would switch to the rabbitmq user), every path in a temp dir.
# Prints "ready" once it accepts connections; removes its data on exit.
set -euo pipefail
port=$1
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
dist=$(free_port)
# Erlang's port mapper on a port of this broker's own: the broker starts it as a system-wide daemon, stopped on exit once the
# broker's node has left it (it refuses while a node is registered).
epmd=$(free_port)
stop_epmd() { for _ in $(seq 100); do epmd -port "$epmd" -kill 2>&1 | grep -qE 'Killed|Cannot connect' && return; sleep 0.05; done; }
dir=$(mktemp -d)
trap 'kill -- -"$pid" 2>/dev/null || kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; stop_epmd; rm -rf "$dir"' EXIT TERM INT
echo 'loopback_users = none' >"$dir/rabbitmq.conf"
echo '[].' >"$dir/plugins"
HOME=$dir ERL_EPMD_PORT=$epmd RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$dist \
  RABBITMQ_NODENAME=scenario$port@localhost RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log \
  RABBITMQ_ENABLED_PLUGINS_FILE=$dir/plugins RABBITMQ_CONFIG_FILE=$dir/rabbitmq \
  setsid /usr/lib/rabbitmq/bin/rabbitmq-server >/dev/null 2>&1 &
pid=$!
. "$(dirname "$0")/ready.sh"
ready_when_listening "$port" "$pid"

