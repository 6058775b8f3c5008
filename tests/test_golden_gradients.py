"""The gradient golden data (conformance/golden/gradients) is well-formed. Its regeneration is checked with the
rest of the golden data: tests/test_golden.py::test_regeneration_matches_the_committed_data."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conformance.golden_data import get_case
from conformance.tests.test_gradients import GRAD, INPUT, gradient_cases, read_gradients

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
