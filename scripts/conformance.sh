#!/usr/bin/env bash
# Main job: set up .venv (tf + flax extras) and run the conformance suite against impl_tf and
# impl_flax on CPU (the distribution family on a mesh of 8 virtual CPU devices); prints the conformance matrix and writes reports/conformance.{json,md,html}.
# Extra arguments go to `electra-conformance run` (e.g. --devices gpu --profile thorough).
source "$(dirname "$0")/_venv.sh" .venv "tf,flax"
# The suite's models are tiny: compiling dominates running, so XLA skips its CPU code optimisations
# (as scripts/test.sh; about 40% less time for the Flax families). A caller's XLA_FLAGS win.
export XLA_FLAGS="${XLA_FLAGS:---xla_backend_optimization_level=0}"
exec electra-conformance run --impl tf --impl flax --devices cpu:8 --profile ci \
  --report reports/conformance.json "$@"
