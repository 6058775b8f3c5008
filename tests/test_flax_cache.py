"""FlaxElectraForCausalLM incremental decoding: init_cache, past_key_values in and out,
prepare/update_inputs_for_generation, generate; chunked decoding with the cache equals one full pass
(behaviour.decoding_cache), also with left padding, relative positions and cross-attention."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from flax_helpers import assert_close, build, tiny_config

CLASS = "FlaxElectraForCausalLM"
VARIANTS = {"absolute": {}, "relative_key_query": dict(position_embedding_type="relative_key_query"),
            "cross_attention": dict(add_cross_attention=True)}
SEQ, MAX_LENGTH = 7, 9


_BUILT = {}


def _case(variant):
    if variant in _BUILT:
        return _BUILT[variant]
    config = tiny_config(CLASS, **VARIANTS[variant])
    rng = np.random.default_rng(0)
    ids = rng.integers(1, config.vocab_size, (2, SEQ))
    mask = np.ones_like(ids)
    mask[1, :2] = 0  # left padding
    encoder = rng.normal(size=(2, 3, config.hidden_size)).astype(np.float32) if config.add_cross_attention else None
    _BUILT[variant] = build(CLASS, config), ids, mask, encoder
    return _BUILT[variant]


def _decode(model, ids, mask, encoder, prompt_len):
    kwargs = model.prepare_inputs_for_generation(ids[:, :prompt_len], MAX_LENGTH, attention_mask=mask[:, :prompt_len])
    kwargs["attention_mask"] = kwargs["attention_mask"].at[:, :SEQ].set(mask)
    out = model(ids[:, :prompt_len], encoder_hidden_states=encoder, **kwargs)
    logits = [out.logits]
    for t in range(prompt_len, SEQ):
        kwargs = model.update_inputs_for_generation(out, kwargs)
        out = model(ids[:, t:t + 1], encoder_hidden_states=encoder, **kwargs)
        logits.append(out.logits)
    return np.concatenate(logits, axis=1)


@pytest.mark.parametrize("variant,prompt_len", [("absolute", 1), ("absolute", 3), ("absolute", 6),
                                                ("relative_key_query", 3), ("cross_attention", 2)])
def test_step_by_step_decoding_equals_the_full_pass(variant, prompt_len):
    model, ids, mask, encoder = _case(variant)
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0)
    full = model(ids, attention_mask=mask, position_ids=positions, encoder_hidden_states=encoder).logits
    steps = _decode(model, ids, mask, encoder, prompt_len)
    # padded positions attend to nothing; their rows are not outputs anyone reads
    assert_close(steps[mask == 1], np.asarray(full)[mask == 1], "logits", kind="compiled_vs_eager")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_chunks_with_default_positions_equal_the_full_pass(variant):
    model, ids, _, encoder = _case(variant)
    full = model(ids, encoder_hidden_states=encoder).logits
    cache = model.init_cache(2, MAX_LENGTH)
    chunks = []
    for start, stop in ((0, 2), (2, 5), (5, 6), (6, 7)):
        out = model(ids[:, start:stop], past_key_values=cache, encoder_hidden_states=encoder)
        cache = out.past_key_values
        chunks.append(out.logits)
    assert_close(np.concatenate(chunks, 1), full, "logits", kind="compiled_vs_eager")


def test_single_token_steps_compile_once():
    model, ids, mask, encoder = _case("absolute")
    _decode(model, ids, mask, encoder, 2)
    before = model.trace_count
    _decode(model, ids, mask, encoder, 2)
    assert model.trace_count == before


def test_cache_shapes_and_index():
    model = build(CLASS)
    cache = model.init_cache(3, 5)
    config = model.config
    leaves = jax.tree_util.tree_leaves_with_path(cache)
    keys = [leaf for path, leaf in leaves if "cached_key" in jax.tree_util.keystr(path)]
    assert len(keys) == config.num_hidden_layers
    assert all(k.shape == (3, 5, config.num_attention_heads, config.head_dim) and not k.any() for k in keys)
    out = model(np.ones((3, 2), int), past_key_values=cache)
    indices = [int(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(out.past_key_values)
               if "cache_index" in jax.tree_util.keystr(path)]
    assert indices == [2] * config.num_hidden_layers
    assert model(np.ones((3, 2), int), past_key_values=cache, return_dict=False)[1] is not None


def test_generate_is_greedy_over_the_full_pass():
    model = build(CLASS)
    prompt = np.array([[3, 4, 5], [6, 7, 8]])
    generated = np.asarray(model.generate(prompt, 4))
    assert generated.shape == (2, 7)
    np.testing.assert_array_equal(generated[:, :3], prompt)
    full = np.asarray(model(generated).logits)
    np.testing.assert_array_equal(generated[:, 3:], full[:, 2:-1].argmax(-1))


def test_causal_mask_hides_later_tokens():
    model = build(CLASS)
    ids = np.array([[3, 4, 5, 6, 7]])
    changed = ids.copy()
    changed[0, 3:] = [9, 10]
    np.testing.assert_array_equal(model(ids).logits[:, :3], model(changed).logits[:, :3])


def test_init_cache_needs_a_decoder():
    with pytest.raises(ValueError, match="is_decoder"):
        build("FlaxElectraForMaskedLM").init_cache(1, 4)
