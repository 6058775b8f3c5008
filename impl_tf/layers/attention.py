"""Multi-head attention (scope ``attention`` / ``crossattention``): ``self`` computes the attention,
``output`` projects, adds the residual and normalises.

Shape keys: B batch, S query sequence, Sk key length (cached + current, or the encoder length),
Sp cached length, H hidden_size, N heads, D head_dim, P max_position_embeddings.
"""
from __future__ import annotations

import math

import tensorflow as tf

from impl_tf.layers.common import EmbeddingTable, dense, dropout, layer_norm

keras = tf.keras


class ElectraSelfAttention(keras.layers.Layer):
    """Scaled dot-product attention with optional relative position scores and a key/value cache."""

    def __init__(self, config, position_embedding_type: str, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.position_embedding_type = position_embedding_type
        H = config.hidden_size
        self.query = dense(H, config, "query")
        self.key = dense(H, config, "key")
        self.value = dense(H, config, "value")
        if position_embedding_type != "absolute":
            self.distance_embedding = EmbeddingTable(2 * config.max_position_embeddings - 1, config.head_dim,
                                                     config, name="distance_embedding")

    def build(self, input_shape=None):
        for layer in (self.query, self.key, self.value):
            layer.build((None, None, self.config.hidden_size))
        if self.position_embedding_type != "absolute":
            self.distance_embedding.build()
        self.built = True

    def _heads(self, x: tf.Tensor) -> tf.Tensor:
        """(B,S,H) -> (B,N,S,D)."""
        c = self.config
        b, s = tf.shape(x)[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(x, (b, s, c.num_attention_heads, c.head_dim)), (0, 2, 1, 3))

    def call(self, hidden_states, mask_bias, head_mask=None, past=None, key_value_states=None,
             past_length=0, output_attentions=False, training=False):
        """hidden_states (B,S,H); mask_bias additive, broadcastable to (B,N,S,Sk); head_mask (N,) or None;
        past (key, value) each (B,N,Sp,D) or None; key_value_states (B,Se,H) for cross-attention;
        past_length: Sp (scalar) for relative positions.
        Returns context (B,S,H), probs (B,N,S,Sk) or None, present (key, value) each (B,N,Sk,D)."""
        c = self.config
        # three matmuls, not one over concatenated kernels: concatenating the kernels copies them on every
        # call, and on CPU that made the base-sized forward ~3% slower (benchmarks/bench_tf.py)
        sources = hidden_states if key_value_states is None else key_value_states
        q = self._heads(self.query(hidden_states))
        k, v = self._heads(self.key(sources)), self._heads(self.value(sources))
        if past is not None:
            k = tf.concat([past[0], k], axis=2)
            v = tf.concat([past[1], v], axis=2)
        scores = tf.matmul(q, k, transpose_b=True)  # (B,N,S,Sk)
        if self.position_embedding_type != "absolute":
            scores += self._relative_scores(q, k, past_length)
        scores = scores * tf.cast(1.0 / math.sqrt(c.head_dim), scores.dtype) + tf.cast(mask_bias, scores.dtype)
        probs = tf.nn.softmax(scores, axis=-1)
        probs = dropout(probs, c.attention_probs_dropout_prob, training)
        if head_mask is not None:
            probs = probs * tf.cast(tf.reshape(head_mask, (1, -1, 1, 1)), probs.dtype)
        context = tf.matmul(probs, v)  # (B,N,S,D)
        b, s = tf.shape(context)[0], tf.shape(context)[2]
        context = tf.reshape(tf.transpose(context, (0, 2, 1, 3)), (b, s, c.hidden_size))
        return context, (probs if output_attentions else None), (k, v)

    def _relative_scores(self, q, k, past_length):
        """Scores from the learned distance embedding: q (B,N,S,D), k (B,N,Sk,D) -> (B,N,S,Sk).
        Query i sits at position past_length + i, key j at position j."""
        s, sk = tf.shape(q)[2], tf.shape(k)[2]
        left = tf.range(s)[:, None] + tf.cast(past_length, tf.int32)
        right = tf.range(sk)[None, :]
        table = self.distance_embedding(left - right + self.config.max_position_embeddings - 1)  # (S,Sk,D)
        table = tf.cast(table, q.dtype)
        out = tf.einsum("bnld,lrd->bnlr", q, table)
        if self.position_embedding_type == "relative_key_query":
            out += tf.einsum("bnrd,lrd->bnlr", k, table)
        return out


class ResidualOutput(keras.layers.Layer):
    """Dense(X->H), dropout, LayerNorm(x + residual): the ``output`` block after attention (X = H) and
    after the feed-forward layer (X = I, ``input_width``)."""

    def __init__(self, config, input_width=None, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.input_width = input_width or config.hidden_size
        self.dense = dense(config.hidden_size, config, "dense")
        self.LayerNorm = layer_norm(config)

    def build(self, input_shape=None):
        self.dense.build((None, None, self.input_width))
        self.LayerNorm.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, x, residual, training=False):
        """x (B,S,X), residual (B,S,H) -> (B,S,H)."""
        return self.LayerNorm(dropout(self.dense(x), self.config.hidden_dropout_prob, training) + residual)


class ElectraAttention(keras.layers.Layer):
    def __init__(self, config, position_embedding_type: str, **kwargs):
        super().__init__(**kwargs)
        self.self_attention = ElectraSelfAttention(config, position_embedding_type, name="self")
        self.dense_output = ResidualOutput(config, name="output")

    def build(self, input_shape=None):
        self.self_attention.build()
        self.dense_output.build()
        self.built = True

    def call(self, hidden_states, mask_bias, head_mask=None, past=None, key_value_states=None,
             past_length=0, output_attentions=False, training=False):
        """See ElectraSelfAttention.call; returns (B,S,H) after the residual LayerNorm, probs, present."""
        context, probs, present = self.self_attention(
            hidden_states, mask_bias, head_mask=head_mask, past=past, key_value_states=key_value_states,
            past_length=past_length, output_attentions=output_attentions, training=training)
        return self.dense_output(context, hidden_states, training=training), probs, present
