#!/usr/bin/env bash
# Build the wheel and the sdist (python -m build), install the wheel alone in a clean
# venv and smoke-test it: build example-registry, scaffold with init and build that, and
# verify the result. Catches what the editable install hides (missing package data).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/appshelf-package.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet build
"$work/tools/bin/python" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
ls "$work/dist"/appshelf-*.whl "$work/dist"/appshelf-*.tar.gz >/dev/null
"$PYTHON" -m venv "$work/clean"
"$work/clean/bin/python" -m pip install --quiet "$work"/dist/appshelf-*.whl
cd "$work"  # not the checkout: the installed wheel must stand on its own
export APPSHELF_STATE_DIR="$work/state"  # a fresh rollback state, not the user's
app="$work/clean/bin/appshelf"
"$app" build "$repo/example-registry" -o "$work/site" >/dev/null
"$app" init "$work/new" >/dev/null
"$app" build "$work/new" -o "$work/new-site" >/dev/null
"$app" verify "$work/new-site" --allow-dev-key >/dev/null
echo "package check: $(cd "$work/dist" && ls | tr "\n" " ")built; the wheel passed the smoke test"
