#!/bin/sh
# The grpc-go examples Debian ships with golang-google-grpc-dev (route_guide:
# all four kinds of call; helloworld), built once per Go release with
# Debian's Go 1.19 where installed, in GOPATH mode (nothing downloaded),
# then run in this process:
#   grpc-examples.sh route_guide/server|route_guide/client|helloworld/greeter_server|helloworld/greeter_client [ARGS...]
#   grpc-examples.sh --build WHAT   only builds it
set -e
build_only=
[ "$1" = --build ] && { build_only=1; shift; }
examples=/usr/share/doc/golang-google-grpc-dev/examples
go=${GOFACTORIAL_GO:-/usr/lib/go-1.19/bin/go}
[ -x "$go" ] || go=go
release=$("$go" env GOVERSION)
dir=${TMPDIR:-/tmp}/loupe-grpc-examples-$release
what=$1
shift
bin="$dir/bin/$(echo "$what" | tr / -)"
if [ ! -x "$bin" ]; then
  # The examples import themselves as google.golang.org/grpc/examples/...: a GOPATH whose grpc is Debian's, linked, plus them.
  tree="$dir/gopath.$$/src/google.golang.org/grpc"
  mkdir -p "$tree" "$dir/bin"
  cp -rs /usr/share/gocode/src/google.golang.org/grpc/. "$tree/"
  cp -r "$examples" "$tree/examples"
  GOCACHE="${GOCACHE:-$dir/cache}" GO111MODULE=off GOPATH="$dir/gopath.$$:/usr/share/gocode" "$go" build -o "$bin.$$" "google.golang.org/grpc/examples/$what"
  mv "$bin.$$" "$bin"
  rm -rf "$dir/gopath.$$"
fi
[ -n "$build_only" ] && exit 0
exec "$bin" "$@"
