"""Prediction heads on top of the encoder output, and the multiple-choice head's sequence summary. Each
layer's name is its checkpoint scope.

Shape keys: B batch (batch*choices for the sequence summary), S sequence, H hidden_size, E embedding_size,
V vocab_size, K num_labels.
"""
from __future__ import annotations

import tensorflow as tf

from impl_tf.activations import activation_by_name
from impl_tf.layers.common import dense, dropout, layer_norm, normal_initializer, replace_variable

keras = tf.keras


def classifier_dropout_rate(config) -> float:
    """config.classifier_dropout when set, else config.hidden_dropout_prob."""
    return config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout


class ElectraDiscriminatorPredictions(keras.layers.Layer):
    """Dense(H), hidden_act, Dense(1): one replaced-token logit per position."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config.hidden_size, config, "dense")
        self.dense_prediction = dense(1, config, "dense_prediction")
        self.activation = activation_by_name(config.hidden_act)

    def build(self, input_shape=None):
        self.dense.build((None, None, self.config.hidden_size))
        self.dense_prediction.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, x):
        """(B,S,H) -> (B,S)."""
        return tf.squeeze(self.dense_prediction(self.activation(self.dense(x))), axis=-1)


class ElectraGeneratorPredictions(keras.layers.Layer):
    """Dense(E), gelu, LayerNorm(E)."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config.embedding_size, config, "dense")
        self.LayerNorm = layer_norm(config)
        self.activation = activation_by_name("gelu")

    def build(self, input_shape=None):
        self.dense.build((None, None, self.config.hidden_size))
        self.LayerNorm.build((None, None, self.config.embedding_size))
        self.built = True

    def call(self, x):
        """(B,S,H) -> (B,S,E)."""
        return self.LayerNorm(self.activation(self.dense(x)))


class ElectraLMHead(keras.layers.Layer):
    """logits = x @ W^T + bias with W (V,E) the word-embedding table (tied), or x @ kernel + bias with
    its own ``kernel`` (E,V) when config.tie_word_embeddings is false."""

    def __init__(self, config, word_embeddings, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.word_embeddings = word_embeddings  # EmbeddingTable of the encoder, used when tied
        self.tied = config.tie_word_embeddings

    def build(self, input_shape=None):
        V, E = self.config.vocab_size, self.config.embedding_size
        if not self.tied:
            self.kernel = self.add_weight(name="kernel", shape=(E, V), initializer=normal_initializer(self.config))
        self.bias = self.add_weight(name="bias", shape=(V,), initializer="zeros")
        self.built = True

    @property
    def output_matrix(self):
        """(V,E): the matrix the logits are computed with."""
        return self.word_embeddings.table if self.tied else tf.transpose(self.kernel)

    def call(self, x):
        """(B,S,E) -> (B,S,V)."""
        if self.tied:
            logits = tf.matmul(x, tf.cast(self.word_embeddings.table, x.dtype), transpose_b=True)
        else:
            logits = tf.matmul(x, tf.cast(self.kernel, x.dtype))
        return logits + tf.cast(self.bias, x.dtype)

    def resize(self, new_rows: int) -> None:
        """New vocabulary size: the bias (and an untied matrix) keep their first rows."""
        self.bias = replace_variable(self, self.bias, (new_rows,), keras.initializers.Zeros())
        if not self.tied:
            self.kernel = replace_variable(self, self.kernel, (self.config.embedding_size, new_rows),
                                           normal_initializer(self.config), axis=1)


class ElectraClassificationHead(keras.layers.Layer):
    """Sequence classifier on the first token: dropout, Dense(H), gelu, dropout, Dense(K) ``out_proj``."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.dense = dense(config.hidden_size, config, "dense")
        self.out_proj = dense(config.num_labels, config, "out_proj")
        self.activation = activation_by_name("gelu")
        self.rate = classifier_dropout_rate(config)

    def build(self, input_shape=None):
        self.dense.build((None, self.config.hidden_size))
        self.out_proj.build((None, self.config.hidden_size))
        self.built = True

    def call(self, x, training=False):
        """(B,S,H) -> (B,K)."""
        x = dropout(x[:, 0, :], self.rate, training)
        x = dropout(self.activation(self.dense(x)), self.rate, training)
        return self.out_proj(x)


def summary_vector(hidden_states, summary_type: str):
    """(B,S,H) -> (B,H) by config.summary_type: first | last | mean | cls_index (the TF classes take no
    cls_index argument, so it means the last token)."""
    if summary_type == "first":
        return hidden_states[:, 0]
    if summary_type in ("last", "cls_index"):
        return hidden_states[:, -1]
    if summary_type == "mean":
        return tf.reduce_mean(hidden_states, axis=1)
    raise ValueError(f"unknown summary_type {summary_type!r}")


class ElectraSequenceSummary(keras.layers.Layer):
    """summary_vector -> summary_first_dropout -> ``summary`` Dense(H) (summary_use_proj) ->
    summary_activation -> summary_last_dropout."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        if config.summary_use_proj:
            self.summary = dense(config.hidden_size, config, "summary")
        self.activation = activation_by_name(config.summary_activation)

    def build(self, input_shape=None):
        if self.config.summary_use_proj:
            self.summary.build((None, self.config.hidden_size))
        self.built = True

    def call(self, hidden_states, training=False):
        """(B,S,H) -> (B,H)."""
        c = self.config
        x = dropout(summary_vector(hidden_states, c.summary_type), c.summary_first_dropout, training)
        if c.summary_use_proj:
            x = self.summary(x)
        return dropout(self.activation(x), c.summary_last_dropout, training)
