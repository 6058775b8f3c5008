"""The embeddings block (scope ``embeddings``): word + token type (+ absolute position) tables,
LayerNorm over E, dropout.

Shape keys: B batch, S sequence, E embedding_size, V vocab_size, P max_position_embeddings,
T type_vocab_size.
"""
from __future__ import annotations

import tensorflow as tf

from impl_tf.layers.common import EmbeddingTable, dropout, layer_norm

keras = tf.keras


class ElectraEmbeddings(keras.layers.Layer):
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
