#!/usr/bin/env bash
# Tests: set up .venv-test (tf, flax and the reference package) and run, sharing the machine's cores:
#   1. the project's unit tests (tests/, without the slow marker), in the background;
#   2. the conformance suite (ci profile, and the distribution family on 8 virtual CPU devices) against our
#      implementations (tf, flax), keras-hub's ElectraBackbone (the first outside implementation: a bare
#      encoder with its own call convention) and transformers' own classes (hf-tf, hf-flax) on the bare
#      encoder and the masked-LM head (every family but distribution, every adapter path; that run records
#      its -k as narrowed, and scripts/compat.sh runs all their classes and families), two processes at a time. Ours must pass
#      everything; the others' results must match conformance/expectations/;
#   3. a diff of our results against the committed baselines (conformance/baselines/), and of
#      transformers' against the current compat stack's report (compat/reports/current.json.gz), under the
#      spec's drift gate (tolerance.regression.drift), with the CPU instruction set capped (see below).
# Extra arguments go to the unit-test pytest run (e.g. -k tokenizer, -m "" for the slow tests too).
source "$(dirname "$0")/_venv.sh" .venv-test "test"
mkdir -p reports
start=$SECONDS
# One JAX compilation cache for every process below: the unit tests, our Flax implementation and
# transformers' Flax classes draw the same shapes, so most programs compile once instead of three times.
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$PWD/.cache/jax}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1
# The instruction-set cap and XLA flags every committed report is made with (see the script).
source "$(dirname "$0")/_kernels.sh"
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
# --devices cpu:8: every family on the CPU, and the distribution family on a mesh of 8 virtual CPU devices
# (measured: the other families' numbers are the same as with --devices cpu).
# Transformers' classes in CI: the bare encoder (TFElectraModel / FlaxElectraModel) and the masked-LM head,
# with every class-independent test but the distribution family. The six other heads cost as much again and
# exercise the same adapter paths; the distribution family costs a fifth of the run (transformers' TF classes
# under MirroredStrategy on 8 virtual CPUs: 66 s of 187). scripts/compat.sh runs them all, and its committed
# report is what the diffs below compare with.
hf_tests="not (ForPreTraining or ForSequenceClassification or ForTokenClassification or ForQuestionAnswering \
or ForMultipleChoice or ForCausalLM) and not test_distribution"
# Two lanes, never more than two conformance processes (more oversubscribe the cores: TF's and XLA's thread
# pools then burn CPU waiting; a fresh clone measured 17% more CPU with three): flax alone in one, the longest;
# tf, keras-hub and transformers' classes one after another in the other.
# Ours are merged into reports/ci.json; transformers' narrowed run stays apart (reports/ci-hf.json), so that
# its -k never counts as a narrowing of ours.
( electra-conformance run --impl flax --jobs 1 --devices cpu:8 --profile ci --report reports/ci-flax.json ) \
  > reports/ci-flax.log 2>&1 &
flax_run=$!
electra-conformance run --impl tf --impl keras-hub --jobs 1 --devices cpu:8 --profile ci \
  --report reports/ci-tf.json || status=1
electra-conformance run --impl hf-tf --impl hf-flax --jobs 1 --devices cpu:8 --profile ci -k "$hf_tests" \
  --report reports/ci-hf.json || status=1
wait "$flax_run" || status=1
echo "---- flax (reports/ci-flax.log)"
cat reports/ci-flax.log
electra-conformance merge reports/ci-flax.json reports/ci-tf.json -o reports/ci.json || status=1
for impl in tf flax; do
  electra-conformance diff "conformance/baselines/$impl.json" reports/ci.json --impl "$impl" || status=1
done
# The committed report of the current compat stack (compat/reports/current.json.gz, made by scripts/compat.sh
# current on the same releases) agrees with this run for transformers' classes: no new failure, no drift.
for impl in hf-tf hf-flax; do
  electra-conformance diff compat/reports/current.json.gz reports/ci-hf.json --impl "$impl" || status=1
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
