"""The transformer stack (scope ``encoder``): L post-LayerNorm layers ``layer_._<i>``, each
self-attention, optional cross-attention, and a feed-forward block.

Shape keys: B batch, S sequence, Sk key length, Se encoder length, H hidden_size, I intermediate_size,
N heads, D head_dim, L num_hidden_layers.
"""
from __future__ import annotations

import tensorflow as tf

from impl_tf.activations import activation_by_name
from impl_tf.layers.attention import ElectraAttention, ResidualOutput
from impl_tf.layers.common import dense

keras = tf.keras


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
        x, probs, present = self.attention(hidden_states, mask_bias, head_mask=head_mask, past=past,
                                           past_length=past_length, output_attentions=output_attentions,
                                           training=training)
        cross_probs = None
        if encoder_hidden_states is not None and self.config.add_cross_attention:
            x, cross_probs, _ = self.crossattention(x, encoder_mask_bias, head_mask=head_mask,
                                                    key_value_states=encoder_hidden_states,
                                                    output_attentions=output_attentions, training=training)
        out = self.dense_output(self.intermediate(x), x, training=training)
        return out, probs, cross_probs, present


class ElectraEncoder(keras.layers.Layer):
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
