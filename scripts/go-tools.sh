#!/usr/bin/env bash
# Third-party servers written in Go that the tests run (test/third-party.test.ts), built from the Go module
# proxy at pinned versions into build/bin, once. Without the proxy it says so, and those tests report
# themselves skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/bin
tools=(
  "github.com/nats-io/nats-server/v2@v2.15.3 nats-server"
)
for entry in "${tools[@]}"; do
  read -r module binary <<<"$entry"
  stamp="build/bin/.$binary.version"
  if [ -x "build/bin/$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then continue; fi
  if GOBIN="$PWD/build/bin" GOFLAGS=-mod=mod go install "$module" 2>build/bin/.$binary.log; then
    echo "$module" >"$stamp"
  else
    echo "go-tools: could not build $module (see build/bin/.$binary.log): the tests that need it are skipped" >&2
  fi
done
