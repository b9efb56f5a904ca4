#!/usr/bin/env bash
# What a user of `pip install genopred` gets, checked: installs target/wheels/genopred-*.whl
# (scripts/build-wheel.sh) into a fresh virtual environment, then, with only that environment
# and the system's own folders on PATH (no cargo, no rustc), runs `genopred cv` on the bundled
# wheat599 and reads the results with pandas (docs/examples/read_results.py) and, where Rscript
# and jsonlite are installed, with R (docs/examples/read_results.R). The run's folder, with its
# report.html, is left in target/wheel-check/cv.
set -euo pipefail
cd "$(dirname "$0")/.."
work=target/wheel-check
rm -rf "$work"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check target/wheels/genopred-*.whl pandas
venv_bin=$(cd "$work/venv/bin" && pwd)
clean_path="$venv_bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
run() { env -i HOME="$HOME" PATH="$clean_path" "$@"; }
# Nothing of Rust on that PATH (a Rust toolchain in /usr/local/bin would defeat the check).
if run sh -c 'command -v cargo || command -v rustc'; then
  echo "error: a Rust toolchain is on the clean PATH" >&2
  exit 1
fi
echo "genopred from the wheel: $(run sh -c 'command -v genopred')"
run genopred --version
run genopred cv --geno fixtures/wheat599/wheat599.bed --pheno fixtures/wheat599/pheno.csv \
  --trait yield_env1 --model gblup --out "$work/cv"
run python docs/examples/read_results.py "$work/cv"
if command -v Rscript >/dev/null && Rscript -e 'library(jsonlite)' >/dev/null 2>&1; then
  Rscript docs/examples/read_results.R "$work/cv"
else
  echo "Rscript with jsonlite not installed: the R example was not run"
fi
