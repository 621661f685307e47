#!/bin/sh
# Build gofactorial.go once per version of its source (Debian's Go, no
# modules, nothing downloaded), then run it in this process:
#   gofactorial.sh ROLE LISTEN [URL...]
# GOFACTORIAL_BUILDMODE=pie builds a position-independent one instead.
set -e
src=$(dirname "$0")/gofactorial.go
mode=${GOFACTORIAL_BUILDMODE:-exe}
dir=${TMPDIR:-/tmp}/loupe-gofactorial-$(sha256sum "$src" | cut -c1-12)-$mode
if [ ! -x "$dir/gofactorial" ]; then
  mkdir -p "$dir"
  GOCACHE="$dir/cache" GO111MODULE=off GOPATH=/usr/share/gocode go build -buildmode="$mode" -o "$dir/gofactorial.$$" "$src"
  mv "$dir/gofactorial.$$" "$dir/gofactorial"
fi
exec "$dir/gofactorial" "$@"
