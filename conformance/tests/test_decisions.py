"""Decisions (decisions.yaml) that no other family's check covers: each test checks what the spec
decided where the documentation, the reference and transformers' ports disagree, and names the
decision. Decisions whose behaviour another family already checks are named there (losses,
numerics, architecture, errors, semantics, defaults, tokenizer).

Shape keys: B batch, S sequence, Se encoder sequence, H hidden, E embedding, V vocab.
"""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from conformance import strategies as S
from conformance.tests._helpers import (SELF_KIND, build, error_fragments, eval_shape, primary_field, run,
                                        spec_class)
from spec import load_spec

_SHAPE = S.SHAPE_BUCKETS[0]  # (B, S): one input shape for every model of this file


def _ids(config, lead: tuple[int, ...]) -> np.ndarray:
    """(lead.., S) int32 ids from a fixed seed."""
    return np.random.default_rng(7).integers(0, config["vocab_size"], (*lead, _SHAPE[1])).astype(np.int32)


def _lead(class_name: str) -> tuple[int, ...]:
    return (_SHAPE[0], S.CHOICES) if "choices" in spec_class(class_name).lead else (_SHAPE[0],)


def _base_class(framework: str) -> str:
    return next(c.name for c in load_spec().classes_for(framework) if not c.param_prefix)


# ---- signatures ----------------------------------------------------------------------------------
@pytest.mark.family("signatures")
def test_tf_constructor_takes_config_and_keywords(check, adapter, caps, class_name):
    """decision.tf_init_signature: every TF class is built as (config, **kwargs); an extra *inputs is
    allowed, nothing else."""
    if adapter.framework != "tf":
        pytest.skip("decision.tf_init_signature binds TF classes only")
    caps.skip_unless("api:documented")
    clause = "decision.tf_init_signature"
    params = list(adapter.constructor_signature(class_name).parameters.values())
    spec_params = spec_class(class_name).constructor
    named = [p.name for p in spec_params if p.kind not in ("var_positional", "var_keyword")]
    check.equal([p.name for p in params[:len(named)]], named, clause=clause,
                what=f"{class_name}.__init__ leading parameters")
    if any(p.kind == "var_keyword" for p in spec_params):
        check.that(any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params), clause=clause,
                   message=f"{class_name}.__init__ takes no **kwargs: {[p.name for p in params]}")
    extra = [p.name for p in params[len(named):] if p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                      inspect.Parameter.VAR_KEYWORD)]
    check.that(not extra, clause=clause, message=f"{class_name}.__init__ has parameters beyond config, *inputs "
                                                 f"and **kwargs: {extra}")


@pytest.mark.family("signatures")
def test_tf_inputs_embeds_alone_as_keyword(check, adapter, caps, class_name, model_cache):
    """decision.tf_keyword_only_inputs: model(inputs_embeds=x) with no other argument works (through the
    adapter's exact call, call_native) and equals model(input_ids=ids) when x holds the ids' embeddings."""
    sc = spec_class(class_name)
    if adapter.framework != "tf" or "inputs_embeds" not in sc.call_names:
        pytest.skip("decision.tf_keyword_only_inputs binds TF classes taking inputs_embeds")
    caps.skip_unless("method:call_native", "input:inputs_embeds")
    call_native = adapter.call_native
    clause = "decision.tf_keyword_only_inputs"
    check.clause(clause, "decision.tf_inputs_embeds_width")
    cfg = S.config_bucket(0, class_name, caps)
    handle = build(model_cache, class_name, cfg)
    ids = _ids(cfg, _lead(class_name))
    table = adapter.get_weights(handle)[sc.param_prefix + "embeddings.word_embeddings.weight"]
    field = primary_field(class_name)
    try:
        by_embeds = call_native(handle, {"inputs_embeds": np.asarray(table, np.float32)[ids]})
    except Exception as err:  # noqa: BLE001 - the finding: the keyword-only call is refused
        check.fail(clause, f"model(inputs_embeds=x) raised {type(err).__name__}: {err}")
    by_ids = call_native(handle, {"input_ids": ids})
    check.allclose(np.asarray(by_embeds[field]), np.asarray(by_ids[field]), clause=clause, kind=SELF_KIND,
                   field=field)


# ---- semantics -----------------------------------------------------------------------------------
def _encoder_free_head(framework: str) -> str:
    """The first head whose reference takes no encoder inputs (not the base model, not the decoder)."""
    return next(c.name for c in load_spec().classes_for(framework)
                if c.param_prefix and c.lead == "batch" and c.loss != "causal_lm")


@pytest.mark.family("semantics")
def test_flax_heads_accept_encoder_inputs(check, adapter, caps, device, model_cache):
    """decision.flax_past_key_values_on_every_head: a Flax head whose reference has no encoder inputs
    takes encoder_hidden_states and encoder_attention_mask (the signature family checks that every
    class lists them); without cross-attention in the config they change nothing. One head, to keep
    the compilations few."""
    if adapter.framework != "flax":
        pytest.skip("decision.flax_past_key_values_on_every_head binds Flax classes only")
    class_name = _encoder_free_head(adapter.framework)
    caps.skip_unless(f"class:{class_name}", "input:encoder_hidden_states", "input:encoder_attention_mask")
    if not adapter.supports(class_name, "float32", device).ok:
        caps.skip(f"{class_name} on {device}")
    clause = "decision.flax_past_key_values_on_every_head"
    check.clause(clause)
    cfg = S.config_bucket(0, class_name, caps)
    handle = build(model_cache, class_name, cfg)
    ids = _ids(cfg, _lead(class_name))
    dims = {"batch": _SHAPE[0], "seq": _SHAPE[1], "enc_seq": _SHAPE[1] + 1, "past_seq": 0}
    states = np.random.default_rng(3).normal(
        size=eval_shape(spec_class(class_name).call_arg("encoder_hidden_states").shape, cfg, dims)).astype(np.float32)
    plain = run(model_cache, handle, {"input_ids": ids})
    try:
        with_encoder = run(model_cache, handle, {"input_ids": ids, "encoder_hidden_states": states,
                                                 "encoder_attention_mask": np.ones(states.shape[:2], np.int32)})
    except Exception as err:  # noqa: BLE001 - the finding: the arguments are refused
        check.fail(clause, f"encoder_hidden_states / encoder_attention_mask refused: {type(err).__name__}: {err}")
    field = primary_field(class_name)
    check.allclose(with_encoder.fields[field], plain.fields[field], clause=clause, kind=SELF_KIND, field=field)


@pytest.mark.family("invariances")
def test_chunked_decoding_with_relative_positions(check, adapter, caps, class_name, model_cache):
    """decision.relative_positions_with_cache: with relative position embeddings, decoding a chunk of
    several tokens after a cache (query i at past_seq + i) gives the full pass's logits."""
    if "CausalLM" not in class_name:
        pytest.skip("decision.relative_positions_with_cache binds the causal LM classes only")
    caps.skip_unless("method:run_chunks")
    clause = "decision.relative_positions_with_cache"
    check.clause(clause, "architecture.relative_positions")
    # the last relative kind (relative_key_query) adds both the query and the key distance terms
    kind = [k for k in load_spec().config.field("position_embedding_type").choices if k != "absolute"][-1]
    cfg = next(c for c in (S.config_bucket(i, class_name, caps) for i in range(S.n_config_buckets()))
               if c["position_embedding_type"] == kind)  # a bucket other tests build too
    handle = build(model_cache, class_name, cfg)
    ids = _ids(cfg, _lead(class_name))
    full = run(model_cache, handle, {"input_ids": ids}).fields["logits"]
    sizes = (2, _SHAPE[1] - 2)  # a prompt, then several tokens at once after the cache
    chunked = adapter.run_chunks(handle, {"input_ids": ids}, sizes)
    check.allclose(chunked, full, clause=clause, kind=SELF_KIND, field="logits")


# ---- errors under compilation --------------------------------------------------------------------
@pytest.mark.family("errors")
def test_compiled_call_still_checks_shapes_and_dtypes(check, adapter, caps, device, model_cache):
    """decision.value_checks_under_jit: under jax.jit / tf.function shape and dtype checks still run
    at trace time: a mismatched attention_mask raises error.shape.mismatch, float ids error.input_ids.dtype."""
    class_name = _base_class(adapter.framework)
    caps.skip_unless(f"class:{class_name}")
    if not adapter.supports(class_name, "float32", device).ok:
        caps.skip(f"{class_name} on {device}")
    clause = "decision.value_checks_under_jit"
    check.clause(clause)
    cfg = S.config_bucket(0, class_name, caps)
    handle = build(model_cache, class_name, cfg)
    ids = _ids(cfg, _lead(class_name))
    errors = load_spec().errors
    mask = np.ones((ids.shape[0], ids.shape[1] + 1), np.int32)
    values = {"arg": "attention_mask", "expected": tuple(ids.shape), "actual": tuple(mask.shape)}
    with check.raises(ValueError, clause=clause, words=error_fragments(errors["error.shape.mismatch"], values)):
        run(model_cache, handle, {"input_ids": ids, "attention_mask": mask}, compiled=True)
    values = {"arg": "input_ids", "actual_dtype": "float32"}
    with check.raises(TypeError, clause=clause, words=error_fragments(errors["error.input_ids.dtype"], values)):
        run(model_cache, handle, {"input_ids": ids.astype(np.float32)}, compiled=True)


# ---- persistence ---------------------------------------------------------------------------------
@pytest.mark.family("persistence")
def test_default_save_writes_canonical_safetensors(check, adapter, caps, device, model_cache, tmp_path):
    """decision.save_format and files.api.save_pretrained (its default): save_pretrained(directory) with
    its defaults writes model.safetensors holding every parameter under its canonical PyTorch name,
    tagged with the first metadata format files.yaml lists (the canonical one); it loads back with
    equal weights."""
    caps.skip_unless("method:save_pretrained_defaults")
    from safetensors import safe_open

    class_name = _base_class(adapter.framework)
    clause = "decision.save_format"
    check.clause(clause, "files.safetensors", "files.api.save_pretrained")
    handle = build(model_cache, class_name, S.config_bucket(0, class_name, caps))
    adapter.save_pretrained_defaults(handle, str(tmp_path))
    entry = load_spec().raw("files")["files"]["safetensors"]
    path = tmp_path / entry["name"]
    check.that(path.is_file(), clause=clause,
               message=f"save_pretrained() with its defaults wrote {sorted(p.name for p in tmp_path.iterdir())}, "
                       f"not {entry['name']}")
    expected = adapter.get_weights(handle)
    with safe_open(str(path), framework="np") as f:
        metadata, names = f.metadata() or {}, set(f.keys())
        check.equal(metadata.get("format"), entry["metadata"]["format"][0], clause=clause, what="metadata format")
        check.equal(sorted(names), sorted(expected), clause=clause, what="tensor names (canonical)")
        for name, value in expected.items():
            check.equal(f.get_tensor(name), np.asarray(value), clause=clause, what=f"saved {name}")
