"""Incremental decoding for FlaxElectraForCausalLM: generation inputs and a small greedy ``generate``.

Shapes: B batch, S prompt length, M max_length (cache capacity), V vocab.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from impl_flax.cache import cache_length


class GenerationMixin:
    def prepare_inputs_for_generation(self, input_ids, max_length: int, attention_mask=None) -> dict:
        """A fresh cache of ``max_length`` positions, the attention mask (B, M) (prompt mask, then ones:
        later positions are hidden by the causal mask anyway) and the prompt's position ids (B, S),
        counting only attended tokens so that left padding does not shift positions."""
        batch, seq = np.shape(input_ids)
        past_key_values = self.init_cache(batch, max_length)
        extended = jnp.ones((batch, max_length), jnp.int32)
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask, jnp.int32)
            position_ids = jnp.maximum(jnp.cumsum(attention_mask, axis=-1) - 1, 0)
            extended = extended.at[:, :seq].set(attention_mask)
        else:
            position_ids = jnp.broadcast_to(jnp.arange(seq, dtype=jnp.int32), (batch, seq))
        return {"past_key_values": past_key_values, "attention_mask": extended, "position_ids": position_ids}

    def update_inputs_for_generation(self, model_outputs, model_kwargs: dict) -> dict:
        """Carry the updated cache forward; the next single token's position is the number of attended
        tokens before it (so left padding does not count), i.e. one past the last real token."""
        cache = model_outputs.past_key_values
        model_kwargs["past_key_values"] = cache
        written = cache_length(cache)
        mask = jnp.asarray(model_kwargs["attention_mask"])
        before = jnp.arange(mask.shape[-1]) < written
        model_kwargs["position_ids"] = jnp.sum(jnp.where(before, mask, 0), axis=-1, keepdims=True).astype(jnp.int32)
        return model_kwargs

    def generate(self, input_ids, max_new_tokens: int, attention_mask=None, params=None):
        """Greedy decoding: (B, S) prompt -> (B, S + max_new_tokens) ids, one cached step per new token."""
        input_ids = jnp.asarray(input_ids, jnp.int32)
        kwargs = self.prepare_inputs_for_generation(input_ids, input_ids.shape[1] + max_new_tokens, attention_mask)
        tokens, step_ids = [input_ids], input_ids
        for _ in range(max_new_tokens):
            outputs = self(step_ids, params=params, return_dict=True, **kwargs)
            step_ids = jnp.argmax(outputs.logits[:, -1, :], axis=-1).astype(jnp.int32)[:, None]
            tokens.append(step_ids)
            kwargs = self.update_inputs_for_generation(outputs, kwargs)
        return jnp.concatenate(tokens, axis=1)
