#!/usr/bin/env bash
# Builds the `genopred` wheel: the binary, with the default features (burn's flex CPU backend),
# packaged by maturin (crates/cli/pyproject.toml) into target/wheels/.
#
#   scripts/build-wheel.sh                  # the release wheel (optimised, stripped)
#   scripts/build-wheel.sh --profile dev    # quicker to build; what CI installs and runs
#
# Needs `maturin` (>= 1.9, < 2) and `wheel` on PATH: pip install 'maturin>=1.9,<2' wheel.
#
# Tags: the platform tag is maturin's audit of the binary, the oldest manylinux whose glibc has
# every symbol it uses (on Debian 12, manylinux_2_35). bed-reader's numpy bindings bring pyo3
# into the build graph, so maturin tags a binary wheel for the interpreter that built it
# (cp311-cp311); the binary links no libpython (checked below), so the wheel is retagged
# py3-none: one wheel for every Python 3 on that platform.
set -euo pipefail
cd "$(dirname "$0")/.."
build=(--release --strip)
if [ "${1:-}" = "--profile" ]; then
  build=(--profile "${2:?--profile needs a name}")
fi
rm -rf target/wheels
maturin build "${build[@]}" --locked -m crates/cli/Cargo.toml --out target/wheels
wheel=$(ls target/wheels/genopred-*.whl)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m zipfile -e "$wheel" "$scratch"
binary=$(ls "$scratch"/genopred-*.data/scripts/genopred)
if ldd "$binary" | grep -q libpython; then
  echo "error: $binary links libpython; its wheel cannot be tagged py3-none" >&2
  exit 1
fi
python3 -m wheel tags --python-tag py3 --abi-tag none --remove "$wheel" >/dev/null
ls target/wheels/genopred-*.whl
