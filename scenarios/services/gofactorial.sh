#!/bin/sh
# Build gofactorial.go once per version of its source (Debian's Go, no
# modules, nothing downloaded), then run it in this process:
#   gofactorial.sh ROLE LISTEN [URL...]
set -e
src=$(dirname "$0")/gofactorial.go
dir=${TMPDIR:-/tmp}/loupe-gofactorial-$(sha256sum "$src" | cut -c1-12)
if [ ! -x "$dir/gofactorial" ]; then
  mkdir -p "$dir"
  GOCACHE="$dir/cache" GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$dir/gofactorial.$$" "$src"
  mv "$dir/gofactorial.$$" "$dir/gofactorial"
fi
exec "$dir/gofactorial" "$@"
