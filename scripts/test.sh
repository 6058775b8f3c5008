#!/usr/bin/env bash
# Tests: set up .venv-test (tf, flax and the reference package) and run, sharing the machine's cores:
#   1. the project's unit tests (tests/, without the slow marker), in the background;
#   2. the conformance suite (ci profile) against our implementations (tf, flax), transformers' own
#      classes (hf-tf, hf-flax) and keras-hub's ElectraBackbone (the first outside implementation: a
#      bare encoder with its own call convention), one pytest process per implementation, two at a
#      time. Ours must pass everything; the others' results must match conformance/expectations/;
#   3. a diff of our results against the committed baselines (conformance/baselines/), under the spec's
#      drift gate (tolerance.regression.drift), with the CPU instruction set capped (see below).
# Extra arguments go to the unit-test pytest run (e.g. -k tokenizer, -m "" for the slow tests too).
source "$(dirname "$0")/_venv.sh" .venv-test "test"
mkdir -p reports
start=$SECONDS
# One JAX compilation cache for every process below: the unit tests, our Flax implementation and
# transformers' Flax classes draw the same shapes, so most programs compile once instead of three times.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$PWD/.cache/jax}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1
# Another machine's kernels on every run: the committed baselines (conformance/baselines/) and golden
# data were made at the full instruction set of the development machine (AVX2). Other CPUs run other
# kernels, which sum in another order, so this run caps the instruction set of oneDNN (TensorFlow's
# kernels: SSE4.1), PyTorch (no SIMD dispatch) and XLA's code generation (AVX; lower breaks float16,
# which needs F16C; tests/test_cross_isa.py runs the Flax numeric families at SSE4.2): the gates below
# are the ones a user's machine meets. ELECTRA_ISA_LIMIT=none keeps the machine's own (how baselines
# are made; see the README).
isa_flags=""
default_limit=avx; [ "$(uname -m)" = x86_64 ] || default_limit=none  # the caps name x86 instruction sets
case "${ELECTRA_ISA_LIMIT:-$default_limit}" in
  avx) isa_flags=" --xla_cpu_max_isa=AVX"
       export ONEDNN_MAX_CPU_ISA="${ONEDNN_MAX_CPU_ISA:-SSE41}" ATEN_CPU_CAPABILITY="${ATEN_CPU_CAPABILITY:-default}" ;;
  none) ;;
  *) echo "ELECTRA_ISA_LIMIT must be avx or none, not '$ELECTRA_ISA_LIMIT'" >&2; exit 2 ;;
esac
# The test models are tiny: compiling dominates running, so XLA skips its CPU code optimisations
# (about 40% less time for the Flax runs; the programs and their numerics stay XLA's).
export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0$isa_flags}"
# Unit tests: two processes over halves of the files (about equal time), at a lower CPU priority, so
# that the conformance runs (the longer chain) go first and the unit tests fill the gaps and the end.
unit_half_1=(tests/test_flax_*.py tests/test_checkpoint_interop.py)
mapfile -t unit_half_2 < <(ls tests/test_*.py | grep -v -e '/test_flax_' -e '/test_checkpoint_interop.py')
unit_tests=()
for half in 1 2; do
  files="unit_half_$half[@]"
  ( nice -n 10 python -m pytest "${!files}" -q -m "not slow" -p no:cacheprovider --durations=8 "$@"
    rc=$?; [ "$rc" -eq 5 ] && rc=0; exit "$rc" ) > "reports/unit-tests-$half.log" 2>&1 &  # 5: -k selected none here
  unit_tests+=($!)
done
status=0
electra-conformance run --impl flax --impl tf --impl hf-flax --impl hf-tf --impl keras-hub --jobs 2 --devices cpu --profile ci \
  --report reports/ci.json || status=1
for impl in tf flax; do
  electra-conformance diff "conformance/baselines/$impl.json" reports/ci.json --impl "$impl" || status=1
done
unit_status=0
for pid in "${unit_tests[@]}"; do
  wait "$pid" || unit_status=$?
done
for half in 1 2; do
  echo "---- unit tests, part $half (reports/unit-tests-$half.log)"
  cat "reports/unit-tests-$half.log"
done
[ "$unit_status" -eq 0 ] || status=1
echo "test.sh: $((SECONDS - start)) s, exit status $status"
exit $status
