#!/usr/bin/env bash
# Python packages the tests drive as third-party clients (test/requirements.txt),
# from PyPI into build/venv, only when the list changed. Without the network it
# says so, and the tests that need them report themselves skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/venv
stamp=$venv/.loupe-installed
if [ -e "$stamp" ] && cmp -s test/requirements.txt "$stamp"; then exit 0; fi
if ! /usr/bin/python3 -m venv "$venv" 2>/dev/null; then
  echo "py-deps: python3 -m venv failed (python3-venv missing?): Python clients not installed" >&2
  exit 0
fi
if "$venv/bin/pip" install --disable-pip-version-check -q -r test/requirements.txt; then
  cp test/requirements.txt "$stamp"
else
  echo "py-deps: pip could not install test/requirements.txt: the tests that need it are skipped" >&2
fi
