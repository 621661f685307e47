#!/bin/sh
# Build gofactorial.go once per version of its source and Go toolchain
# (Debian's Go 1.19 where installed — the release the probes' tests were made
# on, and GOPATH mode needs no module download; GOFACTORIAL_GO names another),
# then run it in this process:
#   gofactorial.sh ROLE LISTEN [URL...]
# GOFACTORIAL_BUILDMODE=pie builds a position-independent one instead.
set -e
src=$(dirname "$0")/gofactorial.go
mode=${GOFACTORIAL_BUILDMODE:-exe}
go=${GOFACTORIAL_GO:-/usr/lib/go-1.19/bin/go}
[ -x "$go" ] || go=go
release=$("$go" env GOVERSION)
dir=${TMPDIR:-/tmp}/loupe-gofactorial-$(sha256sum "$src" | cut -c1-12)-$release-$mode
if [ ! -x "$dir/gofactorial" ]; then
  mkdir -p "$dir"
  GOCACHE="$dir/cache" GO111MODULE=off GOPATH=/usr/share/gocode "$go" build -buildmode="$mode" -o "$dir/gofactorial.$$" "$src"
  mv "$dir/gofactorial.$$" "$dir/gofactorial"
fi
exec "$dir/gofactorial" "$@"
