#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, only those missing,
# so a machine that has them pays nothing. Needs root (CI runs as root);
# without root it lists what is missing and leaves the tests that need it to
# report themselves skipped with the reason.
set -euo pipefail
packages=(
  gcc libc6-dev linux-libc-dev   # test/events-header.test.ts compiles bpf/events.h
  clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev  # bpf/*.bpf.c, CO-RE
  g++ make python3 pkg-config     # native/ addon through node-gyp
  python3-venv                    # scripts/py-deps.sh: Python clients from PyPI (test/requirements.txt)
  curl openssl                    # real clients and certificates in the live tests
  postgresql postgresql-client mariadb-server mariadb-client redis-server  # test/db-servers.test.ts
  wrk                             # bench/live
  prometheus                      # test/prometheus.test.ts scrapes /metrics
  chromium                        # test/views.test.ts opens loupe report headless
  golang-go binutils              # Go demo services; objdump finds RET offsets in Go binaries
  golang-google-grpc-dev          # the Go demo's gRPC workers (GO111MODULE=off, GOPATH=/usr/share/gocode)
  nghttp2-server nghttp2-client   # test/third-party.test.ts: nghttpd and h2load, HTTP/2 over 16 KB
  nginx python3-flask             # test/third-party.test.ts: nginx (plain, TLS) as a reverse proxy to Flask
  python3-grpcio                  # test/tcp-options.test.ts: a Python gRPC client calling grpc-go's greeter on another host
  memcached libmemcached-tools    # test/third-party.test.ts: memcached under memcslap (text and binary)
  mosquitto mosquitto-clients     # test/third-party.test.ts: the MQTT broker, mosquitto_pub and mosquitto_sub
  kcat                            # test/third-party.test.ts: a librdkafka producer against the Kafka broker
  rabbitmq-server                 # test/third-party.test.ts: the AMQP 0-9-1 broker (run by its own script, as the test user)
  golang-github-golang-protobuf-1-5-dev golang-google-protobuf-dev  # the grpc-go examples' generated code (APIv2)
  podman runc netavark aardvark-dns containernetworking-plugins iptables catatonit uidmap  # test/containers.test.ts (runc: crun refuses this hybrid cgroup layout)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages (need root to install): ${missing[*]}" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Database packages must not start system services: the tests start their own servers on free ports.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
