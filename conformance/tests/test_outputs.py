"""Family 2, outputs: which fields are present (outputs.yaml present_when), their shapes, tuple
lengths and dtypes, the output class, and the return_dict=False tuple (present fields in spec order,
absent ones dropped), and access to the output object itself: attribute, key and index (clause
behaviour.output_access). Clauses <OutputClass>.field.<name> and <Class>.output.<name>."""
from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.tests._helpers import (SELF_KIND, build, eval_count, eval_shape, examples, is_present,
                                        output_spec, run, spec_class)


@st.composite
def _flags(draw, caps, class_name: str) -> dict:
    """Each boolean output flag of the call (defaults config.<field>) that the implementation offers:
    omitted, True or False. return_dict is exercised by the tuple form instead."""
    out = {}
    for p in spec_class(class_name).call:
        if p.dtype == "bool" and p.default.startswith("config.") and p.name != "return_dict" \
                and not caps.lacking(f"flag:{p.name}"):
            value = draw(st.sampled_from([None, True, False]))
            if value is not None:
                out[p.name] = value
    return out


def _check_field(check, fspec, value, case) -> None:
    dims = case.dims
    if fspec.container is not None:
        return  # opaque cache container: presence is all the spec says
    if fspec.tuple is not None:
        n = eval_count(fspec.tuple, case.config, dims)
        check.that(isinstance(value, tuple) and len(value) == n, clause=fspec.id,
                   message=f"{fspec.name}: expected a tuple of {n} arrays, got "
                           f"{type(value).__name__} of length {len(value) if isinstance(value, tuple) else '-'}")
        items = value
    else:
        items = (value,)
    expected = eval_shape(fspec.shape, case.config, dims)
    for i, item in enumerate(items):
        a = np.asarray(item)
        check.equal(tuple(a.shape), expected, clause=fspec.id,
                    what=f"shape of {fspec.name}{f'[{i}]' if fspec.tuple else ''} ({fspec.shape})")
        if fspec.dtype == "float":
            check.that(a.dtype.kind == "f", clause=fspec.id,
                       message=f"{fspec.name} has dtype {a.dtype}, expected float")


@examples(3)
@given(data=st.data())
def test_presence_shapes_and_dtypes(check, adapter, caps, class_name, model_cache, data):
    sc = spec_class(class_name)
    case = data.draw(S.cases(caps, class_name, labels=adapter.framework == "tf" and data.draw(st.booleans())))
    flags = data.draw(_flags(caps, class_name))
    out = output_spec(class_name)
    handle = build(model_cache, class_name, case.config)
    result = run(model_cache, handle, case.inputs, flags=flags)
    check.clause(*(sc.call_arg(n).default_id for n in sc.labels if n not in case.inputs))  # omitted: no loss
    if not caps.lacking("api:documented"):  # the output class is the documented API's; others return their own
        check.equal(result.output_class or sc.output_class, sc.output_class,
                    clause=f"{class_name}.output.{out.fields[0].name}", what="output class")
    for fspec in out.fields:
        want = is_present(fspec.present_when, class_name, case.config, flags, case.inputs)
        have = fspec.name in result.fields and result.fields[fspec.name] is not None
        check.clause(f"{class_name}.output.{fspec.name}")
        check.that(want == have, clause=fspec.id,
                   message=f"{fspec.name} is {'present' if have else 'absent'} but present_when "
                           f"'{fspec.present_when}' is {want} (flags {flags}, inputs {sorted(case.inputs)})")
        if have:
            _check_field(check, fspec, result.fields[fspec.name], case)


@examples(2)
@given(data=st.data())
def test_tuple_form_order(check, adapter, caps, class_name, model_cache, data):
    case = data.draw(S.cases(caps, class_name, labels=adapter.framework == "tf" and data.draw(st.booleans())))
    flags = data.draw(_flags(caps, class_name))
    out = output_spec(class_name)
    handle = build(model_cache, class_name, case.config)
    result = run(model_cache, handle, case.inputs, flags=flags, tuple_form=True)
    present = [f for f in out.fields if f.name in result.fields and result.fields[f.name] is not None]
    clause = "behaviour.return_tuple"
    check.that(result.tuple_form is not None, clause=clause, message="return_dict=False gave no tuple")
    names = [f.name for f in present]
    check.equal(len(result.tuple_form), len(present), clause=clause,
                what=f"length of the return_dict=False tuple (present fields in order: {names})")
    for fspec, item in zip(present, result.tuple_form):
        expected = result.fields[fspec.name]
        if fspec.container is not None:
            continue
        pairs = zip(item, expected) if fspec.tuple else [(item, expected)]
        for a, e in pairs:
            check.equal(np.shape(a), np.shape(e), clause=fspec.id,
                        what=f"tuple element for {fspec.name} (expected at position {names.index(fspec.name)})")
            check.allclose(a, e, clause=fspec.id, kind=SELF_KIND, field=fspec.name)


def _same(a, b) -> bool:
    """Two accesses of one output object give the same value (tuples element-wise, caches by identity)."""
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b) \
            and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) or isinstance(b, dict):
        return a is b
    return np.array_equal(np.asarray(a), np.asarray(b))


@examples(1)
@given(data=st.data())
def test_output_access(check, adapter, caps, class_name, model_cache, data):
    """The model's own output object gives each present field by attribute, by key and by integer
    index over the present fields (spec order); absent fields read None as attributes and are not
    keys; to_tuple() equals the return_dict=False tuple."""
    caps.skip_unless("method:call_native")
    call_native = adapter.call_native
    clause = "behaviour.output_access"
    check.clause(clause)
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "attention_mask"), buckets=(0,),
                             shapes=(S.SHAPE_BUCKETS[0],), labels=adapter.framework == "tf"))  # TF: loss first
    handle = build(model_cache, class_name, case.config)
    output = call_native(handle, dict(case.inputs, return_dict=True))
    names = [f.name for f in output_spec(class_name).fields]
    keys = list(output.keys())
    check.that(set(keys) <= set(names), clause=clause,
               message=f"keys {keys} include names that are not fields of {spec_class(class_name).output_class}")
    present = [n for n in names if n in keys]
    check.equal(keys, present, clause=clause, what="keys of the output (present fields in spec order)")
    for name in names:
        try:
            value = getattr(output, name)
        except AttributeError as error:
            check.fail(clause, f"{type(output).__name__} has no attribute {name!r} ({error}); absent fields read None")
        if name not in keys:
            check.that(value is None, clause=clause, message=f"absent field {name} reads {type(value).__name__} "
                                                             f"as an attribute, expected None")
            continue
        check.that(value is not None, clause=clause, message=f"key {name} holds None (absent fields are no keys)")
        index = present.index(name)
        check.that(_same(value, output[name]), clause=clause, message=f"attribute and key access of {name} differ")
        check.that(_same(value, output[index]), clause=clause,
                   message=f"index {index} does not give {name} (present fields: {present})")
    as_tuple = output.to_tuple()
    check.equal(len(as_tuple), len(present), clause=clause, what=f"length of to_tuple() (present fields {present})")
    returned = call_native(handle, dict(case.inputs, return_dict=False))
    check.that(isinstance(returned, tuple) and len(returned) == len(present), clause=clause,
               message=f"return_dict=False gave {type(returned).__name__} of length "
                       f"{len(returned) if isinstance(returned, tuple) else '-'}; expected a tuple of {len(present)}")
    for name, item, other in zip(present, as_tuple, returned):
        check.that(_same(item, getattr(output, name)), clause=clause, message=f"to_tuple() element of {name} differs")
        if isinstance(item, dict):
            continue  # an opaque cache: a fresh object per call
        pairs = zip(item, other) if isinstance(item, (tuple, list)) else [(item, other)]
        for a, b in pairs:
            if not isinstance(a, (tuple, list, dict)):
                check.allclose(np.asarray(b), np.asarray(a), clause=clause, kind=SELF_KIND, field=name)
