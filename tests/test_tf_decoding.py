"""Decoder features: causal masking, the key/value cache (incremental decoding equals the full pass,
also with relative positions and padding), and cross-attention against the PyTorch reference."""
from __future__ import annotations

import numpy as np
import pytest

import impl_tf
from tf_helpers import assert_close, run_torch, tiny_config, torch_reference, torch_state
from impl_tf.weights import assign_canonical_state


def _decode_incrementally(model, ids, mask, prompt_len, **extra):
    out = model(ids[:, :prompt_len], attention_mask=mask[:, :prompt_len], use_cache=True, **extra)
    logits, past = [np.asarray(out.logits)], out.past_key_values
    for t in range(prompt_len, ids.shape[1]):
        out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=past, use_cache=True, **extra)
        logits.append(np.asarray(out.logits))
        past = out.past_key_values
    return np.concatenate(logits, axis=1), past


@pytest.mark.parametrize("position_embedding_type", ["absolute", "relative_key_query"])
def test_incremental_decoding_equals_the_full_pass(position_embedding_type):
    model = impl_tf.TFElectraForCausalLM(tiny_config(is_decoder=True, position_embedding_type=position_embedding_type))
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 40, (2, 8))
    mask = np.ones_like(ids)
    mask[1, :2] = 0  # left padding in the second row
    full = model(ids, attention_mask=mask)
    assert "past_key_values" in full and len(full.past_key_values) == model.config.num_hidden_layers
    stepwise, past = _decode_incrementally(model, ids, mask, prompt_len=3)
    # padded positions attend to nothing, so only the real positions are defined
    real = mask.astype(bool)
    assert_close(stepwise[real], np.asarray(full.logits)[real], "logits", kind="compiled_vs_eager")
    key, value = past[0]
    assert key.shape == (2, model.config.num_attention_heads, 8, model.config.head_dim) == value.shape


def test_the_causal_mask_hides_later_positions():
    model = impl_tf.TFElectraForCausalLM(tiny_config(is_decoder=True))
    ids = np.random.RandomState(1).randint(0, 40, (1, 6))
    changed = ids.copy()
    changed[0, 4:] = (changed[0, 4:] + 1) % 40
    a, b = model(ids).logits.numpy(), model(changed).logits.numpy()
    np.testing.assert_array_equal(a[:, :4], b[:, :4])
    assert not np.allclose(a[:, 4:], b[:, 4:])
    encoder = impl_tf.TFElectraModel(tiny_config())  # not a decoder: every position sees every other
    assert not np.allclose(encoder(ids).last_hidden_state[:, :4], encoder(changed).last_hidden_state[:, :4])


def test_use_cache_false_and_non_decoders_return_no_cache():
    decoder = impl_tf.TFElectraForCausalLM(tiny_config(is_decoder=True))
    ids = np.zeros((1, 3), np.int64)
    assert "past_key_values" not in decoder(ids, use_cache=False)
    assert "past_key_values" not in impl_tf.TFElectraModel(tiny_config())(ids, use_cache=True)


def test_cross_attention_equals_the_pytorch_reference_and_decodes_incrementally():
    pytest.importorskip("torch")
    config = tiny_config(is_decoder=True, add_cross_attention=True)
    pt = torch_reference("TFElectraForCausalLM", config)
    ours = impl_tf.TFElectraForCausalLM(config)
    result = assign_canonical_state(ours, torch_state(pt))
    assert not result.missing and any("crossattention" in n for n in result.state)
    rng = np.random.RandomState(2)
    ids = rng.randint(0, 40, (2, 6))
    encoder_states = rng.normal(size=(2, 5, config.hidden_size)).astype(np.float32)
    encoder_mask = np.ones((2, 5), np.int64)
    encoder_mask[0, -2:] = 0
    inputs = dict(input_ids=ids, encoder_hidden_states=encoder_states, encoder_attention_mask=encoder_mask)
    out = ours(**inputs, output_attentions=True)
    ref = run_torch(pt, dict(inputs, output_attentions=True, use_cache=False))
    assert_close(out.logits, ref.logits.numpy(), "logits")
    for a, b in zip(out.cross_attentions, ref.cross_attentions):
        assert_close(a, b.numpy(), "cross_attentions")
    stepwise, _ = _decode_incrementally(ours, ids, np.ones_like(ids), 2, encoder_hidden_states=encoder_states,
                                        encoder_attention_mask=encoder_mask)
    assert_close(stepwise, out.logits, "logits", kind="compiled_vs_eager")
