#!/usr/bin/env bash
# One-shot accelerator check (the workplace's GPU machine; JAX with CUDA there, no TensorFlow):
#   1. the conformance suite against impl_flax with --devices gpu --require-devices, in two parts
#      (numerics+dtypes first, then invariances/semantics/losses/outputs/architecture), each with
#      its own deadline (--deadline: tests not started by then are skipped) and JSON report;
#   2. benchmarks/bench_flax.py (ours vs transformers' FlaxElectraModel) on the GPU.
# Packages that machine lacks travel as wheels in .whl/ (jsonschema and its needs, transformers
# 4.57.6 with the huggingface_hub and tokenizers versions it accepts): see the device README.
#     bash scripts/device_check.sh OUT_DIR [PART_SECONDS] [BENCH_SECONDS]    (DEVICE=cpu: a dry run here)
# OUT_DIR receives six files (the device tool returns at most eight): the two JSON reports, their
# pytest logs, the benchmark's output and this script's console log.
set -u
out=${1:?usage: device_check.sh OUT_DIR [PART_SECONDS] [BENCH_SECONDS]}
part_s=${2:-200}
bench_s=${3:-120}
work=$(mktemp -d)
mkdir -p "$out"
exec > >(tee "$out/console.log") 2>&1
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi -L
python3 - <<'EOF'
import jax, flax, numpy, sys
print("python", sys.version.split()[0], "jax", jax.__version__, "flax", flax.__version__, "numpy", numpy.__version__)
print("devices", jax.devices())
EOF
# The plugin is registered by `pip install`; without it, load it by module name.
plugin=()
python3 -c "import importlib.metadata as m, sys; sys.exit(not any(e.name == 'electra_conformance' for e in m.entry_points(group='pytest11')))" \
  || plugin=(--pytest-arg=-p --pytest-arg=conformance.plugin)
run_part() {  # name, -k expression; tests not started within part_s are skipped, the report is kept
  timeout "$((part_s + 90))" python3 -m conformance.cli run --deadline "$part_s" --impl flax --devices "${DEVICE:-gpu}" --require-devices --profile ci \
    -k "$2" "${plugin[@]}" --report "$work/gpu-$1.json" 2>&1 | tail -40
  cp "$work/gpu-$1.json" "$out/" 2>/dev/null
  cp "$work/gpu-$1.parts/flax.log" "$out/gpu-$1.log" 2>/dev/null
}
run_part numerics "numerics or dtypes or gradients"
timeout "$bench_s" python3 benchmarks/bench_flax.py --iters 20 --configs small,base 2>&1 | grep -v Warning | tee "$out/bench-flax-gpu.txt"
run_part behaviour "invariances or semantics or losses or outputs or architecture or decisions"
ls -la "$out"
rm -rf "$work"
