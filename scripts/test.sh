#!/usr/bin/env bash
# Tests: set up .venv-test (tf, flax and the reference package) and run
#   1. the project's unit tests (tests/),
#   2. the conformance suite against our implementations, diffed against the committed baselines,
#   3. the conformance suite against transformers' own TF/Flax classes, checked against their
#      expectations files.
source "$(dirname "$0")/_venv.sh" .venv-test "test"
status=0
python -m pytest tests -q -m "not slow" -p no:cacheprovider "$@" || status=1
mkdir -p reports
electra-conformance run --impl tf --impl flax --devices cpu --profile ci --report reports/ci-ours.json || status=1
for impl in tf flax; do
  electra-conformance diff "conformance/baselines/$impl.json" reports/ci-ours.json --impl "$impl" || status=1
done
electra-conformance run --impl hf-tf --impl hf-flax --devices cpu --profile ci --report reports/ci-hf.json || status=1
exit $status
