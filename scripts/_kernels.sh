# Shared by scripts/test.sh and scripts/compat.sh: the kernels every committed report is made with.
# usage: [ELECTRA_ISA_LIMIT=avx|none] source scripts/_kernels.sh   (default: avx on x86_64)
#
# Another machine's kernels on every run: the committed baselines (conformance/baselines/) and golden
# data were made at the full instruction set of the development machine (AVX2). Other CPUs run other
# kernels, which sum in another order, so a capped run limits the instruction set of oneDNN (TensorFlow's
# kernels: SSE4.1), PyTorch (no SIMD dispatch) and XLA's code generation (AVX; lower breaks float16,
# which needs F16C; tests/test_cross_isa.py runs the Flax numeric families at SSE4.2): the gates are
# the ones a user's machine meets. ELECTRA_ISA_LIMIT=none keeps the machine's own (how baselines are
# made; see the README). The XLA of TensorFlow 2.15 and 2.18 and of jaxlib 0.4.13 has no --xla_cpu_max_isa,
# so the older compat stacks run uncapped (compat/stacks.yaml: isa_limit).
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
