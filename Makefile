# The two commands a fresh machine needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := demo
.PHONY: demo test test-all bench build check deps system-deps clean

NPM := npm --no-audit --no-fund --loglevel=error

# npm ci only when the lock file changed since the last install.
node_modules/.loupe-installed: package-lock.json
	$(NPM) ci
	@touch $@

deps: node_modules/.loupe-installed

system-deps:
	@scripts/system-deps.sh

build: deps
	npx tsc -p tsconfig.json

# Type-checks tests and benchmarks too (the build leaves them out).
check: deps
	npx tsc -p tsconfig.check.json

demo: build
	node dist/cli/main.js replay captures/factorial.loupe --format tree

test: system-deps build check
	npx vitest run

test-all: test

bench: build
	@for b in bench/*.bench.ts; do echo "== $$b"; npx tsx $$b || exit 1; done

clean:
	rm -rf dist node_modules
