"""Family 9, dtypes: a bfloat16/float16 computation stays within the spec's low_precision_vs_float32
tolerance of the float32 computation with the same weights; parameters stay float32
(behaviour.flax.dtype); int32 and int64 ids give identical outputs (behaviour.tf.int_dtypes)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.tests._helpers import build, compare_outputs, examples, run, tensor_fields

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _dtype_clause(adapter) -> str:
    return "behaviour.flax.dtype" if adapter.framework == "flax" else "behaviour.golden"


@examples(1)
@given(data=st.data())
def test_low_precision_close_to_float32(check, adapter, class_name, dtype, model_cache, data):
    if dtype == "float32":
        pytest.skip("the float32 computation is the reference of this comparison")
    case = data.draw(S.cases(class_name, args=_INPUTS, buckets=(0, 1)))
    reference = build(model_cache, class_name, case.config)
    weights = adapter.get_weights(reference)
    low = model_cache.get(class_name, case.config, dtype=dtype, weights=weights)
    expected = run(model_cache, reference, case.inputs)
    got = run(model_cache, low, case.inputs)
    clause = _dtype_clause(adapter)
    for name, value in tensor_fields(expected).items():
        check.that(name in tensor_fields(got), clause=clause, message=f"{name} missing in the {dtype} call")
        check.allclose(tensor_fields(got)[name], value, clause=clause, kind="low_precision_vs_float32",
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
