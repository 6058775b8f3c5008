"""The ELECTRA layer stack in linen: embeddings -> (embeddings_project) -> L x [self-attention block,
(cross-attention block), feed-forward block], post-LayerNorm, as in the PyTorch reference.

Module names are the checkpoint's (``embeddings/word_embeddings``, ``encoder/layer/<i>/attention/self/query``,
...), so loading needs no renaming table. The attention math is pure functions over arrays; the modules
hold the parameters, the dropout and the key/value cache.

Shape key: B batch, S query length, Sk key length (the cache length when decoding with a cache, enc_seq
for cross-attention), H hidden, E embedding, I intermediate, N heads, D head_dim (H / N), L layers,
P max_position_embeddings, V vocab, T type_vocab_size.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from impl_flax.modeling.frozen_config import FrozenConfig


def normal_init(config: FrozenConfig):
    """Every kernel and table starts from N(0, initializer_range^2)."""
    return nn.initializers.normal(stddev=config.initializer_range)


# -- activations, by their config name (hidden_act, summary_activation; spec: ElectraConfig.field.hidden_act)

def _exact_gelu(x):
    return jax.nn.gelu(x, approximate=False)


def _tanh_gelu(x):
    return jax.nn.gelu(x, approximate=True)


def _quick_gelu(x):
    return x * jax.nn.sigmoid(1.702 * x)


def _identity(x):
    return x


ACTIVATIONS: dict[str, Callable] = {
    "gelu": _exact_gelu, "gelu_new": _tanh_gelu, "gelu_fast": _tanh_gelu, "gelu_pytorch_tanh": _tanh_gelu,
    "quick_gelu": _quick_gelu, "relu": jax.nn.relu, "silu": jax.nn.silu, "swish": jax.nn.silu, "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid, "linear": _identity,
}


def activation(name):
    """The activation called ``name`` (a key of ACTIVATIONS); None (no activation) is the identity."""
    if name is None:
        return _identity
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None


# -- attention math: pure functions ---------------------------------------------------------------

def split_heads(x, num_heads: int):
    """(B, S, H) -> (B, S, N, D)."""
    return x.reshape(x.shape[:2] + (num_heads, x.shape[-1] // num_heads))


def content_scores(query, key):
    """query (B, S, N, D), key (B, Sk, N, D) -> scaled query (B, N, S, D), scores q.k / sqrt(D) (B, N, S, Sk).

    Head-major layout for the batched matmul: XLA on CPU runs (B, N, S, D) x (B, N, D, Sk) about a third
    faster than the same contraction over (B, S, N, D). The scale goes on the query, once."""
    scale = 1.0 / jnp.sqrt(jnp.asarray(query.shape[-1], dtype=query.dtype))
    scaled_query = jnp.transpose(query, (0, 2, 1, 3)) * scale
    return scaled_query, jnp.matmul(scaled_query, jnp.transpose(key, (0, 2, 3, 1)))


def distance_rows(query_positions, key_positions, max_positions: int):
    """query_positions (S,), key_positions (Sk,) -> rows (S, Sk) of the (2P-1, D) distance table: q - k + P - 1.
    Clipped into the table: keys past a cache's filled length are masked anyway, their lookup only stays in range."""
    distance = query_positions[:, None] - key_positions[None, :]
    return jnp.clip(distance + max_positions - 1, 0, 2 * max_positions - 2)


def relative_scores(scaled_query, key, distance_vectors, with_key_term: bool):
    """scaled_query (B, N, S, D), key (B, Sk, N, D), distance_vectors (S, Sk, D) -> (B, N, S, Sk):
    q.r / sqrt(D) (relative_key), plus k.r / sqrt(D) (relative_key_query)."""
    scores = jnp.einsum("bnqd,qkd->bnqk", scaled_query, distance_vectors)
    if with_key_term:
        scale = 1.0 / jnp.sqrt(jnp.asarray(key.shape[-1], dtype=key.dtype))
        scores = scores + jnp.einsum("bknd,qkd->bnqk", key, distance_vectors) * scale
    return scores


def masked_softmax(scores, allowed):
    """scores (B, N, S, Sk), allowed (B or 1, 1, S or 1, Sk) bool -> probabilities (B, N, S, Sk) float32.

    The mask is an additive bias (0 or float32's lowest) rather than a select: XLA on CPU then fuses scores,
    softmax and the context matmul into one kernel and never writes the scores to memory."""
    bias = jnp.where(allowed, 0.0, jnp.finfo(jnp.float32).min).astype(jnp.float32)
    return jax.nn.softmax(scores.astype(jnp.float32) + bias, axis=-1)


def weighted_values(probs, value):
    """probs (B, N, S, Sk), value (B, Sk, N, D) -> context (B, S, H)."""
    context = jnp.matmul(probs, jnp.transpose(value, (0, 2, 1, 3)))  # (B, N, S, D)
    batch, heads, length, head_dim = context.shape
    return jnp.transpose(context, (0, 2, 1, 3)).reshape(batch, length, heads * head_dim)


# -- modules ----------------------------------------------------------------------------------------

class ElectraEmbeddings(nn.Module):
    """word (V, E) + token type (T, E) (+ position (P, E) when absolute) -> LayerNorm -> dropout.

    With relative_key / relative_key_query the position table is kept (it is part of the checkpoint) but
    not added: positions enter through the attention scores instead."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        init = normal_init(c)
        self.word_embeddings = nn.Embed(c.vocab_size, c.embedding_size, embedding_init=init, dtype=self.dtype)
        self.position_embeddings = nn.Embed(c.max_position_embeddings, c.embedding_size, embedding_init=init,
                                            dtype=self.dtype)
        self.token_type_embeddings = nn.Embed(c.type_vocab_size, c.embedding_size, embedding_init=init,
                                              dtype=self.dtype)
        self.LayerNorm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=c.hidden_dropout_prob)

    def __call__(self, input_ids, token_type_ids, position_ids, deterministic: bool):
        """input_ids, token_type_ids, position_ids (B, S) int -> (B, S, E)."""
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        if self.config.position_embedding_type == "absolute":
            x = x + self.position_embeddings(position_ids)
        else:
            _ = self.position_embeddings.embedding  # unused here, but the table belongs to the checkpoint
        return self.dropout(self.LayerNorm(x), deterministic=deterministic)


class Projection(nn.Module):
    """A dense layer's parameters, kernel (in, out) and bias (out,), named like nn.Dense's; applied by
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
    """softmax(q.k (+ relative terms) / sqrt(D)) over the allowed keys, times the values.

    ``relative``: adds the learned distance table (2P-1, D) to the scores (self-attention with
    position_embedding_type relative_*; never cross-attention).
    ``causal``: a decoder's self-attention (query i sees keys <= i), which can use the "cache" collection."""

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

    @nn.compact
    def _write_cache(self, key, value, init_cache: bool):
        """Append this call's key, value (B, S, N, D) at the cache index. Returns the whole cached key, value
        (B, Sk, N, D) and the absolute position of the first query (None without a cache)."""
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

    def __call__(self, hidden_states, key_mask, layer_head_mask, key_value_states, init_cache: bool,
                 deterministic: bool, output_attentions: bool):
        """hidden_states (B, S, H); key_mask (B, 1, 1, Sk) bool, True = may attend; layer_head_mask (N,) float
        or None (every head kept); key_value_states (B, enc_seq, H) for cross-attention, else None.
        Returns context (B, S, H) and probabilities (B, N, S, Sk) (None unless output_attentions)."""
        c = self.config
        if key_value_states is None:
            query, key, value = fused_projection(hidden_states, (self.query, self.key, self.value), self.dtype)
        else:
            (query,) = fused_projection(hidden_states, (self.query,), self.dtype)
            key, value = fused_projection(key_value_states, (self.key, self.value), self.dtype)
        query, key, value = (split_heads(x, c.num_attention_heads) for x in (query, key, value))

        first_query = None
        if self.causal:
            key, value, first_query = self._write_cache(key, value, init_cache)
        query_positions = jnp.arange(query.shape[1]) + (0 if first_query is None else first_query)  # (S,)
        key_positions = jnp.arange(key.shape[1])  # (Sk,)

        scaled_query, scores = content_scores(query, key)  # (B, N, S, D), (B, N, S, Sk)
        if self.relative:
            rows = distance_rows(query_positions, key_positions, c.max_position_embeddings)
            scores = scores + relative_scores(scaled_query, key, self.distance_embedding(rows),
                                              with_key_term=c.position_embedding_type == "relative_key_query")
        allowed = key_mask
        if self.causal:
            allowed = jnp.logical_and(allowed, key_positions[None, :] <= query_positions[:, None])
        probs = masked_softmax(scores, allowed).astype(self.dtype)
        probs = self.dropout(probs, deterministic=deterministic)
        if layer_head_mask is not None:
            probs = probs * layer_head_mask.astype(probs.dtype)[None, :, None, None]
        return weighted_values(probs, value), (probs if output_attentions else None)



class ResidualOutput(nn.Module):
    """dense(X->H) -> dropout -> LayerNorm(. + residual): the ``output`` of the attention block (X = H)
    and of the feed-forward block (X = I)."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = nn.Dense(c.hidden_size, kernel_init=normal_init(c), dtype=self.dtype)
        self.LayerNorm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=c.hidden_dropout_prob)

    def __call__(self, hidden_states, residual, deterministic: bool):
        """hidden_states (B, S, X), residual (B, S, H) -> (B, S, H)."""
        x = self.dropout(self.dense(hidden_states), deterministic=deterministic)
        return self.LayerNorm(x + residual)


class ElectraAttention(nn.Module):
    """``self`` (the attention proper) then ``output`` (projection, residual, LayerNorm)."""

    config: FrozenConfig
    causal: bool = False
    relative: bool = False
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.self = ElectraSelfAttention(self.config, causal=self.causal, relative=self.relative, dtype=self.dtype)
        self.output = ResidualOutput(self.config, dtype=self.dtype)

    def __call__(self, hidden_states, key_mask, layer_head_mask, key_value_states, init_cache: bool,
                 deterministic: bool, output_attentions: bool):
        """As ElectraSelfAttention; returns (B, S, H) after the residual LayerNorm, and the probabilities."""
        context, probs = self.self(hidden_states, key_mask, layer_head_mask, key_value_states, init_cache,
                                   deterministic, output_attentions)
        return self.output(context, hidden_states, deterministic), probs


class ElectraIntermediate(nn.Module):
    """dense(H->I) -> hidden_act."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.dense = nn.Dense(self.config.intermediate_size, kernel_init=normal_init(self.config), dtype=self.dtype)

    def __call__(self, hidden_states):
        """(B, S, H) -> (B, S, I)."""
        return activation(self.config.hidden_act)(self.dense(hidden_states))


class ElectraLayer(nn.Module):
    """One post-LayerNorm transformer layer: self-attention, cross-attention (add_cross_attention), feed-forward."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.attention = ElectraAttention(c, causal=c.is_decoder, relative=c.position_embedding_type != "absolute",
                                          dtype=self.dtype)
        if c.add_cross_attention:
            self.crossattention = ElectraAttention(c, dtype=self.dtype)
        self.intermediate = ElectraIntermediate(c, dtype=self.dtype)
        self.output = ResidualOutput(c, dtype=self.dtype)

    def __call__(self, hidden_states, key_mask, layer_head_mask, encoder_hidden_states, encoder_key_mask,
                 init_cache: bool, deterministic: bool, output_attentions: bool):
        """hidden_states (B, S, H); key_mask (B, 1, 1, Sk) bool; layer_head_mask (N,) or None;
        encoder_hidden_states (B, enc_seq, H) or None; encoder_key_mask (B, 1, 1, enc_seq) bool or None.
        Returns (B, S, H) and the self- and cross-attention probabilities (None unless asked)."""
        # self-attention block
        attended, self_probs = self.attention(hidden_states, key_mask, layer_head_mask, None, init_cache,
                                              deterministic, output_attentions)
        # cross-attention block: queries from the decoder, keys and values from the encoder output
        cross_probs = None
        if encoder_hidden_states is not None:
            attended, cross_probs = self.crossattention(attended, encoder_key_mask, layer_head_mask,
                                                        encoder_hidden_states, False, deterministic,
                                                        output_attentions)
        # feed-forward block
        outputs = self.output(self.intermediate(attended), attended, deterministic)
        return outputs, self_probs, cross_probs


# self is argument 0: init_cache, deterministic and output_attentions are Python flags
_RematLayer = nn.remat(ElectraLayer, static_argnums=(6, 7, 8))


class ElectraLayerCollection(nn.Module):
    """The L layers, named "0".."L-1" like the checkpoint's ``encoder.layer.<i>``, applied in turn."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    @nn.compact
    def __call__(self, hidden_states, key_mask, head_mask, encoder_hidden_states, encoder_key_mask,
                 init_cache: bool, deterministic: bool, output_attentions: bool, output_hidden_states: bool):
        """As ElectraEncoder."""
        layer_class = _RematLayer if self.gradient_checkpointing else ElectraLayer
        all_hidden, all_self, all_cross = [hidden_states], [], []
        for i in range(self.config.num_hidden_layers):
            layer = layer_class(self.config, dtype=self.dtype, name=str(i))
            hidden_states, self_probs, cross_probs = layer(
                hidden_states, key_mask, None if head_mask is None else head_mask[i], encoder_hidden_states,
                encoder_key_mask, init_cache, deterministic, output_attentions)
            all_hidden.append(hidden_states)
            all_self.append(self_probs)
            all_cross.append(cross_probs)
        with_cross = output_attentions and encoder_hidden_states is not None
        return (hidden_states,
                tuple(all_hidden) if output_hidden_states else None,
                tuple(all_self) if output_attentions else None,
                tuple(all_cross) if with_cross else None)


class ElectraEncoder(nn.Module):
    """The checkpoint's ``encoder``: it holds ``layer``, the collection of the L layers."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        self.layer = ElectraLayerCollection(self.config, dtype=self.dtype,
                                            gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, hidden_states, key_mask, head_mask, encoder_hidden_states, encoder_key_mask,
                 init_cache: bool, deterministic: bool, output_attentions: bool, output_hidden_states: bool):
        """hidden_states (B, S, H); key_mask (B, 1, 1, Sk) bool; head_mask (L, N) or None (every head kept);
        encoder_hidden_states (B, enc_seq, H) or None; encoder_key_mask (B, 1, 1, enc_seq) bool or None.
        Returns the last hidden states (B, S, H) and tuples (or None) of hidden states (L+1, each (B, S, H)),
        attentions and cross-attentions (L, each (B, N, S, Sk))."""
        return self.layer(hidden_states, key_mask, head_mask, encoder_hidden_states, encoder_key_mask,
                          init_cache, deterministic, output_attentions, output_hidden_states)


def key_mask(mask):
    """(B, Sk) 0/1 -> (B, 1, 1, Sk) bool, broadcast over heads and queries."""
    return (mask > 0)[:, None, None, :]


class ElectraModule(nn.Module):
    """The bare ELECTRA model: embeddings -> embeddings_project (only when E != H) -> encoder."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        c = self.config
        self.embeddings = ElectraEmbeddings(c, dtype=self.dtype)
        if c.embedding_size != c.hidden_size:
            self.embeddings_project = nn.Dense(c.hidden_size, kernel_init=normal_init(c), dtype=self.dtype)
        self.encoder = ElectraEncoder(c, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False):
        """input_ids, token_type_ids, position_ids (B, S) int; attention_mask (B, Sk) int; head_mask (L, N)
        float or None; encoder_hidden_states (B, enc_seq, H); encoder_attention_mask (B, enc_seq).
        Returns a dict of the base output's fields (None = absent)."""
        x = self.embeddings(input_ids, token_type_ids, position_ids, deterministic)  # (B, S, E)
        if self.config.embedding_size != self.config.hidden_size:
            x = self.embeddings_project(x)  # (B, S, H)
        encoder_key_mask = None if encoder_attention_mask is None else key_mask(encoder_attention_mask)
        last, hidden, attentions, cross = self.encoder(
            x, key_mask(attention_mask), head_mask, encoder_hidden_states, encoder_key_mask, init_cache,
            deterministic, output_attentions, output_hidden_states)
        return {"last_hidden_state": last, "hidden_states": hidden, "attentions": attentions,
                "cross_attentions": cross}

    def word_embedding_table(self):
        """(V, E), the table the tied generator head multiplies with."""
        return self.variables["params"]["embeddings"]["word_embeddings"]["embedding"]
