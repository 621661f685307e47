#!/usr/bin/env bash
# A throwaway Apache Kafka 4.1 broker in KRaft mode (broker and controller in one JVM) on 127.0.0.1:$1, from the
# jars scripts/kafka-broker.sh resolved from Maven Central into build/kafka/libs, every path in a temp dir.
# Prints "ready" once it accepts connections; removes its data on exit.
set -euo pipefail
port=$1
libs=$(cd "$(dirname "$0")/../.." && pwd)/build/kafka/libs
[ -d "$libs" ] || { echo "kafka: $libs missing (make kafka-broker)" >&2; exit 1; }
controller=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT TERM INT
cat >"$dir/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.partitions=1
PROPERTIES
java -cp "$libs/*" kafka.tools.StorageTool format -t loupe-scenario-cluster01 -c "$dir/server.properties" >/dev/null
java -Xmx512m -cp "$libs/*" kafka.Kafka "$dir/server.properties" >"$dir/broker.log" 2>&1 &
pid=$!
. "$(dirname "$0")/ready.sh"
ready_when_listening "$port" "$pid" "$dir/broker.log"

