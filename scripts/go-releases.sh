#!/usr/bin/env bash
# The Go release matrix (scenarios/go-releases/releases.tsv):
#   go-releases.sh list                        the releases, one per line
#   go-releases.sh tidy [RELEASE...]           write each release's go.mod and go.sum (needs the module proxy)
#   go-releases.sh build RELEASE [exe|pie|stripped]
#                                              build gofactorial with that release, print the binary's path
#   go-releases.sh table                       the README's table of supported releases, in Markdown
#   go-releases.sh prebuild                    build every release, exe and stripped, the newest pie too (make test, before the
#                                              tests: builds running beside live tests would starve them)
# A build is kept under build/go-releases by the hash of its source, go.sum and
# mode: built once per machine. Toolchains come from the Go module proxy
# (GOTOOLCHAIN=goX.Y.Z, about 70 MB and 5 s each); go1.19 is Debian's, in
# GOPATH mode with golang-google-grpc-dev, nothing downloaded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
matrix=$root/scenarios/go-releases
src=$root/scenarios/services/gofactorial.go
field() { awk -v r="$1" -v f="$2" '$1 == r { print $f }' "$matrix/releases.tsv"; }
releases() { grep -v '^#' "$matrix/releases.tsv" | cut -f1; }

case "${1:-}" in
list)
  releases
  ;;
tidy)
  shift
  for release in ${@:-$(releases)}; do
    toolchain=$(field "$release" 2)
    grpc=$(field "$release" 3)
    [ "$toolchain" = debian ] && continue
    dir=$matrix/$release
    mkdir -p "$dir"
    tmp=$(mktemp -d)
    cp "$src" "$tmp/"
    printf 'module loupe.dev/gofactorial\n\ngo %s\n' "${release#go}" > "$tmp/go.mod"
    (cd "$tmp" && GOTOOLCHAIN=$toolchain GOFLAGS=-mod=mod go get "google.golang.org/grpc@$grpc" github.com/golang/protobuf@v1.5.4 >/dev/null 2>&1 && GOTOOLCHAIN=$toolchain go mod tidy >/dev/null 2>&1)
    cp "$tmp/go.mod" "$tmp/go.sum" "$dir/"
    rm -rf "$tmp"
    echo "$release: $(grep 'google.golang.org/grpc ' "$dir/go.mod" | awk '{print $2}')"
  done
  ;;
build)
  release=${2:?release}
  mode=${3:-exe}
  toolchain=$(field "$release" 2)
  [ -n "$toolchain" ] || { echo "go-releases: $release is not in $matrix/releases.tsv" >&2; exit 2; }
  case $mode in
    exe) flags=(-buildmode=exe) ;;
    pie) flags=(-buildmode=pie) ;;
    stripped) flags=(-buildmode=exe '-ldflags=-s -w') ;;
    *) echo "go-releases: mode $mode is not exe, pie or stripped" >&2; exit 2 ;;
  esac
  if [ "$toolchain" = debian ]; then
    sum=$(cat "$src" | sha256sum | cut -c1-12)
  else
    sum=$(cat "$src" "$matrix/$release/go.sum" | sha256sum | cut -c1-12)
  fi
  out=$root/build/go-releases/$release-$mode-$sum
  if [ ! -x "$out/gofactorial" ]; then
    mkdir -p "$out"
    if [ "$toolchain" = debian ]; then
      GOCACHE="$out/cache" GO111MODULE=off GOPATH=/usr/share/gocode /usr/lib/go-1.19/bin/go build "${flags[@]}" -o "$out/gofactorial.$$" "$src" >&2
    else
      work=$out/src
      mkdir -p "$work"
      cp "$src" "$matrix/$release/go.mod" "$matrix/$release/go.sum" "$work/"
      (cd "$work" && GOTOOLCHAIN=$toolchain GOFLAGS=-mod=readonly go build "${flags[@]}" -o "$out/gofactorial.$$" .) >&2
    fi
    mv "$out/gofactorial.$$" "$out/gofactorial"
  fi
  echo "$out/gofactorial"
  ;;
table)
  echo '| Go release | toolchain built with | grpc-go | header map |'
  echo '|---|---|---|---|'
  grep -v '^#' "$matrix/releases.tsv" | while IFS=$'\t' read -r release toolchain grpc; do
    if [ "$toolchain" = debian ]; then toolchain="Debian 12's golang-1.19-go (1.19.8)"; grpc="Debian 12's golang-google-grpc-dev (1.33.3)"; fi
    minor=${release#go1.}
    if [ "$minor" -ge 24 ]; then map='swiss table'; else map='buckets'; fi
    echo "| $release | $toolchain | $grpc | $map |"
  done
  ;;
prebuild)
  if ! command -v go >/dev/null; then
    echo "go-releases: go is not installed: the release matrix tests will say they are skipped" >&2
    exit 0
  fi
  # Every release with and without symbols (the offsets table's test), the newest also position-independent
  # (the matrix test's); a -buildmode=pie build compiles every package anew, about 40 s.
  newest=$(releases | tail -1)
  for release in $(releases); do
    for mode in exe stripped $([ "$release" = "$newest" ] && echo pie); do
      "$0" build "$release" "$mode" >/dev/null || echo "go-releases: $release ($mode) did not build: its tests will fail and say why" >&2
    done
  done
  ;;
*)
  echo "usage: go-releases.sh list | tidy [RELEASE...] | build RELEASE [exe|pie|stripped] | prebuild" >&2
  exit 2
  ;;
esac
