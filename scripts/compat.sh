#!/usr/bin/env bash
# Rebuild and rerun one pinned stack (compat/stacks.yaml): create .venv-compat-NAME from compat/NAME.lock
# (exact pins, --no-deps), install this project into it without dependencies, run the conformance suite
# (ci profile) against the stack's implementations (an implementation whose framework release the stack
# lacks is recorded as not run), and diff the new report against the committed one.
#   bash scripts/compat.sh NAME              -> reports/compat/NAME.json, diffed with compat/reports/NAME.json.gz
#   bash scripts/compat.sh NAME --record     -> also replaces compat/reports/NAME.json.gz and docs/compat.md
# Extra arguments after NAME (other than --record) go to `electra-conformance run`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stack="${1:-}"; shift || true
if [ -z "$stack" ] || [ ! -f "compat/$stack.lock" ]; then
  echo "usage: bash scripts/compat.sh NAME [--record] [electra-conformance run arguments]" >&2
  echo "stacks: $(ls compat/*.lock | xargs -n1 basename | sed 's/\.lock$//' | tr '\n' ' ')" >&2
  exit 2
fi
record=0; run_args=()
for arg in "$@"; do
  if [ "$arg" = --record ]; then record=1; else run_args+=("$arg"); fi
done
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
venv=".venv-compat-$stack"
stamp="$venv/.installed-$(sha1sum < "compat/$stack.lock" | cut -c1-12)"
start=$SECONDS
if [ ! -f "$stamp" ]; then
  echo "[compat] building $venv from compat/$stack.lock"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --no-deps -r "compat/$stack.lock" 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "import spec, electra_core, conformance"
  touch "$stamp"
  echo "[compat] built in $((SECONDS - start)) s"
fi
export PATH="$root/$venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
impls="$(python -m conformance.stacks "$stack" impls)"
ELECTRA_ISA_LIMIT="$(python -m conformance.stacks "$stack" isa_limit)"
source scripts/_kernels.sh
# one compilation cache for every stack and the test command (its keys include the jax release)
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$root/.cache/jax}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1
mkdir -p reports/compat
run_start=$SECONDS
status=0
electra-conformance run --impl "$impls" --jobs 2 --devices cpu:8 --profile ci \
  --report "reports/compat/$stack.json" "${run_args[@]}" || status=$?
echo "[compat] $stack: run took $((SECONDS - run_start)) s (exit status $status)"
[ -f "reports/compat/$stack.json" ] || exit "${status:-1}"
if [ -f "compat/reports/$stack.json.gz" ]; then
  echo "[compat] changes against the committed compat/reports/$stack.json.gz:"
  electra-conformance diff "compat/reports/$stack.json.gz" "reports/compat/$stack.json" || true
fi
if [ "$record" = 1 ]; then
  gzip -9 -n -c "reports/compat/$stack.json" > "compat/reports/$stack.json.gz"  # -n: no name or time inside
  electra-conformance compat-matrix -o docs/compat.md
  echo "[compat] recorded compat/reports/$stack.json.gz and rendered docs/compat.md"
fi
exit "$status"
