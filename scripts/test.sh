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
./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
