#!/usr/bin/env bash
# The wheelhouse a Pi installs from: the project's wheel plus aarch64 / CPython 3.11 wheels of
# every dependency (all publish manylinux aarch64 wheels, so nothing compiles on the Pi or under
# emulation). Used by `make image` and by the Ansible role (pigeon_node_wheelhouse).
# Usage: image/wheels.sh [OUT_DIR]  (default build/wheels/aarch64)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/build/wheels/aarch64}
rm -rf "$out" && mkdir -p "$out"
"$repo/.venv/bin/pip" wheel --quiet --no-deps -w "$out" "$repo"
"$repo/.venv/bin/pip" download --quiet --cache-dir "$repo/image/cache/pip" --only-binary=:all: \
    --python-version 3.11 --implementation cp --platform manylinux_2_28_aarch64 \
    --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
    -d "$out" "$out"/pigeon_node-*.whl
ls "$out" | sed 's/^/   /'
