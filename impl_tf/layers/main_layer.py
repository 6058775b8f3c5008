"""The ELECTRA body (scope ``electra``): embeddings, ``embeddings_project`` when E != H, encoder.
Fills in the documented defaults of omitted inputs and builds the additive attention masks.

Shape keys: B batch, S sequence, Sp cached length, Sk = Sp + S, Se encoder length, E embedding_size,
H hidden_size, N heads, L layers.
"""
from __future__ import annotations

import tensorflow as tf

from impl_tf.layers.common import dense
from impl_tf.layers.embeddings import ElectraEmbeddings
from impl_tf.layers.encoder import ElectraEncoder

keras = tf.keras


def additive_mask(mask: tf.Tensor, dtype) -> tf.Tensor:
    """1 = attend, 0 = masked -> 0 / the dtype's lowest value."""
    return (1.0 - tf.cast(mask, dtype)) * tf.cast(dtype.min, dtype)


class ElectraMainLayer(keras.layers.Layer):
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
