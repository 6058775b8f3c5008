"""Family 9, dtypes: a bfloat16/float16 computation stays within the spec's low_precision_vs_float32
tolerance of the float32 computation with the same weights; parameters stay float32
(behaviour.flax.dtype); int32 and int64 ids give identical outputs (behaviour.tf.int_dtypes); the Flax
precision casts (behaviour.flax.precision_casts); numpy vs tf.Tensor inputs (behaviour.tf.array_types)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.tests._helpers import (build, compare_outputs, compile_clause, examples, native_arrays, run,
                                        spec_class, tensor_fields, thorough)
from spec import load_spec

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def spec_base_class(framework: str) -> str:
    """The framework's bare encoder class (the spec class without a head)."""
    return next(c.name for c in load_spec().classes_for(framework) if c.name.endswith("ElectraModel"))


def _dtype_clause(adapter) -> str:
    return "behaviour.flax.dtype" if adapter.framework == "flax" else "behaviour.golden"


def _fields_with_loss(adapter, model_cache, handle, class_name: str, inputs: dict) -> dict:
    """The call's tensor fields, plus the loss where the call computes it (TF, labels among the
    inputs). Flax losses are standalone float32 functions of the logits (loss.flax_functions): their
    low-precision error is the logits' error, so the Flax call gets no labels (and no extra compiles)."""
    head = spec_class(class_name).loss
    labels = set(load_spec().raw("losses")["losses"][head]["labels"]) if head else set()
    if adapter.framework != "tf":
        inputs = {k: v for k, v in inputs.items() if k not in labels}
    return tensor_fields(run(model_cache, handle, inputs))


@examples(1)
@given(data=st.data())
def test_low_precision_close_to_float32(check, adapter, caps, class_name, dtype, model_cache, data):
    """A bfloat16/float16 computation (outputs, and the TF loss) stays within the tolerance rules of its dtype
    (tolerance.any.<dtype>.any.any / .loss) of the float32 computation with the same weights; its
    compiled call stays within tolerance.compiled_vs_eager.<dtype> of its eager call."""
    if dtype == "float32":
        pytest.skip("the float32 computation is the reference of this comparison")
    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(0, 1), labels=True))
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
    if thorough() or class_name == spec_base_class(adapter.framework):
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
def test_int32_and_int64_ids_agree(check, adapter, caps, class_name, model_cache, data):
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    narrow = run(model_cache, handle, {k: v.astype(np.int32) for k, v in case.inputs.items()})
    wide = run(model_cache, handle, {k: v.astype(np.int64) for k, v in case.inputs.items()})
    compare_outputs(check, wide, narrow, class_name, clause="behaviour.tf.int_dtypes", exact=True)


@examples(1)
@given(data=st.data())
def test_narrow_ids_and_bool_or_float_masks_agree(check, adapter, caps, class_name, model_cache, data):
    """Ids of a narrower integer dtype (int16, uint8, and int8 where the values fit) are widened, and an
    attention_mask may be bool or float 0/1: the outputs equal those of int64 inputs exactly."""
    clause = "behaviour.tf.int_dtypes"
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    wide = run(model_cache, handle, {k: v.astype(np.int64) for k, v in case.inputs.items()})
    largest = max(int(v.max()) for v in case.inputs.values())
    variants = {np.dtype(t).name: {k: v.astype(t) for k, v in case.inputs.items()}
                for t in (np.int16, np.uint8, np.int8) if largest <= np.iinfo(t).max}
    mask = case.inputs.get("attention_mask", np.ones_like(case.inputs["input_ids"]))
    for t in (np.bool_, np.float32):
        variants[f"{np.dtype(t).name} attention_mask"] = dict(case.inputs, attention_mask=mask.astype(t))
    for what, inputs in variants.items():
        try:
            got = run(model_cache, handle, inputs)
        except Exception as err:  # noqa: BLE001 - a refused dtype is this clause's finding
            check.fail(clause, f"{what} ids: {type(err).__name__}: {err}")
        compare_outputs(check, wide, got, class_name, clause=clause, exact=True)


_CASTS = {"to_bf16": "bfloat16", "to_fp16": "float16", "to_fp32": "float32"}


@examples(1)
@given(data=st.data())
def test_flax_precision_casts(check, adapter, caps, class_name, model_cache, data):
    """to_bf16 / to_fp16 / to_fp32 cast the floating leaves (only where the mask is True), leave the
    input tree and integer leaves alone, and to_fp32(to_bf16(p)) is p within bfloat16 rounding."""
    clause = "behaviour.flax.precision_casts"
    if adapter.framework != "flax":
        pytest.skip(f"{clause} binds Flax classes only")
    import jax.numpy as jnp
    from flax.traverse_util import flatten_dict, unflatten_dict

    case = data.draw(S.cases(caps, class_name, args=("input_ids",), buckets=(0,)))
    caps.skip_unless("api:native")  # the test calls the model object itself
    model = build(model_cache, class_name, case.config).native
    flat = {k: np.asarray(v) for k, v in flatten_dict(dict(model.params)).items()}
    flat[("step_counter",)] = np.arange(3, dtype=np.int32)  # an integer leaf is never cast
    tree = unflatten_dict({k: jnp.asarray(v) for k, v in flat.items()})
    chosen = data.draw(st.sampled_from(["kernel", "bias", "embedding", "scale"]), label="masked leaf name")
    mask = unflatten_dict({k: k[-1] == chosen for k in flat})
    for method, target in _CASTS.items():
        source = model.to_bf16(tree) if method == "to_fp32" else tree
        source_dtypes = {k: np.asarray(v).dtype for k, v in flatten_dict(dict(source)).items()}
        for use_mask in (False, True):
            out = flatten_dict(dict(getattr(model, method)(source, mask=mask if use_mask else None)))
            check.equal(sorted(out), sorted(flat), clause=clause, what=f"{method} tree structure")
            for key, value in out.items():
                cast = flat[key].dtype.kind == "f" and (not use_mask or key[-1] == chosen)
                want = np.dtype(jnp.dtype(target)) if cast else source_dtypes[key]
                check.equal(str(np.asarray(value).dtype), str(want), clause=clause,
                            what=f"{method}(mask={'leaf ' + chosen if use_mask else None}) dtype of {'/'.join(key)}")
    unchanged = {k: np.asarray(v) for k, v in flatten_dict(dict(tree)).items()}
    check.that(all(unchanged[k].dtype == flat[k].dtype and np.array_equal(unchanged[k], flat[k]) for k in flat),
               clause=clause, message="a cast modified its input tree")
    round_trip = flatten_dict(dict(model.to_fp32(model.to_bf16(tree))))
    half_ulp = float(jnp.finfo(jnp.bfloat16).eps) / 2  # round to nearest: relative error <= eps / 2
    for key, value in flat.items():
        if value.dtype.kind == "f":
            err = np.abs(np.asarray(round_trip[key], np.float64) - value)
            check.that(bool(np.all(err <= half_ulp * np.abs(value))), clause=clause,
                       message=f"to_fp32(to_bf16(p)) moved {'/'.join(key)} by {err.max():.3g}, more than bfloat16 "
                               f"rounding")


@examples(1)
@given(data=st.data())
def test_tf_numpy_and_tensor_inputs_agree(check, adapter, caps, class_name, model_cache, data):
    """numpy arrays and tf.Tensors give identical outputs, and the outputs are tf.Tensors."""
    clause = "behaviour.tf.array_types"
    if adapter.framework != "tf":
        pytest.skip(f"{clause} binds TF classes only")
    import tensorflow as tf

    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    caps.skip_unless("api:native")  # the test calls the model object itself
    model = build(model_cache, class_name, case.config).native
    by_numpy = model(**case.inputs, output_hidden_states=True)
    by_tensor = model(**{k: tf.constant(v) for k, v in case.inputs.items()}, output_hidden_states=True)
    for name, value in by_numpy.items():
        if value is None:
            continue
        parts, others = _leaves(value), _leaves(by_tensor[name])
        kinds = sorted({type(p).__name__ for p in parts if not isinstance(p, tf.Tensor)})
        check.that(not kinds, clause=clause, message=f"output {name} holds {kinds}, not tf.Tensors")
        check.equal(len(others), len(parts), clause=clause, what=f"{name} entries")
        for i, (a, b) in enumerate(zip(parts, others)):
            check.equal(np.asarray(b), np.asarray(a), clause=clause, what=f"{name}[{i}] from tf.Tensor vs numpy inputs")


@examples(2)
@given(data=st.data())
def test_python_list_inputs_agree(check, adapter, caps, class_name, model_cache, data):
    """Where the model takes Python lists (an extension), id inputs given as nested lists give exactly the
    outputs of the same values as arrays."""
    clause = "behaviour.python_lists"
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    caps.skip_unless("api:native", "api:python_lists")  # the model object itself: run() would convert lists
    model = build(model_cache, class_name, case.config).native
    check.clause(clause)
    form, by_arrays = native_arrays(model(**case.inputs))
    try:
        listed = model(**{k: v.tolist() for k, v in case.inputs.items()})
    except Exception as err:  # noqa: BLE001 - a refused list is this clause's finding
        check.fail(clause, f"{sorted(case.inputs)} as Python lists: {type(err).__name__}: {err}")
    listed_form, by_lists = native_arrays(listed)
    check.equal(listed_form, form, clause=clause, what="output class from Python lists")
    check.equal(sorted(by_lists), sorted(by_arrays), clause=clause, what="output fields from Python lists")
    for name, value in by_arrays.items():
        if name in by_lists:
            check.equal(by_lists[name], value, clause=clause, what=f"{name} from Python lists vs arrays")


def _leaves(value) -> list:
    """The tensors of an output field, nested tuples (a TF cache of (key, value) pairs) flattened."""
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]
