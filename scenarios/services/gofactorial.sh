#!/bin/sh
# Build gofactorial.go once per version of its source and Go toolchain, then
# run it in this process:
#   gofactorial.sh ROLE LISTEN [URL...]
# By default with Debian's Go 1.19 where installed (GOPATH mode, nothing
# downloaded; GOFACTORIAL_GO names another go command). GOFACTORIAL_RELEASE=go1.24
# (any release of scenarios/go-releases/releases.tsv) builds with that release
# and its grpc-go instead (scripts/go-releases.sh). GOFACTORIAL_BUILDMODE=pie
# builds a position-independent one, =stripped one without symbols or DWARF.
set -e
here=$(dirname "$0")
src=$here/gofactorial.go
mode=${GOFACTORIAL_BUILDMODE:-exe}
if [ -n "${GOFACTORIAL_RELEASE:-}" ]; then
  bin=$("$here/../../scripts/go-releases.sh" build "$GOFACTORIAL_RELEASE" "$mode")
  if [ "${GOFACTORIAL_PRIVATE_MOUNT:-}" = 1 ]; then
    # As a container runs it: from a mount namespace of its own, at a path that exists only there
    # (a tmpfs mounted in that namespace alone), so only /proc/PID/exe leads to it from outside.
    private=${TMPDIR:-/tmp}/loupe-private-mount
    mkdir -p "$private"
    exec unshare --mount --propagation private sh -c 'mount -t tmpfs loupe "$1" && cp "$2" "$1/gofactorial" && shift 2 && exec "$0/gofactorial" "$@"' "$private" "$private" "$bin" "$@"
  fi
  exec "$bin" "$@"
fi
go=${GOFACTORIAL_GO:-/usr/lib/go-1.19/bin/go}
[ -x "$go" ] || go=go
release=$("$go" env GOVERSION)
dir=${TMPDIR:-/tmp}/loupe-gofactorial-$(sha256sum "$src" | cut -c1-12)-$release-$mode
if [ ! -x "$dir/gofactorial" ]; then
  mkdir -p "$dir"
  GOCACHE="${GOCACHE:-$dir/cache}" GO111MODULE=off GOPATH=/usr/share/gocode "$go" build -buildmode="$mode" -o "$dir/gofactorial.$$" "$src"
  mv "$dir/gofactorial.$$" "$dir/gofactorial"
fi
exec "$dir/gofactorial" "$@"
