"""Sequence summary (scope ``sequence_summary``) used by the multiple-choice head: pick or pool one
vector per sequence (config.summary_type), then optional Dense(H) ``summary`` projection,
summary_activation and dropouts.

Shape keys: B batch (here batch*choices), S sequence, H hidden_size.
"""
from __future__ import annotations

import tensorflow as tf

from impl_tf.activations import activation_by_name
from impl_tf.layers.common import dense, dropout

keras = tf.keras


class ElectraSequenceSummary(keras.layers.Layer):
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

    def call(self, hidden_states, cls_index=None, training=False):
        """hidden_states (B,S,H); cls_index (B,) int (summary_type cls_index; default the last token)
        -> (B,H)."""
        c = self.config
        kind = c.summary_type
        if kind == "first":
            x = hidden_states[:, 0]
        elif kind == "last":
            x = hidden_states[:, -1]
        elif kind == "mean":
            x = tf.reduce_mean(hidden_states, axis=1)
        elif kind == "cls_index":
            if cls_index is None:
                x = hidden_states[:, -1]
            else:
                x = tf.gather(hidden_states, tf.cast(cls_index, tf.int32), axis=1, batch_dims=1)
        else:
            raise ValueError(f"unknown summary_type {kind!r}")
        x = dropout(x, c.summary_first_dropout, training)
        if c.summary_use_proj:
            x = self.summary(x)
        x = self.activation(x)
        return dropout(x, c.summary_last_dropout, training)
