#!/usr/bin/env bash
# Build what production runs into DIR:
#   DIR/venv              a fresh virtual environment: the locked runtime dependencies
#                         (requirements/build.txt and runtime.txt, hashes checked) and the
#                         app's wheel with its catalogues compiled; no -e, no dev tools
#   DIR/gunicorn.conf.py  gunicorn's settings (read from the environment at start)
# Serve it from any directory with `DIR/venv/bin/gunicorn -c DIR/gunicorn.conf.py`.
# The Dockerfile runs this script, and tests/test_production_install.py runs it and serves
# what it built, so the container is what CI tested.
set -euo pipefail

if (($# != 1)); then
  echo "usage: $0 DIR" >&2
  exit 2
fi
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
target="$(cd "$1" && pwd)"
python="${PYTHON:-python3}"

# --clear: whatever an earlier build left there is gone, so the result is the lock alone.
"$python" -m venv --clear "$target/venv"
pip=("$target/venv/bin/python" -m pip --quiet --disable-pip-version-check)
"${pip[@]}" install --require-hashes -r "$source_dir/requirements/build.txt"
"${pip[@]}" install --require-hashes -r "$source_dir/requirements/runtime.txt"

# The wheel is built from a clean copy, so no bytecode or stale catalogue of the checkout
# travels with it, and the checkout is left as it was.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
for part in pyproject.toml README.md LICENSE app templates static migrations; do
  cp -R "$source_dir/$part" "$stage/"
done
find "$stage" \( -name __pycache__ -o -name '*.mo' \) -prune -exec rm -rf {} +
# The .mo files are build output: without them German, French and Japanese show English.
"$target/venv/bin/pybabel" -q compile -d "$stage/app/translations"
# Built by the locked setuptools just installed, not one fetched for the build.
"${pip[@]}" install --no-deps --no-build-isolation "$stage"
"${pip[@]}" check

cp "$source_dir/gunicorn.conf.py" "$target/gunicorn.conf.py"
echo "Built $target: run $target/venv/bin/gunicorn -c $target/gunicorn.conf.py"
