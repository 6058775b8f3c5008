"""Family 9, dtypes: a bfloat16/float16 computation stays within the spec's low_precision_vs_float32
tolerance of the float32 computation with the same weights; parameters stay float32
(behaviour.flax.dtype); int32 and int64 ids give identical outputs (behaviour.tf.int_dtypes)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.adapters.base import RunResult
from conformance.tests._helpers import build, compare_outputs, compile_clause, examples, run, spec_class, tensor_fields
from spec import load_spec

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def spec_base_class(framework: str) -> str:
    """The framework's bare encoder class (the spec class without a head)."""
    return next(c.name for c in load_spec().classes_for(framework) if c.name.endswith("ElectraModel"))


def _dtype_clause(adapter) -> str:
    return "behaviour.flax.dtype" if adapter.framework == "flax" else "behaviour.golden"


def _fields_with_loss(adapter, model_cache, handle, class_name: str, inputs: dict) -> dict:
    """The call's tensor fields plus its loss: TF returns it from the call (labels among the inputs),
    Flax through the optional adapter method ``loss`` (loss.flax_functions), when present."""
    head = spec_class(class_name).loss
    labels = set(load_spec().raw("losses")["losses"][head]["labels"]) if head else set()
    if adapter.framework == "tf":
        return tensor_fields(run(model_cache, handle, inputs))
    fields = run(model_cache, handle, {k: v for k, v in inputs.items() if k not in labels}).fields
    out = tensor_fields(RunResult(fields))
    if labels and hasattr(adapter, "loss"):
        loss_inputs = {k: v for k, v in inputs.items() if k in labels or k == "attention_mask"}
        out["loss"] = np.asarray(adapter.loss(handle, fields, loss_inputs), np.float32)
    return out


def _compile_every_class() -> bool:
    """The compiled low-precision check runs for every class in the thorough profile and for the
    base model class only under dev/ci (each dtype and class is one more compilation)."""
    from hypothesis import settings

    return settings.default.max_examples >= 100


@examples(1)
@given(data=st.data())
def test_low_precision_close_to_float32(check, adapter, class_name, dtype, model_cache, data):
    """A bfloat16/float16 computation (outputs and loss) stays within the tolerance rules of its dtype
    (tolerance.any.<dtype>.any.any / .loss) of the float32 computation with the same weights; its
    compiled call stays within tolerance.compiled_vs_eager.<dtype> of its eager call."""
    if dtype == "float32":
        pytest.skip("the float32 computation is the reference of this comparison")
    case = data.draw(S.cases(class_name, args=_INPUTS, buckets=(0, 1), labels=True))
    reference = build(model_cache, class_name, case.config)
    weights = adapter.get_weights(reference)
    low = model_cache.get(class_name, case.config, dtype=dtype, weights=weights)
    expected = _fields_with_loss(adapter, model_cache, reference, class_name, case.inputs)
    got = _fields_with_loss(adapter, model_cache, low, class_name, case.inputs)
    clause = _dtype_clause(adapter)
    for name, value in expected.items():
        check.that(name in got, clause=clause, message=f"{name} missing in the {dtype} call")
        check.allclose(got[name], value, clause=clause, kind="low_precision_vs_float32",
                       field=name.split(".")[0], dtype=dtype)
    if _compile_every_class() or class_name == spec_base_class(adapter.framework):
        unlabelled = {k: v for k, v in case.inputs.items() if k in _INPUTS}
        eager = tensor_fields(run(model_cache, low, unlabelled))
        compiled = tensor_fields(run(model_cache, low, unlabelled, compiled=True))
        for name, value in eager.items():
            check.allclose(compiled.get(name), value, clause=compile_clause(adapter), kind="compiled_vs_eager",
                           field=name.split(".")[0], dtype=dtype)
    if adapter.framework == "flax":
        bad = {k: str(v.dtype) for k, v in adapter.get_weights(low).items() if np.asarray(v).dtype != np.float32}
        check.that(not bad, clause="behaviour.flax.dtype",
                   message=f"dtype={dtype} changed parameter dtypes (the spec keeps them float32): {bad}")


@examples(1)
@given(data=st.data())
def test_int32_and_int64_ids_agree(check, adapter, class_name, model_cache, data):
    case = data.draw(S.cases(class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    narrow = run(model_cache, handle, {k: v.astype(np.int32) for k, v in case.inputs.items()})
    wide = run(model_cache, handle, {k: v.astype(np.int64) for k, v in case.inputs.items()})
    compare_outputs(check, wide, narrow, class_name, clause="behaviour.tf.int_dtypes", exact=True)
