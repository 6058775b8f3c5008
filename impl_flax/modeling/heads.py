"""Prediction heads on top of the encoder output. Shapes: B batch, S sequence, H hidden, E embedding,
V vocab, K num_labels."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from impl_flax.modeling.activations import activation
from impl_flax.modeling.embeddings import normal_init
from impl_flax.modeling.frozen_config import FrozenConfig


def classifier_dropout_rate(config: FrozenConfig) -> float:
    """classifier_dropout when set, else hidden_dropout_prob."""
    return config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout


class ElectraDiscriminatorPredictions(nn.Module):
    """dense(H->H) -> hidden_act -> dense_prediction(H->1) -> squeeze: one replaced-token logit per position."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        init = normal_init(self.config)
        self.dense = nn.Dense(self.config.hidden_size, kernel_init=init, dtype=self.dtype)
        self.dense_prediction = nn.Dense(1, kernel_init=init, dtype=self.dtype)

    def __call__(self, hidden_states):
        """(B, S, H) -> (B, S)."""
        x = activation(self.config.hidden_act)(self.dense(hidden_states))
        return self.dense_prediction(x)[..., 0]


class ElectraGeneratorPredictions(nn.Module):
    """dense(H->E) -> gelu -> LayerNorm(E)."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        self.dense = nn.Dense(c.embedding_size, kernel_init=normal_init(c), dtype=self.dtype)
        self.LayerNorm = nn.LayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype)

    def __call__(self, hidden_states):
        """(B, S, H) -> (B, S, E)."""
        return self.LayerNorm(activation("gelu")(self.dense(hidden_states)))


class ElectraTiedLMHead(nn.Module):
    """Vocabulary logits through the word-embedding table (tie_word_embeddings): only the bias (V,) is own."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, hidden_states, word_embeddings):
        """hidden_states (B, S, E), word_embeddings (V, E) -> (B, S, V)."""
        bias = self.param("bias", nn.initializers.zeros, (self.config.vocab_size,))
        logits = jnp.einsum("bse,ve->bsv", hidden_states.astype(self.dtype), word_embeddings.astype(self.dtype))
        return logits + bias.astype(self.dtype)


def generator_lm_head(config: FrozenConfig, dtype) -> nn.Module:
    """The tied head, or with tie_word_embeddings=False a Dense(E->V) with its own (E, V) kernel."""
    if config.tie_word_embeddings:
        return ElectraTiedLMHead(config, dtype=dtype)
    return nn.Dense(config.vocab_size, kernel_init=normal_init(config), dtype=dtype)


class ElectraClassificationHead(nn.Module):
    """First token -> dropout -> dense(H->H) -> gelu -> dropout -> out_proj(H->K)."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        init = normal_init(c)
        self.dense = nn.Dense(c.hidden_size, kernel_init=init, dtype=self.dtype)
        self.dropout = nn.Dropout(rate=classifier_dropout_rate(c))
        self.out_proj = nn.Dense(c.num_labels, kernel_init=init, dtype=self.dtype)

    def __call__(self, hidden_states, deterministic: bool = True):
        """(B, S, H) -> (B, K)."""
        x = self.dropout(hidden_states[:, 0, :], deterministic=deterministic)
        x = activation("gelu")(self.dense(x))
        x = self.dropout(x, deterministic=deterministic)
        return self.out_proj(x)
