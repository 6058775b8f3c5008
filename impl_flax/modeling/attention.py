"""Multi-head attention: self-attention (optionally causal, with a key/value cache and relative position
scores) and cross-attention, followed by the residual output block.

Shapes: B batch, S query length, Sk key length (cache length M when decoding with a cache, enc_seq
for cross-attention), H hidden, N heads, D head_dim, P max_position_embeddings.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from impl_flax.modeling.embeddings import normal_init
from impl_flax.modeling.frozen_config import FrozenConfig


class Projection(nn.Module):
    """The parameters of a dense layer, kernel (in, out) and bias (out,), named like nn.Dense's; applied by
    ``fused_projection`` so that projections of the same input share one matmul."""

    features_in: int
    features_out: int
    kernel_init: Callable = nn.initializers.lecun_normal()

    def setup(self):
        self.kernel = self.param("kernel", self.kernel_init, (self.features_in, self.features_out))
        self.bias = self.param("bias", nn.initializers.zeros, (self.features_out,))


def fused_projection(x, projections, dtype):
    """x (B, S, in) through each projection -> tuple of (B, S, out), computed as one (in, sum out) matmul."""
    kernel = jnp.concatenate([p.kernel for p in projections], axis=1).astype(dtype)
    bias = jnp.concatenate([p.bias for p in projections]).astype(dtype)
    y = jnp.einsum("bsi,io->bso", x.astype(dtype), kernel) + bias
    return tuple(jnp.split(y, len(projections), axis=-1))


class ElectraSelfAttention(nn.Module):
    """Scores softmax(q.k (+ relative terms) / sqrt(D)) over allowed keys, times values.

    ``relative``: whether this block adds the learned distance embedding (2P-1, D) to the scores
    (self-attention with position_embedding_type relative_*; never cross-attention).
    ``causal``: a decoder's self-attention (query i sees keys <= i) that can use the "cache" collection.
    """

    config: FrozenConfig
    causal: bool = False
    relative: bool = False
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        init = normal_init(c)
        self.query = Projection(c.hidden_size, c.hidden_size, init)
        self.key = Projection(c.hidden_size, c.hidden_size, init)
        self.value = Projection(c.hidden_size, c.hidden_size, init)
        if self.relative:
            self.distance_embedding = nn.Embed(2 * c.max_position_embeddings - 1, c.head_dim,
                                               embedding_init=init, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=c.attention_probs_dropout_prob)

    def _project(self, hidden_states, key_value_states):
        """query (B, S, N, D) from hidden_states; key, value (B, Sk, N, D) from key_value_states (cross-attention)
        or hidden_states. The projections sharing an input run as one matmul over concatenated kernels."""
        if key_value_states is None:
            q, k, v = fused_projection(hidden_states, (self.query, self.key, self.value), self.dtype)
        else:
            (q,) = fused_projection(hidden_states, (self.query,), self.dtype)
            k, v = fused_projection(key_value_states, (self.key, self.value), self.dtype)
        return self._heads(q), self._heads(k), self._heads(v)

    def _heads(self, x):
        """(B, S, H) -> (B, S, N, D)."""
        return x.reshape(x.shape[:2] + (self.config.num_attention_heads, self.config.head_dim))

    @nn.compact
    def _write_cache(self, key, value, init_cache: bool):
        """Append this call's key/value (B, S, N, D) at the cache index; returns the full cached
        key/value (B, M, N, D) and the absolute index of the first query, or None without a cache."""
        has_cache = self.has_variable("cache", "cached_key")
        if not (has_cache or init_cache):
            return key, value, None
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
        if not has_cache:  # creating the cache (init_cache): nothing to append yet
            return key, value, jnp.array(0, dtype=jnp.int32)
        start, new_length = cache_index.value, key.shape[1]
        key = lax.dynamic_update_slice(cached_key.value, key.astype(cached_key.value.dtype), (0, start, 0, 0))
        value = lax.dynamic_update_slice(cached_value.value, value.astype(cached_value.value.dtype), (0, start, 0, 0))
        cached_key.value, cached_value.value = key, value
        cache_index.value = start + new_length
        return key, value, start

    def __call__(self, hidden_states, key_mask, layer_head_mask, key_value_states=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False):
        """hidden_states (B, S, H); key_mask (B, 1, 1, Sk) bool, True = may attend; layer_head_mask (N,) float or None (all kept);
        key_value_states (B, enc_seq, H) for cross-attention. Returns context (B, S, H) and probs (B, N, S, Sk)."""
        c = self.config
        query, key, value = self._project(hidden_states, key_value_states)
        query_length = query.shape[1]

        first_query = None
        if self.causal:
            key, value, first_query = self._write_cache(key, value, init_cache)
        key_length = key.shape[1]
        query_positions = jnp.arange(query_length) + (0 if first_query is None else first_query)
        key_positions = jnp.arange(key_length)

        # head-major layout for the two batched matmuls: XLA on CPU runs (B, N, S, D) x (B, N, D, Sk) about
        # a third faster than the same contraction written over (B, S, N, D); the scale goes on the query
        scale = 1.0 / jnp.sqrt(jnp.asarray(c.head_dim, dtype=query.dtype))
        query_heads = jnp.transpose(query, (0, 2, 1, 3)) * scale  # (B, N, S, D)
        scores = jnp.matmul(query_heads, jnp.transpose(key, (0, 2, 3, 1)))  # (B, N, S, Sk)
        if self.relative:
            distance = query_positions[:, None] - key_positions[None, :]
            # keys beyond the cached length are masked below; clipping keeps their (unused) lookup in range
            rows = jnp.clip(distance + c.max_position_embeddings - 1, 0, 2 * c.max_position_embeddings - 2)
            distance_vectors = self.distance_embedding(rows)  # (S, Sk, D)
            scores = scores + jnp.einsum("bnqd,qkd->bnqk", query_heads, distance_vectors)
            if c.position_embedding_type == "relative_key_query":
                scores = scores + jnp.einsum("bknd,qkd->bnqk", key, distance_vectors) * scale

        allowed = key_mask
        if self.causal:
            allowed = jnp.logical_and(allowed, key_positions[None, :] <= query_positions[:, None])
        # the mask as an additive bias (0 or the lowest float32) rather than a select on the scores: XLA on
        # CPU then fuses scores, softmax and the context matmul into one kernel (YNNPACK) and never writes
        # the (B, N, S, Sk) scores to memory
        bias = jnp.where(allowed, 0.0, jnp.finfo(jnp.float32).min).astype(jnp.float32)
        scores = scores.astype(jnp.float32) + bias
        probs = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
        probs = self.dropout(probs, deterministic=deterministic)
        if layer_head_mask is not None:
            probs = probs * layer_head_mask.astype(probs.dtype)[None, :, None, None]

        context = jnp.matmul(probs, jnp.transpose(value, (0, 2, 1, 3)))  # (B, N, S, D)
        context = jnp.transpose(context, (0, 2, 1, 3)).reshape(context.shape[0], query_length, c.hidden_size)
        return context, (probs if output_attentions else None)


class ResidualOutput(nn.Module):
    """dense(X->H) -> dropout -> LayerNorm(x + residual): the ``output`` block after attention (X = H)
    and after the feed-forward layer (X = I)."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = nn.Dense(c.hidden_size, kernel_init=normal_init(c), dtype=self.dtype)
        self.LayerNorm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=c.hidden_dropout_prob)

    def __call__(self, hidden_states, residual, deterministic: bool = True):
        """hidden_states (B, S, X), residual (B, S, H) -> (B, S, H)."""
        x = self.dropout(self.dense(hidden_states), deterministic=deterministic)
        return self.LayerNorm(x + residual)


class ElectraAttention(nn.Module):
    """``self`` (the attention proper) followed by ``output`` (projection + residual LayerNorm)."""

    config: FrozenConfig
    causal: bool = False
    relative: bool = False
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.self = ElectraSelfAttention(self.config, causal=self.causal, relative=self.relative, dtype=self.dtype)
        self.output = ResidualOutput(self.config, dtype=self.dtype)

    def __call__(self, hidden_states, key_mask, layer_head_mask, key_value_states=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False):
        """See ElectraSelfAttention; returns (B, S, H) and the probabilities (or None)."""
        context, probs = self.self(hidden_states, key_mask, layer_head_mask, key_value_states=key_value_states,
                                   init_cache=init_cache, deterministic=deterministic,
                                   output_attentions=output_attentions)
        return self.output(context, hidden_states, deterministic=deterministic), probs
