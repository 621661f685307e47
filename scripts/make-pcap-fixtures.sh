#!/usr/bin/env bash
# Records the pcap fixtures under test/fixtures/ from real traffic: curl
# against a Node HTTP server on loopback. Needs root, tcpdump, dumpcap (tshark)
# and curl. The files are committed; tests do not need these tools.
set -euo pipefail
cd "$(dirname "$0")/.."
out=test/fixtures

drive() { # port
  local base="http://127.0.0.1:$1"
  curl -s -o /dev/null -o /dev/null "$base/hello?user=alice" "$base/chunked"   # two requests, one keep-alive connection
  head -c 3000 /dev/zero | curl -s -o /dev/null -X POST -H 'Content-Type: application/octet-stream' -H 'Authorization: Bearer s3cret' --data-binary @- "$base/echo"
  curl -s -o /dev/null "$base/big"
  curl -s -o /dev/null -I "$base/hello"
  curl -s -o /dev/null "$base/missing"
}

record() { # port file capture-command...
  local port=$1 file=$2; shift 2
  node "$out/http-server.js" "$port" > /dev/null &
  local server=$!
  sleep 0.5
  "$@" &
  local cap=$!
  sleep 1
  drive "$port"
  sleep 1.5 # libpcap hands packets over in blocks: let the last ones arrive
  kill -INT "$cap"; wait "$cap" || true
  kill "$server"; wait "$server" 2>/dev/null || true
  chmod 644 "$file"
}

record 18081 "$out/http-loopback.pcap" tcpdump -i lo --immediate-mode -U -s 0 -w "$out/http-loopback.pcap" "tcp port 18081"
record 18082 "$out/http-any.pcapng" dumpcap -q -i any -n -f "tcp port 18082" -w "$out/http-any.pcapng"
# The same traffic with a 200-byte snap length: packets cut short by the capture.
record 18083 "$out/http-snaplen.pcap" tcpdump -i lo --immediate-mode -U -s 200 -w "$out/http-snaplen.pcap" "tcp port 18083"
ls -l "$out"/*.pcap*
