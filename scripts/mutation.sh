#!/usr/bin/env bash
# Mutation score of our implementations against the conformance suite (opt-in; long): cosmic-ray makes
# one-change mutants of the given files (a comparison, an operator, a number, a boolean, ...), and each
# mutant is killed when the conformance suite (ci profile) fails on it, or else the package's unit tests.
#   bash scripts/mutation.sh [--sample N] PATH [PATH ...]   e.g. impl_flax/modeling/layers.py, impl_tf, electra_core
#
# - --sample N runs a random sample of N of the mutants (the first N of one fixed random order, so the same
#   code draws the same sample) and prints the kill rate with its 95% interval; the others are set aside as
#   outside the sample. A later call with a larger N, or without --sample, goes on in the same session: the
#   results already run are kept.
# - The mutants are made in a copy of the checkout (.cache/mutation/tree-KEY: tracked and untracked files,
#   without ignored ones), never in this tree; KEY hashes the mutated files, the families and implementations
#   the test command runs and the cosmic-ray release, so a change to any starts a new session.
# - The session (.cache/mutation/KEY.sqlite) keeps every result: run it again and it goes on with the
#   mutants not yet run (an interrupted run loses only the mutant in progress). When the suite, the unit
#   tests or any other file of the checkout's packages changed since, the surviving mutants are run again.
# - The test command (a script, .cache/mutation/KEY.run.sh) runs the conformance suite against our
#   implementation of the mutated package (impl_flax -> flax, impl_tf -> tf, electra_core -> flax, then tf),
#   fail-fast (-x), the families that find most faults first, with the distribution family on 8 virtual CPU
#   devices, and one JAX compilation cache with scripts/test.sh. When the suite passes, the package's own unit
#   tests run (tests/test_tf_*.py, tests/test_flax_*.py, electra_core's checkpoint, config, value-check,
#   tokenizer and loader tests): they judge the package's API outside the spec, and the score counts the
#   mutants they alone kill apart from the suite's. The command must first collect its tests on the unmutated
#   copy (--collect-only), or nothing runs; a kill whose output shows no failing pytest stage is relabelled
#   and run again.
# - Surviving mutants shown equivalent (they cannot change behaviour) are listed with why in
#   conformance/mutation/equivalent.yaml, relabelled after the run and left out of the score. Mutants inside
#   type annotations of modules with from __future__ import annotations (never evaluated) are set aside
#   the same way before the run.
# Prints the kill rate, then every surviving mutant as a diff (cosmic-ray's cr-report).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
usage="usage: bash scripts/mutation.sh [--sample N] PATH [PATH ...]   (files or folders of impl_flax, impl_tf, electra_core)"
sample=all
if [ "${1:-}" = "--sample" ]; then
  [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "mutation: --sample takes a number of mutants, not '${2:-}'" >&2; exit 2; }
  sample=$2
  shift 2
fi
if [ $# -eq 0 ]; then
  echo "$usage" >&2
  exit 2
fi
targets=("$@")
cosmic_ray_pin="cosmic-ray==8.7.0"
impls=()
unit_tests=()  # the unit tests of each package's own API (shell patterns, expanded in the mutated copy)
for target in "${targets[@]}"; do
  [ -e "$root/$target" ] || { echo "mutation: no such file or folder: $target" >&2; exit 2; }
  case "$target" in
    impl_flax*) impls+=(flax); unit_tests+=("tests/test_flax_*.py") ;;
    impl_tf*) impls+=(tf); unit_tests+=("tests/test_tf_*.py") ;;
    electra_core*) impls+=(flax tf)
      unit_tests+=("tests/test_checkpoint_*.py" tests/test_config_hostile.py tests/test_value_checks.py
                   "tests/test_tokenizer*.py" tests/test_loader_keywords.py) ;;
    *) echo "mutation: $target is not part of impl_flax, impl_tf or electra_core" >&2; exit 2 ;;
  esac
done
mapfile -t impls < <(printf '%s\n' "${impls[@]}" | sort -u)
mapfile -t unit_tests < <(printf '%s\n' "${unit_tests[@]}" | sort -u)
# printed between the two stages: a kill after it is a kill by the unit tests alone (mutation_equivalents.py)
unit_stage="[mutation] the conformance suite passed; the unit tests of the mutated package run"

source "$root/scripts/_venv.sh" .venv-test "test"      # the suite's environment (cd's to the root)
mutation_venv="$root/.venv-mutation"
if [ ! -x "$mutation_venv/bin/cosmic-ray" ]; then
  echo "[mutation] creating .venv-mutation (cosmic-ray)"
  python3.11 -m venv "$mutation_venv" 2>/dev/null || python3 -m venv "$mutation_venv"
  "$mutation_venv/bin/python" -m pip install -q "$cosmic_ray_pin" pyyaml 2>&1 | grep -v "^WARNING: Location" || true
fi

families=(numerics architecture combinations errors outputs losses invariances semantics config defaults params
          persistence hostile_files dtypes gradients training signatures decisions tokenizer pretrained distribution)
# a session is the mutated files' content, the test command's families and implementations, the tool's release
key="$( (echo "${families[*]} ${impls[*]} $cosmic_ray_pin"
         for t in "${targets[@]}"; do find "$t" -name '*.py' -type f | sort | xargs cat; done) | sha1sum | cut -c1-12)"
work="$root/.cache/mutation"
tree="$work/tree-$key"
session="$work/$key.sqlite"
mkdir -p "$work"
# the suite that judges the mutants: when it changed since the session's last run, its survivors are run
# again against a fresh copy (a killed mutant stays killed)
suite="$( (git ls-files -z -co --exclude-standard conformance spec electra_core impl_flax impl_tf tests \
           | xargs -0 cat) | sha1sum | cut -c1-12)"
suite_changed=0
if [ -f "$session" ] && [ "$(cat "$work/$key.suite" 2>/dev/null)" != "$suite" ]; then
  suite_changed=1
  rm -rf "$tree"
fi
if [ ! -d "$tree" ]; then
  mkdir -p "$tree.part"
  git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$tree.part"
  mv "$tree.part" "$tree"
fi
# a run killed while a mutant was applied leaves it in the copy: put the targets back (the key says their
# content is the checkout's)
git ls-files -z -co --exclude-standard -- "${targets[@]}" | tar --null -T - -cf - | tar -xf - -C "$tree"

modules=()
for f in "${families[@]}"; do modules+=("conformance.tests.test_$f"); done
source "$root/scripts/_kernels.sh"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$root/.cache/jax}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=-1
# The test command is a script: cosmic-ray splits its test-command into words and runs it without a shell, so
# a command line cannot chain two runs (an "&&" would reach pytest as a path, fail at once and count as a kill).
runner="$work/$key.run.sh"
conformance_stages=$(for impl in "${impls[@]}"; do
  echo "stage 'conformance suite of $impl' --pyargs ${modules[*]} --impl $impl --devices cpu:8 --conformance-profile ci --expectations none"
done)
cat > "$runner" <<EOF
#!/usr/bin/env bash
# The test command of mutation session $key, written by scripts/mutation.sh: the conformance suite of each
# implementation the mutated files feed, then (only when it passed) the unit tests of the package's own API.
# Exit 0: the mutant survived; 1: pytest failed (a failing test, or a mutant that breaks the plugin's start:
# scripts/mutation.sh first runs this script with --collect-only on the unmutated copy, so the command itself
# is known to work). Its own arguments are passed on to every pytest run.
exec 2>&1
cd '$tree' && export PYTHONPATH='$tree'
extra=("\$@")
stage() {  # what runs, then pytest's arguments
  local what=\$1; shift
  echo "[mutation] stage: \$what"
  '$root/.venv-test/bin/python' -m pytest -x -q -p no:cacheprovider "\$@" "\${extra[@]}"
  local rc=\$?
  echo "[mutation] pytest exit \$rc: \$what"
  [ \$rc = 0 ] || exit 1
}
$conformance_stages
echo '$unit_stage'
stage 'unit tests of ${targets[*]}' ${unit_tests[*]}
EOF
test_command="bash $runner"
# the test command must collect its tests on the unmutated copy (the targets were put back above): otherwise
# every mutant would fail for the command's own fault and count as killed
if ! preflight="$(bash "$runner" --collect-only 2>&1)"; then
  echo "mutation: the test command does not run on the unmutated code ($runner --collect-only):" >&2
  echo "$preflight" | tail -n 20 >&2
  exit 2
fi

config="$work/$key.toml"
module_paths=$(printf '"%s", ' "${targets[@]}" | sed 's/, $//')
cat > "$config" <<EOF
[cosmic-ray]
module-path = [$module_paths]
timeout = 1800.0
excluded-modules = []
test-command = "$test_command"
[cosmic-ray.distributor]
name = "local"
EOF
cd "$tree"
if [ ! -f "$session" ]; then
  "$mutation_venv/bin/cosmic-ray" init "$config" "$session"
  "$mutation_venv/bin/python" "$root/scripts/mutation_equivalents.py" "$session" \
    "$root/conformance/mutation/equivalent.yaml" --annotations
fi
"$mutation_venv/bin/python" "$root/scripts/mutation_equivalents.py" "$session" \
  "$root/conformance/mutation/equivalent.yaml" --retry-unrun
"$mutation_venv/bin/python" "$root/scripts/mutation_equivalents.py" "$session" \
  "$root/conformance/mutation/equivalent.yaml" --sample "$sample"
if [ "$suite_changed" = 1 ]; then  # after the draw, which keeps every mutant already run in the sample
  echo "[mutation] the suite changed since this session last ran: its surviving mutants run again"
  "$mutation_venv/bin/python" -c "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); \
db.execute(\"DELETE FROM work_results WHERE test_outcome = 'SURVIVED'\"); db.commit()" "$session"
fi
echo "$suite" > "$work/$key.suite"
echo "[mutation] session $session: $(printf '%s ' "${targets[@]}")-> conformance suite of $(printf '%s ' "${impls[@]}")"
"$mutation_venv/bin/cosmic-ray" exec "$config" "$session"
"$mutation_venv/bin/python" "$root/scripts/mutation_equivalents.py" "$session" "$root/conformance/mutation/equivalent.yaml"
"$mutation_venv/bin/cr-report" "$session" --show-pending
"$mutation_venv/bin/python" "$root/scripts/mutation_equivalents.py" "$session" "$root/conformance/mutation/equivalent.yaml" --score
