"""Family 3, defaults: omitting an argument equals passing the default its spec rule documents
(classes.yaml `default`; clause <Class>.call.default.<arg>): zeros_like(input_ids) token types,
ones(...) attention masks, arange(...) positions, and config.<field> output flags."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.tests._helpers import (SELF_KIND, build, eval_count, eval_shape, examples, run,
                                        spec_class, tensor_fields)

_TENSOR_RULE = re.compile(r"^(ones|zeros|ones_like|zeros_like|arange)\((.*)\)$")


def computable_default(rule: str, case) -> np.ndarray | None:
    """The array a tensor default rule stands for, for this case's inputs (None: not a tensor rule,
    or one this family cannot build, e.g. shapes over enc_seq without encoder inputs)."""
    m = _TENSOR_RULE.match(rule)
    if m is None or "enc_seq" in rule:
        return None
    fn, arg = m.groups()
    ids = case.inputs["input_ids"]
    if fn in ("ones_like", "zeros_like"):
        return (np.ones_like if fn == "ones_like" else np.zeros_like)(ids)
    if fn in ("ones", "zeros"):
        shape = eval_shape(arg, case.config, case.dims)
        shape = case.lead + shape[1:] if shape[:1] == (case.dims["batch"],) else shape
        return (np.ones if fn == "ones" else np.zeros)(shape, dtype=ids.dtype)
    start, stop = (eval_count(a.strip(), case.config, case.dims) for a in arg.split(","))
    return np.broadcast_to(np.arange(start, stop, dtype=ids.dtype), ids.shape).copy()


def _tensor_defaults(class_name: str) -> list[str]:
    return [p.name for p in spec_class(class_name).call if _TENSOR_RULE.match(p.default) and "enc_seq" not in p.default]


def _flag_defaults(class_name: str) -> list[str]:
    return [p.name for p in spec_class(class_name).call if p.dtype == "bool" and p.default.startswith("config.")
            and p.name != "return_dict"]


@examples(2)
@given(data=st.data())
def test_omitted_tensor_equals_documented_default(check, adapter, class_name, model_cache, data):
    names = _tensor_defaults(class_name)
    if not names:
        pytest.skip(f"{class_name} has no tensor argument with a computable default rule")
    case = data.draw(S.cases(class_name, args=("input_ids",)))
    handle = build(model_cache, class_name, case.config)
    omitted = tensor_fields(run(model_cache, handle, case.inputs))
    check.clause("behaviour.defaults_equal_explicit")
    for name in names:
        p = spec_class(class_name).call_arg(name)
        explicit_inputs = dict(case.inputs, **{name: computable_default(p.default, case)})
        explicit = tensor_fields(run(model_cache, handle, explicit_inputs))
        check.equal(sorted(explicit), sorted(omitted), clause=p.default_id,
                    what=f"fields with {name} passed explicitly")
        for field, value in omitted.items():
            check.allclose(explicit[field], value, clause=p.default_id, kind=SELF_KIND, field=field.split(".")[0])


@examples(1)
@given(data=st.data())
def test_omitted_flag_equals_config_value(check, adapter, class_name, model_cache, data):
    """A flag omitted falls back to the config field (rule config.<field>): with the config's output
    flags switched on, omitting them gives what passing them explicitly gives."""
    names = _flag_defaults(class_name)
    fields = {spec_class(class_name).call_arg(n).default[len("config."):]: n for n in names}
    case = data.draw(S.cases(class_name, buckets=(0,), overrides={f: True for f in fields}))
    handle = build(model_cache, class_name, case.config)
    omitted = tensor_fields(run(model_cache, handle, case.inputs))
    explicit = tensor_fields(run(model_cache, handle, case.inputs, flags={n: True for n in names}))
    check.clause("behaviour.output_flags_fallback")
    for name in names:
        p = spec_class(class_name).call_arg(name)
        check.equal(sorted(omitted), sorted(explicit), clause=p.default_id,
                    what=f"fields with the flags omitted vs passed as the config's value (config {fields})")
    for field, value in explicit.items():
        check.allclose(omitted[field], value, clause=spec_class(class_name).call_arg(names[0]).default_id,
                       kind=SELF_KIND, field=field.split(".")[0])
