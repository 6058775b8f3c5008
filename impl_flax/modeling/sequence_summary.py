"""Sequence summary of the multiple-choice head: one vector per sequence.

summary_type first | last | mean (over all positions) | cls_index (the token at ``cls_index``, by
default the last one) -> summary_first_dropout -> optional ``summary`` Dense(H->H) (summary_use_proj)
-> summary_activation -> summary_last_dropout. Shapes: B batch (B*C for multiple choice), S, H.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from impl_flax.modeling.activations import activation
from impl_flax.modeling.embeddings import normal_init
from impl_flax.modeling.frozen_config import FrozenConfig


def _pick(hidden_states, summary_type: str, cls_index):
    """(B, S, H) -> (B, H)."""
    if summary_type == "first":
        return hidden_states[:, 0]
    if summary_type == "last":
        return hidden_states[:, -1]
    if summary_type == "mean":
        return hidden_states.mean(axis=1)
    if summary_type == "cls_index":
        if cls_index is None:
            return hidden_states[:, -1]
        index = jnp.asarray(cls_index, dtype=jnp.int32).reshape(-1)
        return jnp.take_along_axis(hidden_states, index[:, None, None], axis=1)[:, 0]
    raise ValueError(f"unknown summary_type {summary_type!r}")


class ElectraSequenceSummary(nn.Module):
    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        if c.summary_use_proj:
            self.summary = nn.Dense(c.hidden_size, kernel_init=normal_init(c), dtype=self.dtype)
        self.first_dropout = nn.Dropout(rate=c.summary_first_dropout)
        self.last_dropout = nn.Dropout(rate=c.summary_last_dropout)

    def __call__(self, hidden_states, cls_index=None, deterministic: bool = True):
        """hidden_states (B, S, H); cls_index (B,) int or None -> (B, H)."""
        x = _pick(hidden_states, self.config.summary_type, cls_index)
        x = self.first_dropout(x, deterministic=deterministic)
        if self.config.summary_use_proj:
            x = self.summary(x)
        x = activation(self.config.summary_activation)(x)
        return self.last_dropout(x, deterministic=deterministic)
