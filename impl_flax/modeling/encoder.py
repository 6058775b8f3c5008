"""The post-LayerNorm transformer encoder: L layers, each self-attention (+ cross-attention when
config.add_cross_attention) and a feed-forward block.

Parameter paths match the checkpoint names: ``encoder/layer/<i>/{attention,crossattention,intermediate,output}``.
Shapes: B batch, S sequence, Sk key length, H hidden, I intermediate, N heads, L layers.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from impl_flax.modeling.activations import activation
from impl_flax.modeling.attention import ElectraAttention, ResidualOutput
from impl_flax.modeling.embeddings import normal_init
from impl_flax.modeling.frozen_config import FrozenConfig


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
                 init_cache: bool = False, deterministic: bool = True, output_attentions: bool = False):
        """hidden_states (B, S, H); key_mask (B, 1, 1, Sk) bool; layer_head_mask (N,);
        encoder_hidden_states (B, enc_seq, H) or None; encoder_key_mask (B, 1, 1, enc_seq) bool.
        Returns (B, S, H), self-attention probs, cross-attention probs (None unless asked)."""
        x, self_probs = self.attention(hidden_states, key_mask, layer_head_mask, init_cache=init_cache,
                                       deterministic=deterministic, output_attentions=output_attentions)
        cross_probs = None
        if encoder_hidden_states is not None:
            x, cross_probs = self.crossattention(x, encoder_key_mask, layer_head_mask,
                                                 key_value_states=encoder_hidden_states,
                                                 deterministic=deterministic, output_attentions=output_attentions)
        x = self.output(self.intermediate(x), x, deterministic=deterministic)
        return x, self_probs, cross_probs


# self is argument 0: init_cache, deterministic and output_attentions are Python flags
_RematLayer = nn.remat(ElectraLayer, static_argnums=(6, 7, 8))


class ElectraLayerStack(nn.Module):
    """The L layers, named "0".."L-1" like the checkpoint's ``encoder.layer.<i>``."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    @nn.compact
    def __call__(self, hidden_states, key_mask, head_mask, encoder_hidden_states, encoder_key_mask,
                 init_cache: bool = False, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False):
        """head_mask (L, N) or None (every head kept). Returns the last (B, S, H) and tuples (or None) of hidden states (L+1),
        attentions (L) and cross-attentions (L)."""
        layer_class = _RematLayer if self.gradient_checkpointing else ElectraLayer
        all_hidden, all_self, all_cross = [hidden_states], [], []
        for i in range(self.config.num_hidden_layers):
            layer = layer_class(self.config, dtype=self.dtype, name=str(i))
            hidden_states, self_probs, cross_probs = layer(
                hidden_states, key_mask, None if head_mask is None else head_mask[i], encoder_hidden_states,
                encoder_key_mask,
                init_cache, deterministic, output_attentions)
            all_hidden.append(hidden_states)
            all_self.append(self_probs)
            all_cross.append(cross_probs)
        with_cross = output_attentions and encoder_hidden_states is not None
        return (hidden_states,
                tuple(all_hidden) if output_hidden_states else None,
                tuple(all_self) if output_attentions else None,
                tuple(all_cross) if with_cross else None)


class ElectraEncoder(nn.Module):
    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        self.layer = ElectraLayerStack(self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, *args, **kwargs):
        """See ElectraLayerStack."""
        return self.layer(*args, **kwargs)
