#!/usr/bin/env bash
# Third-party servers and clients written in Go that the tests run (test/third-party.test.ts), built from the
# Go module proxy at pinned versions into build/bin, once: servers by module, clients from test/clients/NAME
# (each its own go.mod and go.sum, pinning the library it drives). Without the proxy it says so, and those tests report
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
for dir in test/clients/*/; do
  binary=$(basename "$dir")
  stamp="build/bin/.$binary.version"
  version=$(cat "$dir"go.mod "$dir"go.sum "$dir"*.go | sha256sum | cut -c1-16)
  if [ -x "build/bin/$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then continue; fi
  if (cd "$dir" && go build -o "../../../build/bin/$binary" .) 2>build/bin/.$binary.log; then
    echo "$version" >"$stamp"
  else
    echo "go-tools: could not build $dir (see build/bin/.$binary.log): the tests that need it are skipped" >&2
  fi
done
