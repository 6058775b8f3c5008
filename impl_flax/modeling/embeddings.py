"""Token, position and segment embeddings: word (V,E) + position (P,E) + token type (T,E) -> LayerNorm(E) -> dropout.

With ``position_embedding_type`` relative_key / relative_key_query the position table is kept (it is part
of the checkpoint) but not added: positions enter through the attention scores instead.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from impl_flax.modeling.frozen_config import FrozenConfig


def normal_init(config: FrozenConfig):
    return nn.initializers.normal(stddev=config.initializer_range)


class ElectraEmbeddings(nn.Module):
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

    def __call__(self, input_ids, token_type_ids, position_ids, deterministic: bool = True):
        """input_ids, token_type_ids, position_ids: (B, S) int -> (B, S, E)."""
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        if self.config.position_embedding_type == "absolute":
            x = x + self.position_embeddings(position_ids)
        else:
            _ = self.position_embeddings.embedding  # unused here, but the table belongs to the checkpoint
        x = self.LayerNorm(x)
        return self.dropout(x, deterministic=deterministic)
