"""Family 6, losses (losses.yaml, clause loss.differentiable): the gradient of a class's loss with
respect to every parameter is finite and equals the PyTorch reference's within the golden tolerance.

The reference gradients are stored per golden case in conformance/golden/gradients/<case>/<Class>.safetensors
(written by conformance/golden/generate_gradients.py: ``loss``, ``grad.<canonical name>``, and the call
inputs ``input.<name>``, labels included). One test per stored case (its id is in the test id); the class
under test is the spec class of the adapter's framework whose ``reference`` is the case's PyTorch class,
loaded with the case's golden weights. Gradients come from the optional adapter method
``loss_gradients(handle, inputs) -> (loss, {canonical name: gradient})`` (TF: the call's loss with labels;
Flax: impl_flax.losses' function of the head on the model's outputs, as in test_losses.py).

Shape keys: B batch, S sequence.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conformance.golden_data import GOLDEN_DIR, LABEL_NAMES, get_case
from conformance.tests._golden import class_under_test, weights_of
from spec import load_spec

CLAUSE = "loss.differentiable"
GRADIENT_DIR = GOLDEN_DIR / "gradients"
GRAD, INPUT = "grad.", "input."


def gradient_cases() -> list[str]:
    """Golden case ids ("<case>.<ReferenceClass>") that have a stored gradient file."""
    return sorted(f"{p.parent.name}.{p.stem}" for p in GRADIENT_DIR.glob("*/*.safetensors"))


def read_gradients(case_id: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({stored name: array}, metadata) of one gradient file."""
    from safetensors import safe_open

    case, reference_class = case_id.split(".", 1)
    path = GRADIENT_DIR / case / f"{reference_class}.safetensors"
    with safe_open(str(path), framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.family("losses")
@pytest.mark.parametrize("golden", gradient_cases())
def test_loss_gradients_match_reference(check, adapter, caps, device, model_cache, golden):
    case = get_case(golden)
    class_name = class_under_test(adapter, caps, case, device)
    caps.skip_unless("method:loss_gradients")
    stored, metadata = read_gradients(golden)
    weights_path = case.root / case.weights_file
    if metadata.get("weights_sha256") != _sha256(weights_path):
        pytest.fail(f"conformance/golden/gradients for {golden} belong to another checkpoint than {weights_path}; "
                    f"regenerate with python conformance/golden/generate_gradients.py")
    names = set(load_spec().classes[class_name].call_names) | set(LABEL_NAMES)
    inputs = {k[len(INPUT):]: v for k, v in stored.items() if k.startswith(INPUT) and k[len(INPUT):] in names}
    expected = {k[len(GRAD):]: v for k, v in stored.items() if k.startswith(GRAD)}

    handle = model_cache.get(class_name, case.config(), weights=weights_of(case))
    check.clause(CLAUSE, "decision.padding_row_gradient")
    loss, grads = adapter.loss_gradients(handle, inputs)
    grads = {k: np.asarray(v, np.float64) for k, v in grads.items()}
    check.that(bool(np.all(np.isfinite(loss))), clause=CLAUSE, message=f"loss {loss!r} is not finite")
    not_finite = sorted(k for k, g in grads.items() if not np.all(np.isfinite(g)))
    check.that(not not_finite, clause=CLAUSE, message=f"non-finite gradients of {not_finite}")
    missing = sorted(set(expected) - set(grads))
    check.that(not missing, clause=CLAUSE, message=f"no gradient for parameters {missing}; got {sorted(grads)}")
    check.allclose(np.ravel(loss), np.ravel(stored["loss"]), clause=CLAUSE, kind="golden", field="loss")
    for name in sorted(expected):
        check.allclose(grads[name], expected[name], clause=CLAUSE, kind="golden", field=f"grad {name}")
