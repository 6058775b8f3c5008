"""Family 5, semantics: attention probabilities (rows sum to 1, masked and future keys get no
weight), head_mask, hidden_states[-1] vs last_hidden_state, inputs_embeds vs input_ids, decoding with
the cache vs the full pass, the causal mask, multiple-choice reshaping, the sequence summary, and the
Flax model-object API (params=, init_cache and the generation helpers)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import numpy_model as nm
from conformance import numpy_ref as ref
from conformance import strategies as S
from conformance.tests._helpers import (REFERENCE_KIND, SELF_KIND, blame_alternative, build, compare_outputs,
                                        drawn_weights, examples, output_spec, primary_field, run, spec_class)
from spec import load_spec

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_DEFAULT_EPS = load_spec().config.field("layer_norm_eps").default
#: behaviour.attention_rows: the largest probability a masked key may get in float32
_MASKED_PROBABILITY = 1e-6


def _field_id(class_name: str, field: str) -> str:
    return f"{spec_class(class_name).output_class}.field.{field}"


def _key_mask(case) -> np.ndarray:
    """(B*C, 1, 1, S) 0/1 mask of the keys each query may attend to."""
    mask = case.inputs.get("attention_mask", np.ones_like(case.inputs["input_ids"])).reshape(-1, case.dims["seq"])
    return mask[:, None, None, :].astype(np.float64)


@examples(2)
@given(data=st.data())
def test_attention_rows_sum_to_one_and_skip_masked_keys(check, adapter, caps, class_name, model_cache, data):
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    clause = _field_id(class_name, "attentions")
    out = run(model_cache, build(model_cache, class_name, case.config), case.inputs, flags={"output_attentions": True})
    check.that("attentions" in out.fields, clause=clause, message="output_attentions=True gave no attentions")
    check.clause("decision.mask_value")
    rows = "behaviour.attention_rows"
    seq = case.dims["seq"]
    causal = bool(case.config.get("is_decoder"))
    future = np.triu(np.ones((seq, seq)), k=1)[None, None] if causal else np.zeros((1, 1, seq, seq))
    allowed = _key_mask(case) * (1 - future)  # (B*C, 1, S, S) keys each query may see
    answered = allowed.sum(-1, keepdims=True) > 0  # queries with at least one visible key
    for probs in out.fields["attentions"]:
        probs = np.asarray(probs, np.float64)
        check.allclose(probs.sum(-1), np.ones(probs.shape[:-1]), clause=rows, kind=SELF_KIND, field="attentions")
        hidden_weight = float(np.max(np.where(answered, probs * (1 - allowed), 0.0), initial=0.0))
        check.that(hidden_weight < _MASKED_PROBABILITY, clause="behaviour.causal_mask" if causal else rows,
                   message=f"a {'future' if causal else 'masked'} key gets probability {hidden_weight:.3g} "
                           f"(allowed < {_MASKED_PROBABILITY:g})")


@examples(2)
@given(data=st.data())
def test_head_mask_zeroes_exactly_the_masked_heads(check, adapter, caps, class_name, model_cache, data):
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    cfg = case.config
    handle = build(model_cache, class_name, cfg)
    clause = "behaviour.head_mask_zero"
    check.clause(spec_class(class_name).call_arg("head_mask").default_id, "decision.head_mask")
    flags = {"output_attentions": True, "output_hidden_states": True}
    plain = run(model_cache, handle, case.inputs, flags=flags)
    layers, heads = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    ones = run(model_cache, handle, dict(case.inputs, head_mask=np.ones((layers, heads), np.float32)), flags=flags)
    compare_outputs(check, ones, plain, class_name, clause=clause, exact=True)
    mask = S.head_masks(data.draw, cfg, per_layer=True)
    masked = run(model_cache, handle, dict(case.inputs, head_mask=mask), flags=flags)
    for layer, probs in enumerate(masked.fields["attentions"]):
        probs = np.asarray(probs, np.float64)
        for h in np.flatnonzero(mask[layer] == 0):
            check.allclose(probs[:, h], np.zeros_like(probs[:, h]), clause=clause, kind=SELF_KIND, field="attentions")
    # the first layer sees unchanged inputs: its probabilities are the plain ones times the mask
    first = np.asarray(plain.fields["attentions"][0], np.float64) * mask[0][None, :, None, None]
    check.allclose(masked.fields["attentions"][0], first, clause=clause, kind=SELF_KIND, field="attentions")
    per_head = S.head_masks(data.draw, cfg, per_layer=False)
    broadcast = run(model_cache, handle, dict(case.inputs, head_mask=np.tile(per_head, (layers, 1))), flags=flags)
    compare_outputs(check, run(model_cache, handle, dict(case.inputs, head_mask=per_head), flags=flags), broadcast,
                    class_name, clause=clause)


@examples(1)
@given(data=st.data())
def test_last_hidden_state_is_last_of_hidden_states(check, adapter, caps, class_name, model_cache, data):
    if "last_hidden_state" not in output_spec(class_name).field_names:
        pytest.skip(f"{class_name}'s output has no last_hidden_state field")
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    out = run(model_cache, build(model_cache, class_name, case.config), case.inputs,
              flags={"output_hidden_states": True})
    layers = case.config["num_hidden_layers"]
    check.equal(len(out.fields["hidden_states"]), layers + 1, clause="behaviour.last_hidden_state",
                what=f"number of hidden_states entries (num_hidden_layers={layers} + the embedding output)")
    check.clause(_field_id(class_name, "hidden_states"))
    check.equal(np.asarray(out.fields["hidden_states"][-1]), np.asarray(out.fields["last_hidden_state"]),
                clause="behaviour.last_hidden_state", what="hidden_states[-1] vs last_hidden_state")


@examples(2)
@given(data=st.data())
def test_encoder_input_is_the_embedding_layer(check, adapter, caps, class_name, model_cache, data):
    """hidden_states[0] equals the embedding layer recomputed in NumPy from the canonical weights:
    word + token type (+ absolute position) embeddings, LayerNorm with config.layer_norm_eps, and the
    E->H projection when embedding_size != hidden_size. A mismatch that another epsilon explains is
    blamed on ElectraConfig.field.layer_norm_eps."""
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "token_type_ids", "position_ids")))
    sc = spec_class(class_name)
    handle = build(model_cache, class_name, case.config)
    out = run(model_cache, handle, case.inputs, flags={"output_hidden_states": True})
    seq = case.dims["seq"]
    flat = {k: case.inputs[k].reshape(-1, seq) for k in ("input_ids", "token_type_ids", "position_ids")}
    weights = adapter.get_weights(handle)
    got = np.asarray(out.fields["hidden_states"][0], np.float64)

    def expected(eps=None):
        return ref.electra_embeddings(weights, sc.param_prefix, case.config, flat["input_ids"],
                                      flat["token_type_ids"], flat["position_ids"], eps=eps).reshape(got.shape)

    want = expected()
    check.clause("architecture.embeddings", "architecture.embeddings_project")
    config_eps = case.config["layer_norm_eps"]
    blame_alternative(check, got, want, [("ElectraConfig.field.layer_norm_eps", f"LayerNorm epsilon {eps:g} instead "
                                          f"of the config's {config_eps:g}", expected(eps))
                                         for eps in (_DEFAULT_EPS, 1e-6, 1e-5, 1e-3)
                                         if eps != config_eps])
    check.allclose(got, want, clause=_field_id(class_name, "hidden_states"), kind=REFERENCE_KIND, field="hidden_states")


@examples(1)
@given(data=st.data())
def test_inputs_embeds_equals_ids(check, adapter, caps, class_name, model_cache, data):
    sc = spec_class(class_name)
    if "inputs_embeds" not in sc.call_names:
        pytest.skip(f"{class_name} has no inputs_embeds argument")
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    check.clause("decision.tf_inputs_embeds_width")  # inputs_embeds (B,S,E) replaces the word lookup
    table = adapter.get_weights(handle)[sc.param_prefix + "embeddings.word_embeddings.weight"]
    embeds = np.asarray(table, np.float32)[case.inputs["input_ids"]]
    by_ids = run(model_cache, handle, case.inputs)
    by_embeds = run(model_cache, handle, dict(case.inputs, input_ids=None, inputs_embeds=embeds))
    check.clause(sc.call_arg("inputs_embeds").id)
    compare_outputs(check, by_embeds, by_ids, class_name, clause="behaviour.inputs_embeds_equals_ids")


def _causal_only(class_name: str) -> None:
    if "CausalLM" not in class_name:
        pytest.skip("behaviour.decoding_cache / causal_mask bind the causal LM classes only")


@examples(2)
@given(data=st.data())
def test_decoding_with_cache_equals_full_pass(check, adapter, caps, class_name, model_cache, data):
    _causal_only(class_name)
    caps.skip_unless("method:run_incremental")
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "attention_mask"), requires=("attention_mask",),
                             mask_kinds=("full", "left")))
    prompt = data.draw(st.integers(1, case.dims["seq"] - 1), label="prompt length")
    handle = build(model_cache, class_name, case.config)
    check.clause("decision.flax_cache", "decision.flax_position_ids_with_cache")  # positions omitted, cache used
    full = np.asarray(run(model_cache, handle, case.inputs).fields["logits"], np.float64)
    stepwise = np.asarray(adapter.run_incremental(handle, case.inputs, prompt), np.float64)
    real = (case.inputs["attention_mask"] == 1)[..., None]
    check.allclose(np.where(real, stepwise, 0.0), np.where(real, full, 0.0), clause="behaviour.decoding_cache",
                   kind=SELF_KIND, field="logits")


@examples(1)
@given(data=st.data())
def test_causal_mask_hides_later_tokens(check, adapter, caps, class_name, model_cache, data):
    _causal_only(class_name)
    case = data.draw(S.cases(caps, class_name, args=("input_ids",)))
    cut = data.draw(st.integers(1, case.dims["seq"] - 1), label="prefix length")
    changed = case.inputs["input_ids"].copy()
    changed[:, cut:] = (changed[:, cut:] + 1) % case.config["vocab_size"]
    handle = build(model_cache, class_name, case.config)
    a = run(model_cache, handle, case.inputs).fields["logits"]
    b = run(model_cache, handle, {"input_ids": changed}).fields["logits"]
    check.allclose(b[:, :cut], a[:, :cut], clause="behaviour.causal_mask", kind=SELF_KIND, field="logits")


def _multiple_choice_only(class_name: str) -> None:
    if "choices" not in spec_class(class_name).lead:
        pytest.skip("multiple-choice reshaping and the sequence summary bind the multiple-choice classes only")


@examples(1)
@given(data=st.data())
def test_each_choice_scored_alone(check, adapter, caps, class_name, model_cache, data):
    _multiple_choice_only(class_name)
    case = data.draw(S.cases(caps, class_name, args=_INPUTS))
    handle = build(model_cache, class_name, case.config)
    logits = run(model_cache, handle, case.inputs).fields["logits"]
    c = data.draw(st.integers(0, case.dims["choices"] - 1), label="choice")
    alone = run(model_cache, handle, {k: v[:, c:c + 1] for k, v in case.inputs.items()}).fields["logits"]
    check.allclose(alone[:, 0], logits[:, c], clause=_field_id(class_name, "logits"), kind=SELF_KIND, field="logits")


@examples(1)
@given(data=st.data())
def test_sequence_summary_options(check, adapter, caps, class_name, model_cache, data):
    """Multiple-choice logits recomputed in NumPy from the last hidden states and the head weights:
    summary_type, summary_use_proj and summary_activation as config.yaml defines them, on every bucket up
    to one per summary type in each example (not the few a draw would pick)."""
    _multiple_choice_only(class_name)
    every_summary_type = range(max(len(load_spec().config.field("summary_type").choices), len(S.default_buckets())))
    for bucket in S.fitting_buckets(caps, class_name, tuple(every_summary_type)):
        case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(bucket,)))
        _summary_options(check, adapter, class_name, model_cache, case,
                         data.draw(st.integers(0, 2**31 - 1), label="seed of the weights"))


#: scale of the weights the summary test loads: the projection's outputs then reach |x| of 1 to 4, where the
#: activation formulas differ most (exact and tanh gelu by up to 4.7e-4), not the near-zero range of a
#: small initialisation, where they agree within float32 noise
_SUMMARY_WEIGHT_SCALE = 1.0


def _summary_options(check, adapter, class_name: str, model_cache, case, seed: int) -> None:
    cfg = case.config
    w = drawn_weights(adapter.get_weights(build(model_cache, class_name, cfg)), _SUMMARY_WEIGHT_SCALE, seed)
    handle = model_cache.get(class_name, cfg, weights=w)
    out = run(model_cache, handle, case.inputs, flags={"output_hidden_states": True})
    hidden = out.fields["hidden_states"][-1]
    got = np.asarray(out.fields["logits"], np.float64)
    clauses = {n: f"ElectraConfig.field.{n}" for n in ("summary_type", "summary_use_proj", "summary_activation")}
    check.clause(*clauses.values(), "architecture.multiple_choice_head",
                 f"activation.{cfg['summary_activation'] or 'linear'}")
    want = _summary_logits(hidden, w, cfg, case.lead)
    alternatives = [(spec_field, f"{name}={alt!r} (the config says {cfg[name]!r})",
                     _summary_logits(hidden, w, dict(cfg, **{name: alt}), case.lead))
                    for name, spec_field in clauses.items()
                    for alt in (load_spec().config.field(name).choices or (True, False)) if alt != cfg[name]]
    blame_alternative(check, got, want, alternatives)
    check.allclose(got, want, clause=clauses["summary_type"], kind=REFERENCE_KIND, field="logits")


def _summary_logits(hidden, w, cfg, lead):
    """NumPy multiple-choice logits (lead) from the last hidden states (B*C, S, H) and canonical
    weights; None when the options need a projection the model does not have."""
    if cfg["summary_use_proj"] and "sequence_summary.summary.weight" not in w:
        return None
    return nm.head_outputs("multiple_choice", hidden, w, "", cfg)["logits"].reshape(lead)


# ---- Flax model-object API: params=, init_cache and the generation helpers -----------------------
def _flax_only(adapter, clause: str) -> None:
    if adapter.framework != "flax":
        pytest.skip(f"{clause} binds Flax classes only")


def _native_fields(output) -> dict:
    """Array fields of a Flax model output as numpy (opaque caches and tuples left out)."""
    return {k: np.asarray(v) for k, v in output.items()
            if v is not None and not isinstance(v, (dict, tuple, list))}


@examples(1)
@given(data=st.data())
def test_flax_params_argument_overrides_model_params(check, adapter, caps, class_name, model_cache, data):
    """__call__(..., params=p) computes with p (here: another seed's parameters, as host numpy arrays)
    and leaves model.params as they were."""
    clause = "behaviour.flax.params_override"
    _flax_only(adapter, clause)
    import jax

    case = data.draw(S.cases(caps, class_name, args=_INPUTS, buckets=(0,)))
    own = build(model_cache, class_name, case.config)
    other = model_cache.get(class_name, case.config, seed=1)
    before = adapter.get_weights(own)
    caps.skip_unless("api:native")  # the test calls the model object itself
    foreign = jax.tree_util.tree_map(np.asarray, other.native.params)
    got = _native_fields(own.native(**case.inputs, params=foreign))
    want = _native_fields(other.native(**case.inputs))
    plain = _native_fields(own.native(**case.inputs))
    check.equal(sorted(got), sorted(want), clause=clause, what="output fields with params=")
    for name, value in want.items():
        check.allclose(got[name], value, clause=clause, kind=SELF_KIND, field=name)
    name = primary_field(class_name)
    check.that(not np.allclose(plain[name], want[name]), clause=clause,
               message=f"two seeds gave the same {name}: the comparison cannot tell the params apart")
    after = adapter.get_weights(own)
    changed = [k for k in before if not np.array_equal(before[k], after[k])]
    check.that(not changed, clause=clause, message=f"calling with params= modified model.params: {changed[:5]}")


def _causal_lm_only(adapter, class_name: str) -> None:
    _flax_only(adapter, "behaviour.flax.init_cache")
    if "CausalLM" not in class_name:
        pytest.skip("behaviour.flax.init_cache binds FlaxElectraForCausalLM only")


@examples(1)
@given(data=st.data())
def test_flax_init_cache_and_generation_inputs(check, adapter, caps, class_name, model_cache, data):
    """init_cache(B, M) is a tree of zeros whose cached keys/values hold M positions of every layer's
    heads; prepare_inputs_for_generation gives a (B, M) mask, the prompt's positions and a cache, and
    update_inputs_for_generation advances the positions by one and carries the new cache, so that the
    next token's logits equal the full pass."""
    clause = "behaviour.flax.init_cache"
    _causal_lm_only(adapter, class_name)
    case = data.draw(S.cases(caps, class_name, args=("input_ids",), buckets=(0,)))
    cfg, ids = case.config, case.inputs["input_ids"]
    batch, seq = ids.shape
    # at least one spare slot: the mask cut to the positions so far is then shorter than the cache
    prompt, max_length = seq - 1, seq + data.draw(st.integers(1, 3), label="spare cache positions")
    caps.skip_unless("api:native")  # the test calls the model object itself
    model = build(model_cache, class_name, cfg).native
    check.clause("decision.flax_cache")
    from flax.traverse_util import flatten_dict

    try:
        cache = model.init_cache(batch, max_length)
    except Exception as err:  # noqa: BLE001 - a failing init_cache is this clause's finding
        check.fail(clause, f"init_cache({batch}, {max_length}) raised {type(err).__name__}: {err}")
    leaves = flatten_dict(dict(cache))
    heads = cfg["num_attention_heads"]
    kv_shape = (batch, max_length, heads, cfg["hidden_size"] // heads)
    kv = {k: v for k, v in leaves.items() if k[-1] in ("cached_key", "cached_value")}
    check.equal(len(kv), 2 * cfg["num_hidden_layers"], clause=clause, what="cached key/value entries (2 per layer)")
    for path, value in leaves.items():
        check.that(not np.any(np.asarray(value)), clause=clause, message=f"init_cache leaf {path} is not zeros")
    for path, value in kv.items():
        check.equal(tuple(np.shape(value)), kv_shape, clause=clause, what=f"shape of {'/'.join(path)}")
    mask = np.ones((batch, prompt), np.int32)
    kwargs = dict(model.prepare_inputs_for_generation(ids[:, :prompt], max_length, mask))
    check.equal(tuple(np.shape(kwargs["attention_mask"])), (batch, max_length), clause=clause,
                what="prepare_inputs_for_generation attention_mask shape")
    check.equal(np.asarray(kwargs["position_ids"]), np.broadcast_to(np.arange(prompt), (batch, prompt)),
                clause=clause, what="prompt position_ids (no padding)")
    first = model(ids[:, :prompt], **kwargs)
    step = dict(model.update_inputs_for_generation(first, dict(kwargs)))
    check.equal(np.asarray(step["position_ids"]).reshape(batch), np.full(batch, prompt), clause=clause,
                what="position_ids after update_inputs_for_generation")
    check.that(step["past_key_values"] is first.past_key_values, clause=clause,
               message="update_inputs_for_generation did not carry the call's new cache")
    following = model(ids[:, prompt:], **step)
    full = np.asarray(model(ids).logits)
    check.allclose(following.logits[:, 0], full[:, prompt], clause=clause, kind=SELF_KIND, field="logits")
    # the step's mask cut to the positions so far, (B, prompt + 1), instead of all max_length slots
    cut = dict(step, attention_mask=np.asarray(step["attention_mask"])[:, :prompt + 1])
    check.allclose(model(ids[:, prompt:], **cut).logits[:, 0], full[:, prompt], clause=clause, kind=SELF_KIND,
                   field="logits")
