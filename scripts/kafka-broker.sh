#!/usr/bin/env bash
# An Apache Kafka 4.1 broker for test/third-party.test.ts: its jars and their dependencies from Maven Central
# (scripts/kafka/pom.xml) into build/kafka/libs, once; it runs on the machine's OpenJDK 17 in KRaft mode.
# Without Maven or Maven Central it says so, and the Kafka tests report themselves skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=build/kafka/.pom
if [ -f "$stamp" ] && cmp -s "$stamp" scripts/kafka/pom.xml; then exit 0; fi
mkdir -p build/kafka
if ! command -v mvn >/dev/null; then
  echo "kafka-broker: mvn is not installed: the Kafka tests are skipped" >&2
  exit 0
fi
rm -rf build/kafka/libs
if mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$PWD/build/kafka/libs" >build/kafka/mvn.log 2>&1; then
  cp scripts/kafka/pom.xml "$stamp"
else
  echo "kafka-broker: Maven could not resolve the broker (see build/kafka/mvn.log): the Kafka tests are skipped" >&2
fi
