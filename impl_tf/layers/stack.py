"""The ELECTRA body in Keras 3 (scope ``electra``): embeddings -> ``embeddings_project`` (when E != H) ->
encoder of L post-LayerNorm layers (``layer_._<i>``), each a self-attention block, an optional
cross-attention block and a feed-forward block, as in the PyTorch reference.

The layer and weight names are the checkpoint's TF scopes. The attention math is pure functions over
tensors; the layers hold the weights. ElectraMainLayer fills in the documented defaults of omitted inputs
and builds the additive attention masks.

Shape keys: B batch, S query sequence, Sp cached length, Sk key length (Sp + S, or Se for cross-attention),
Se encoder length, E embedding_size, H hidden_size, I intermediate_size, N heads, D head_dim,
L num_hidden_layers, V vocab_size, P max_position_embeddings, T type_vocab_size.
"""
from __future__ import annotations

import math

import tensorflow as tf

from impl_tf.activations import activation_by_name
from impl_tf.layers.common import EmbeddingTable, dense, dropout, layer_norm

keras = tf.keras


# -- the attention math: pure functions ---------------------------------------------------------------

def split_heads(x: tf.Tensor, num_heads: int, head_dim: int) -> tf.Tensor:
    """(B,S,H) -> (B,N,S,D)."""
    b, s = tf.shape(x)[0], tf.shape(x)[1]
    return tf.transpose(tf.reshape(x, (b, s, num_heads, head_dim)), (0, 2, 1, 3))


def merge_heads(x: tf.Tensor) -> tf.Tensor:
    """(B,N,S,D) -> (B,S,H)."""
    b, n, s, d = tf.shape(x)[0], x.shape[1], tf.shape(x)[2], x.shape[3]
    return tf.reshape(tf.transpose(x, (0, 2, 1, 3)), (b, s, n * d))


def distance_rows(query_length, key_length, past_length, max_positions: int) -> tf.Tensor:
    """Rows (S,Sk) of the (2P-1, D) distance table: query i sits at position past_length + i, key j at j,
    and the row is their distance + P - 1."""
    query_positions = tf.range(query_length)[:, None] + tf.cast(past_length, tf.int32)
    key_positions = tf.range(key_length)[None, :]
    return query_positions - key_positions + max_positions - 1


def relative_scores(q: tf.Tensor, k: tf.Tensor, distance_vectors: tf.Tensor, with_key_term: bool) -> tf.Tensor:
    """q (B,N,S,D), k (B,N,Sk,D), distance_vectors (S,Sk,D) -> unscaled scores (B,N,S,Sk): q.r
    (relative_key), plus k.r (relative_key_query)."""
    scores = tf.einsum("bnld,lrd->bnlr", q, distance_vectors)
    if with_key_term:
        scores += tf.einsum("bnrd,lrd->bnlr", k, distance_vectors)
    return scores


def scaled_masked_softmax(scores: tf.Tensor, mask_bias, head_dim: int) -> tf.Tensor:
    """scores (B,N,S,Sk) / sqrt(D) + mask_bias (additive: 0 or a large negative number, broadcastable)
    -> probabilities (B,N,S,Sk)."""
    scores = scores * tf.cast(1.0 / math.sqrt(head_dim), scores.dtype) + tf.cast(mask_bias, scores.dtype)
    return tf.nn.softmax(scores, axis=-1)


# -- layers -------------------------------------------------------------------------------------------

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
        heads = (c.num_attention_heads, c.head_dim)
        q = split_heads(self.query(hidden_states), *heads)
        k, v = split_heads(self.key(sources), *heads), split_heads(self.value(sources), *heads)
        if past is not None:  # the cache: keys and values of the earlier positions first
            k = tf.concat([past[0], k], axis=2)
            v = tf.concat([past[1], v], axis=2)
        scores = tf.matmul(q, k, transpose_b=True)  # (B,N,S,Sk)
        if self.position_embedding_type != "absolute":
            rows = distance_rows(tf.shape(q)[2], tf.shape(k)[2], past_length, c.max_position_embeddings)
            distance_vectors = tf.cast(self.distance_embedding(rows), q.dtype)  # (S,Sk,D)
            scores += relative_scores(q, k, distance_vectors,
                                      with_key_term=self.position_embedding_type == "relative_key_query")
        probs = scaled_masked_softmax(scores, mask_bias, c.head_dim)
        probs = dropout(probs, c.attention_probs_dropout_prob, training)
        if head_mask is not None:
            probs = probs * tf.cast(tf.reshape(head_mask, (1, -1, 1, 1)), probs.dtype)
        context = merge_heads(tf.matmul(probs, v))  # (B,S,H)
        return context, (probs if output_attentions else None), (k, v)


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
    """``self`` (the attention proper) then ``output`` (projection, residual, LayerNorm)."""

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


class ElectraEmbeddings(keras.layers.Layer):
    """word (V,E) (or inputs_embeds) + token type (T,E) (+ position (P,E) when absolute) -> LayerNorm -> dropout."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        E = config.embedding_size
        self.word_embeddings = EmbeddingTable(config.vocab_size, E, config, weight_name="weight",
                                              name="word_embeddings")
        self.position_embeddings = EmbeddingTable(config.max_position_embeddings, E, config,
                                                  name="position_embeddings")
        self.token_type_embeddings = EmbeddingTable(config.type_vocab_size, E, config,
                                                    name="token_type_embeddings")
        self.LayerNorm = layer_norm(config)

    def build(self, input_shape=None):
        self.word_embeddings.build()
        self.position_embeddings.build()
        self.token_type_embeddings.build()
        self.LayerNorm.build((None, None, self.config.embedding_size))
        self.built = True

    def call(self, input_ids, position_ids, token_type_ids, inputs_embeds=None, training=False):
        """input_ids (B,S) int or None with inputs_embeds (B,S,E); position_ids, token_type_ids (B,S) int
        -> (B,S,E)."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        x = inputs_embeds + self.token_type_embeddings(token_type_ids)
        if self.config.position_embedding_type == "absolute":
            x = x + self.position_embeddings(position_ids)
        x = self.LayerNorm(x)
        return dropout(x, self.config.hidden_dropout_prob, training)


class ElectraIntermediate(keras.layers.Layer):
    """Dense(I) and config.hidden_act."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config.intermediate_size, config, "dense")
        self.activation = activation_by_name(config.hidden_act)

    def build(self, input_shape=None):
        self.dense.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, x):
        """(B,S,H) -> (B,S,I)."""
        return self.activation(self.dense(x))


class ElectraLayer(keras.layers.Layer):
    """One post-LayerNorm transformer layer: self-attention, cross-attention (add_cross_attention), feed-forward."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.attention = ElectraAttention(config, config.position_embedding_type, name="attention")
        if config.add_cross_attention:
            # cross-attention has no relative positions (as in the PyTorch reference)
            self.crossattention = ElectraAttention(config, "absolute", name="crossattention")
        self.intermediate = ElectraIntermediate(config, name="intermediate")
        self.dense_output = ResidualOutput(config, config.intermediate_size, name="output")

    def build(self, input_shape=None):
        self.attention.build()
        if self.config.add_cross_attention:
            self.crossattention.build()
        self.intermediate.build()
        self.dense_output.build()
        self.built = True

    def call(self, hidden_states, mask_bias, head_mask=None, past=None, past_length=0,
             encoder_hidden_states=None, encoder_mask_bias=None, output_attentions=False, training=False):
        """hidden_states (B,S,H) -> (B,S,H), self probs (B,N,S,Sk) | None, cross probs (B,N,S,Se) | None,
        present (key, value) each (B,N,Sk,D)."""
        # self-attention block (causal with a cache when config.is_decoder)
        attended, probs, present = self.attention(hidden_states, mask_bias, head_mask=head_mask, past=past,
                                                  past_length=past_length, output_attentions=output_attentions,
                                                  training=training)
        # cross-attention block: queries from here, keys and values from the encoder output
        cross_probs = None
        if encoder_hidden_states is not None and self.config.add_cross_attention:
            attended, cross_probs, _ = self.crossattention(attended, encoder_mask_bias, head_mask=head_mask,
                                                           key_value_states=encoder_hidden_states,
                                                           output_attentions=output_attentions, training=training)
        # feed-forward block
        outputs = self.dense_output(self.intermediate(attended), attended, training=training)
        return outputs, probs, cross_probs, present


class ElectraEncoder(keras.layers.Layer):
    """The checkpoint's ``encoder``: the L layers ``layer_._<i>``, applied in turn."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.layer = [ElectraLayer(config, name=f"layer_._{i}") for i in range(config.num_hidden_layers)]

    def build(self, input_shape=None):
        for layer in self.layer:
            layer.build()
        self.built = True

    def call(self, hidden_states, mask_bias, head_mask=None, past_key_values=None, past_length=0,
             encoder_hidden_states=None, encoder_mask_bias=None, use_cache=False,
             output_attentions=False, output_hidden_states=False, training=False):
        """hidden_states (B,S,H); head_mask (L,N) or None; past_key_values: L pairs or None.
        Returns a dict: last_hidden_state (B,S,H), past_key_values (L pairs) | None,
        hidden_states (L+1 of (B,S,H)) | None, attentions | None, cross_attentions | None."""
        all_hidden, all_probs, all_cross, presents = [], [], [], []
        for i, layer in enumerate(self.layer):
            if output_hidden_states:
                all_hidden.append(hidden_states)
            hidden_states, probs, cross_probs, present = layer(
                hidden_states, mask_bias,
                head_mask=None if head_mask is None else head_mask[i],
                past=None if past_key_values is None else past_key_values[i],
                past_length=past_length,
                encoder_hidden_states=encoder_hidden_states, encoder_mask_bias=encoder_mask_bias,
                output_attentions=output_attentions, training=training)
            all_probs.append(probs)
            all_cross.append(cross_probs)
            presents.append(present)
        if output_hidden_states:
            all_hidden.append(hidden_states)
        has_cross = output_attentions and encoder_hidden_states is not None and self.config.add_cross_attention
        return {
            "last_hidden_state": hidden_states,
            "past_key_values": tuple(presents) if use_cache else None,
            "hidden_states": tuple(all_hidden) if output_hidden_states else None,
            "attentions": tuple(all_probs) if output_attentions else None,
            "cross_attentions": tuple(all_cross) if has_cross else None,
        }


def additive_mask(mask: tf.Tensor, dtype) -> tf.Tensor:
    """1 = attend, 0 = masked -> 0 / the dtype's lowest value."""
    return (1.0 - tf.cast(mask, dtype)) * tf.cast(dtype.min, dtype)


class ElectraMainLayer(keras.layers.Layer):
    """The bare ELECTRA body: defaults of omitted inputs, attention masks, embeddings, projection, encoder."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.embeddings = ElectraEmbeddings(config, name="embeddings")
        self.projects = config.embedding_size != config.hidden_size
        if self.projects:
            self.embeddings_project = dense(config.hidden_size, config, "embeddings_project")
        self.encoder = ElectraEncoder(config, name="encoder")

    def build(self, input_shape=None):
        self.embeddings.build()
        if self.projects:
            self.embeddings_project.build((None, None, self.config.embedding_size))
        self.encoder.build()
        self.built = True

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
             use_cache=False, output_attentions=False, output_hidden_states=False, training=False):
        """input_ids (B,S) or inputs_embeds (B,S,E); attention_mask (B,Sk) (or (B,S,Sk)); token_type_ids,
        position_ids (B,S); head_mask (N,) or (L,N); encoder_hidden_states (B,Se,H); encoder_attention_mask
        (B,Se); past_key_values: L pairs of (B,N,Sp,D). Returns the encoder's dict (see ElectraEncoder)."""
        c = self.config
        if input_ids is not None:
            shape = tf.shape(input_ids)
        else:
            shape = tf.shape(inputs_embeds)[:2]
        batch, seq = shape[0], shape[1]
        past_length = 0 if past_key_values is None else tf.shape(past_key_values[0][0])[2]
        if attention_mask is None:
            attention_mask = tf.ones((batch, past_length + seq), tf.int32)
        if token_type_ids is None:
            token_type_ids = tf.zeros((batch, seq), tf.int32)
        if position_ids is None:
            position_ids = (tf.range(seq) + past_length)[None, :]

        hidden = self.embeddings(input_ids, position_ids, token_type_ids, inputs_embeds, training=training)
        if self.projects:
            hidden = self.embeddings_project(hidden)
        mask_bias = self._self_attention_bias(attention_mask, seq, past_length, hidden.dtype)

        encoder_bias = None
        if encoder_hidden_states is not None and c.add_cross_attention:
            if encoder_attention_mask is None:
                encoder_attention_mask = tf.ones(tf.shape(encoder_hidden_states)[:2], tf.int32)
            encoder_bias = additive_mask(encoder_attention_mask, hidden.dtype)[:, None, None, :]
            encoder_hidden_states = tf.cast(encoder_hidden_states, hidden.dtype)

        if head_mask is not None:
            head_mask = tf.cast(head_mask, hidden.dtype)
            if head_mask.shape.rank == 1:
                head_mask = tf.tile(head_mask[None, :], (c.num_hidden_layers, 1))
        return self.encoder(hidden, mask_bias, head_mask=head_mask, past_key_values=past_key_values,
                            past_length=past_length, encoder_hidden_states=encoder_hidden_states,
                            encoder_mask_bias=encoder_bias, use_cache=bool(use_cache and c.is_decoder),
                            output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                            training=training)

    def _self_attention_bias(self, attention_mask, seq, past_length, dtype):
        """attention_mask (B,Sk) or (B,S,Sk) -> additive bias (B,1,S|1,Sk); causal when config.is_decoder."""
        mask = tf.cast(attention_mask, dtype)
        mask = mask[:, None, None, :] if mask.shape.rank == 2 else mask[:, None, :, :]
        if self.config.is_decoder:
            query_pos = tf.range(seq)[:, None] + past_length
            key_pos = tf.range(past_length + seq)[None, :]
            causal = tf.cast(key_pos <= query_pos, dtype)  # (S,Sk)
            mask = mask * causal[None, None]
        return (1.0 - mask) * tf.cast(dtype.min, dtype)
