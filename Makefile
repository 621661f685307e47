# The two commands a fresh machine needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := demo
.PHONY: demo test test-all stress fuzz bench build check format deps system-deps py-deps go-tools kafka-broker go-releases bpf native clean

NPM := npm --no-audit --no-fund --loglevel=error

# npm ci only when the lock file changed since the last install.
node_modules/.loupe-installed: package-lock.json
	$(NPM) ci
	@touch $@

deps: node_modules/.loupe-installed

system-deps:
	@scripts/system-deps.sh

py-deps:
	@scripts/py-deps.sh

go-tools:
	@scripts/go-tools.sh

kafka-broker:
	@scripts/kafka-broker.sh

# gofactorial built with every Go release of scenarios/go-releases/releases.tsv (cached in build/go-releases).
go-releases:
	@scripts/go-releases.sh prebuild

# eBPF objects, CO-RE against the running kernel's BTF. Where clang or bpftool
# is missing (a non-root machine that could not install them) this says so and
# the live tests report themselves skipped with that reason.
BPF_SOURCES := $(wildcard bpf/*.bpf.c)
BPF_OBJECTS := $(patsubst bpf/%.bpf.c,build/bpf/%.bpf.o,$(BPF_SOURCES))
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

build/bpf/vmlinux.h:
	@mkdir -p build/bpf
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

build/bpf/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.bpf.h) bpf/events.h build/bpf/vmlinux.h
	clang -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(BPF_ARCH) -Wall -Werror -Ibuild/bpf -Ibpf -c $< -o $@

# inject.bpf.c built so that a header insertion fails after its room was made: the test that the
# request then goes out exactly as written.
build/bpf/inject-pull-fails.bpf.o: bpf/inject.bpf.c $(wildcard bpf/*.bpf.h) bpf/events.h build/bpf/vmlinux.h
	clang -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(BPF_ARCH) -DLOUPE_TEST_PULL_FAILS -Wall -Werror -Ibuild/bpf -Ibpf -c $< -o $@

bpf:
	@if command -v clang >/dev/null && command -v bpftool >/dev/null && [ -e /sys/kernel/btf/vmlinux ]; then \
	  $(MAKE) --no-print-directory $(BPF_OBJECTS) build/bpf/inject-pull-fails.bpf.o; \
	else echo "bpf: clang, bpftool or kernel BTF missing: BPF objects not built (live tests will be skipped)"; fi

# The libbpf addon, against the headers of the node that runs it.
NODE_DIR := $(shell dirname $$(dirname $$(command -v node)))
native/build/Release/loupe_bpf.node: native/loupe_bpf.cc native/binding.gyp node_modules/.loupe-installed
	cd native && ../node_modules/.bin/node-gyp rebuild --nodedir=$(NODE_DIR) --loglevel=warn

native:
	@if [ -e /usr/include/bpf/libbpf.h ]; then \
	  $(MAKE) --no-print-directory native/build/Release/loupe_bpf.node; \
	else echo "native: libbpf headers missing: addon not built (live tests will be skipped)"; fi

build: deps bpf native
	npx tsc -p tsconfig.json

# Type-checks tests and benchmarks too (the build leaves them out), lints them (eslint.config.mjs) and checks
# their layout is the formatter's (`make format` writes it).
FORMATTED = "src/**/*.ts" "test/**/*.ts" "bench/**/*.ts" "scripts/**/*.ts"
check: deps
	npx tsc -p tsconfig.check.json
	npx eslint src test bench scripts
	npx prettier --check $(FORMATTED)

format: deps
	npx prettier --write $(FORMATTED)

demo: build
	node dist/cli/main.js replay captures/factorial.loupe --format tree
	node dist/cli/main.js replay captures/gofactorial-live.loupe --format tree

test: system-deps py-deps go-tools kafka-broker build check go-releases
	npx vitest run
	LOUPE_TESTS_ALONE=1 npx vitest run

test-all: test

# Every parser's fuzz target for 200,000 mutated inputs (make test runs 5,000); FUZZING.md has the results.
fuzz: deps
	npx tsx scripts/fuzz.ts 200000

# The suite three times under stress-ng on every CPU: it must not flake on a loaded machine.
stress:
	scripts/stress-test.sh 3

bench: build
	@for b in bench/*.bench.ts; do echo "== $$b"; npx tsx $$b || exit 1; done

clean:
	rm -rf dist build native/build node_modules
