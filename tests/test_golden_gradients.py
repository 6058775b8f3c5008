"""The gradient golden data (conformance/golden/gradients) is well-formed and regenerates byte for byte."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.golden_data import GOLDEN_DIR, get_case
from conformance.tests.test_gradients import GRAD, INPUT, gradient_cases, read_gradients

GRADIENT_DIR = GOLDEN_DIR / "gradients"


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case_id", gradient_cases())
def test_gradient_files_fit_their_golden_case(case_id):
    """Every parameter of the checkpoint has a finite gradient of its shape; the inputs are the case's."""
    case = get_case(case_id)
    stored, metadata = read_gradients(case_id)
    weights = case.weights()
    grads = {k[len(GRAD):]: v for k, v in stored.items() if k.startswith(GRAD)}
    assert sorted(grads) == sorted(weights), (
        f"{case_id}: extra {sorted(set(grads) - set(weights))}, missing {sorted(set(weights) - set(grads))}")
    for name, grad in grads.items():
        assert grad.shape == weights[name].shape, f"{case_id}: {name} gradient {grad.shape}, weight {weights[name].shape}"
        assert np.all(np.isfinite(grad)), f"{case_id}: gradient of {name} is not finite"
    assert any(np.any(g != 0) for g in grads.values()), f"{case_id}: every gradient is zero"
    assert stored["loss"].shape == () and np.isfinite(stored["loss"])
    inputs = {k[len(INPUT):]: v for k, v in stored.items() if k.startswith(INPUT)}
    golden = case.inputs()
    assert sorted(inputs) == sorted(golden), f"{case_id}: inputs {sorted(inputs)}, golden {sorted(golden)}"
    for name, value in golden.items():
        np.testing.assert_array_equal(inputs[name], value, err_msg=f"{case_id}: input {name}")
    assert np.allclose(stored["loss"], case.outputs()["loss"], atol=1e-6), f"{case_id}: loss differs from golden"
    assert metadata["weights_sha256"] == hashlib.sha256((case.root / case.weights_file).read_bytes()).hexdigest()


@pytest.mark.reference
def test_gradient_regeneration_is_byte_identical(tmp_path):
    pytest.importorskip("torch", reason="needs the reference extra (torch)")
    pytest.importorskip("transformers", reason="needs the reference extra (transformers)")
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run([sys.executable, str(GOLDEN_DIR / "generate_gradients.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh, committed = _hashes(tmp_path / "gradients"), _hashes(GRADIENT_DIR)
    assert sorted(fresh) == sorted(committed), (
        f"files differ: new {sorted(set(fresh) - set(committed))}, gone {sorted(set(committed) - set(fresh))}")
    changed = sorted(name for name in fresh if fresh[name] != committed[name])
    assert not changed, f"regenerated gradient files differ from the committed ones: {changed}"
