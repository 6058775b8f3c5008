"""Family 3, defaults: omitting an argument equals passing the default its spec rule documents
(classes.yaml `default`; clause <Class>.call.default.<arg>): zeros_like(input_ids) token types,
ones(...) attention masks (over the encoder positions too), arange(...) positions, config.<field>
output flags and return_dict, and the plain defaults (none, false, self.params) of the mode, parameter,
cache and alternative-input arguments, which need the adapter's exact call (call_native)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import strategies as S
from conformance.adapters.base import OWN_PARAMETERS
from conformance.tests._helpers import (NOT_COMPARED, SELF_KIND, build, eval_count, eval_shape, examples,
                                        full_config, native_arrays, output_spec, run, spec_class,
                                        tensor_fields)

_TENSOR_RULE = re.compile(r"^(ones|zeros|ones_like|zeros_like|arange)\((.*)\)$")


def computable_default(rule: str, case) -> np.ndarray | None:
    """The array a tensor default rule stands for, for this case's inputs (None: not a tensor rule,
    or one this family cannot build, e.g. shapes over enc_seq without encoder inputs)."""
    m = _TENSOR_RULE.match(rule)
    if m is None or ("enc_seq" in rule and "enc_seq" not in case.dims):
        return None
    fn, arg = m.groups()
    ids = case.inputs["input_ids"]
    if fn in ("ones_like", "zeros_like"):
        return (np.ones_like if fn == "ones_like" else np.zeros_like)(ids)
    if fn in ("ones", "zeros"):
        shape = eval_shape(arg, case.config, case.dims)
        shape = case.lead + shape[1:] if arg.split()[0] == "batch" else shape  # (batch, ...) per $lead
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
def test_omitted_tensor_equals_documented_default(check, adapter, caps, class_name, model_cache, data):
    names = [n for n in _tensor_defaults(class_name) if not caps.lacking(f"input:{n}")]  # the ones it takes
    if not names:
        pytest.skip(f"{class_name} has no tensor argument with a computable default rule that {caps.impl} takes")
    case = data.draw(S.cases(caps, class_name, args=("input_ids",)))
    handle = build(model_cache, class_name, case.config)
    omitted = tensor_fields(run(model_cache, handle, case.inputs))
    check.clause("behaviour.defaults_equal_explicit")
    check.clause(*(["decision.flax_token_type_ids_default"] if "token_type_ids" in names else []))
    defaults = {name: computable_default(spec_class(class_name).call_arg(name).default, case) for name in names}
    # one call with every default passed; only when it differs, one call per argument names the culprit
    # (each call with another set of arguments can be one more compilation)
    together = tensor_fields(run(model_cache, handle, dict(case.inputs, **defaults)))
    agree = sorted(together) == sorted(omitted) and all(
        check.within(together[f], v, kind=SELF_KIND, field=f.split(".")[0]) for f, v in omitted.items())
    for name in names:
        p = spec_class(class_name).call_arg(name)
        explicit = together if agree or len(names) == 1 else tensor_fields(
            run(model_cache, handle, dict(case.inputs, **{name: defaults[name]})))
        check.equal(sorted(explicit), sorted(omitted), clause=p.default_id,
                    what=f"fields with {name} passed explicitly")
        for field, value in omitted.items():
            check.allclose(explicit[field], value, clause=p.default_id, kind=SELF_KIND, field=field.split(".")[0])


@examples(1)
@given(data=st.data())
def test_omitted_flag_equals_config_value(check, adapter, caps, class_name, model_cache, data):
    """A flag omitted falls back to the config field (rule config.<field>): with the config's output
    flags switched on, omitting them gives what passing them explicitly gives."""
    names = _flag_defaults(class_name)
    fields = {spec_class(class_name).call_arg(n).default[len("config."):]: n for n in names}
    case = data.draw(S.cases(caps, class_name, buckets=(0,), overrides={f: True for f in fields}))
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


# ---- encoder inputs: encoder_attention_mask defaults to ones(batch enc_seq) ----------------------
#: config of a decoder with cross-attention, which reads encoder_hidden_states and their mask
_CROSS_ATTENTION = {"is_decoder": True, "add_cross_attention": True}


def normal_array(data, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array of standard normal values from a drawn seed (encoder states, embeddings)."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed of a float input")
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _encoder_mask_args(class_name: str) -> list[str]:
    return [p.name for p in spec_class(class_name).call if _TENSOR_RULE.match(p.default) and "enc_seq" in p.default]


@examples(1)
@given(data=st.data())
def test_omitted_encoder_mask_equals_documented_default(check, adapter, caps, class_name, model_cache, data):
    """With cross-attention on, an omitted encoder_attention_mask equals its rule (all encoder
    positions attended) passed explicitly."""
    names = _encoder_mask_args(class_name)
    if not names:
        pytest.skip(f"{class_name} takes no encoder inputs")
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "attention_mask"), buckets=(0,),
                             shapes=(S.SHAPE_BUCKETS[0],), overrides=_CROSS_ATTENTION))
    enc_seq = case.dims["seq"] + 1  # unequal to seq, so a mask over the wrong axis cannot pass
    case.dims["enc_seq"] = enc_seq
    states_shape = eval_shape(spec_class(class_name).call_arg("encoder_hidden_states").shape, case.config, case.dims)
    case.inputs["encoder_hidden_states"] = normal_array(data, states_shape)
    if "choices" in spec_class(class_name).lead:
        check.clause("decision.multiple_choice_encoder_inputs")
    handle = build(model_cache, class_name, case.config)
    compared = tuple(f.name for f in output_spec(class_name).fields if f.name not in NOT_COMPARED)
    omitted = tensor_fields(run(model_cache, handle, case.inputs), compared)
    for name in names:
        p = spec_class(class_name).call_arg(name)
        explicit_inputs = dict(case.inputs, **{name: computable_default(p.default, case)})
        explicit = tensor_fields(run(model_cache, handle, explicit_inputs), compared)
        check.equal(sorted(explicit), sorted(omitted), clause=p.default_id,
                    what=f"fields with {name} passed explicitly")
        for field, value in omitted.items():
            check.allclose(explicit[field], value, clause=p.default_id, kind=SELF_KIND, field=field.split(".")[0])


# ---- plain defaults through the exact call: none, false, true, self.params, config.return_dict ----
_ABSENT = object()


def plain_default(rule: str, config) -> object:
    """The value a non-tensor default rule stands for (_ABSENT: not such a rule)."""
    if rule in ("none", "false", "true"):
        return {"none": None, "false": False, "true": True}[rule]
    if rule == "self.params":
        return OWN_PARAMETERS
    if rule.startswith("config."):
        return full_config(config)[rule[len("config."):]]
    return _ABSENT


def _plain_args(class_name: str) -> list:
    """Call arguments with a plain default rule that the other tests of this family do not cover
    (the config.<field> output flags have their own test); input_ids (optional in TF, where omitting
    it needs inputs_embeds instead) comes last, so that the others are checked whatever happens to it."""
    covered = set(_flag_defaults(class_name))
    args = [p for p in spec_class(class_name).call
            if p.name not in covered and not p.required and plain_default(p.default, {}) is not _ABSENT]
    return sorted(args, key=lambda p: p.name == "input_ids")


def _check_deterministic(check, class_name: str, first, second) -> None:
    """Two calls with every optional argument omitted agree; otherwise the omitted mode trains (applies
    dropout), which breaks the default of the mode argument (train / training: rule false)."""
    modes = [p.default_id for p in spec_class(class_name).call if p.default == "false" and p.dtype == "bool"]
    for field, value in first[1].items():
        other = second[1].get(field)
        check.that(other is not None and np.array_equal(value, other), clause=modes[0] if modes else
                   "behaviour.defaults_equal_explicit",
                   message=f"two calls with the optional arguments omitted differ in {field}: the omitted mode "
                           f"is not inference (dropout applied)")


@examples(1)
@given(data=st.data())
def test_omitted_plain_argument_equals_documented_default(check, adapter, caps, class_name, model_cache, data):
    """Omitting each argument with a plain default (params, dropout_rng, train / training,
    return_dict, past_key_values, encoder_hidden_states, input_ids vs inputs_embeds, labels, ...) gives
    what passing that default explicitly gives. The bucket config keeps its dropout rates (a call
    that trained would differ) and its spec-default return_dict (a config with another value would
    cost every Flax class one more compilation)."""
    caps.skip_unless("method:call_native")
    call_native = adapter.call_native
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "attention_mask"), buckets=(0,),
                             shapes=(S.SHAPE_BUCKETS[0],)))
    handle = build(model_cache, class_name, case.config)
    embeds = None
    baselines = {}  # frozenset of the base argument names -> (form, arrays) with everything else omitted
    for p in _plain_args(class_name):
        base = dict(case.inputs)
        if p.name in base:  # input_ids is optional only with its alternative, inputs_embeds
            if embeds is None:
                shape = eval_shape(spec_class(class_name).call_arg("inputs_embeds").shape, case.config, case.dims)
                embeds = normal_array(data, shape)
            base = {k: v for k, v in base.items() if k != p.name}
            base["inputs_embeds"] = embeds
        check.clause(p.default_id)
        key = frozenset(base)
        if key not in baselines:
            baselines[key] = native_arrays(call_native(handle, base))
            _check_deterministic(check, class_name, baselines[key], native_arrays(call_native(handle, base)))
        form, omitted = baselines[key]
        value = plain_default(p.default, case.config)
        explicit_form, explicit = native_arrays(call_native(handle, dict(base, **{p.name: value})))
        check.equal(form, explicit_form, clause=p.default_id,
                    what=f"form of the output with {p.name} omitted vs passed as {p.default!r}")
        check.equal(sorted(omitted), sorted(explicit), clause=p.default_id,
                    what=f"fields with {p.name} omitted vs passed as {p.default!r}")
        for field, value in explicit.items():
            check.allclose(omitted[field], value, clause=p.default_id, kind=SELF_KIND, field=None)
