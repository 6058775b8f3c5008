"""The heads on the ELECTRA encoder, and one linen module per public class (encoder ``electra`` + head).

Every task module takes the encoder's arguments (see ElectraModule.__call__: every tensor already filled in
by the public wrapper) and returns a dict of its output class's fields (None = absent).
Shape key: B batch, C choices, S sequence, H hidden, E embedding, V vocab, K num_labels.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from impl_flax.modeling.frozen_config import FrozenConfig
from impl_flax.modeling.layers import ElectraModule, activation, normal_init


def classifier_dropout_rate(config: FrozenConfig) -> float:
    """classifier_dropout when set, else hidden_dropout_prob."""
    return config.hidden_dropout_prob if config.classifier_dropout is None else config.classifier_dropout


# -- heads ----------------------------------------------------------------------------------------------

class ElectraDiscriminatorPredictions(nn.Module):
    """dense(H->H) -> hidden_act -> dense_prediction(H->1): one replaced-token logit per position."""

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

    def __call__(self, hidden_states, deterministic: bool):
        """(B, S, H) -> (B, K)."""
        x = self.dropout(hidden_states[:, 0, :], deterministic=deterministic)
        x = activation("gelu")(self.dense(x))
        x = self.dropout(x, deterministic=deterministic)
        return self.out_proj(x)


def summary_vector(hidden_states, summary_type: str):
    """(B, S, H) -> (B, H) by config.summary_type: first | last | mean | cls_index (the Flax classes take no
    cls_index argument, so it means the last token)."""
    if summary_type == "first":
        return hidden_states[:, 0]
    if summary_type in ("last", "cls_index"):
        return hidden_states[:, -1]
    if summary_type == "mean":
        return hidden_states.mean(axis=1)
    raise ValueError(f"unknown summary_type {summary_type!r}")


class ElectraSequenceSummary(nn.Module):
    """summary_vector -> summary_first_dropout -> ``summary`` Dense(H->H) (summary_use_proj) ->
    summary_activation -> summary_last_dropout."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        if c.summary_use_proj:
            self.summary = nn.Dense(c.hidden_size, kernel_init=normal_init(c), dtype=self.dtype)
        self.first_dropout = nn.Dropout(rate=c.summary_first_dropout)
        self.last_dropout = nn.Dropout(rate=c.summary_last_dropout)

    def __call__(self, hidden_states, deterministic: bool):
        """(B, S, H) -> (B, H)."""
        x = summary_vector(hidden_states, self.config.summary_type)
        x = self.first_dropout(x, deterministic=deterministic)
        if self.config.summary_use_proj:
            x = self.summary(x)
        x = activation(self.config.summary_activation)(x)
        return self.last_dropout(x, deterministic=deterministic)


# -- one module per public class: the encoder, then a head on its last hidden state ---------------------

class _EncoderWithHead(nn.Module):
    """``electra`` (ElectraModule) and the subclass's ``head`` on its last hidden state (B, S, H)."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def _setup_encoder(self):
        self.electra = ElectraModule(self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False):
        """As ElectraModule.__call__; returns the head's fields with the encoder's hidden states and attentions."""
        out = self.electra(input_ids, attention_mask, token_type_ids, position_ids, head_mask, encoder_hidden_states,
                           encoder_attention_mask, init_cache, deterministic, output_attentions, output_hidden_states)
        return {**self.head(out["last_hidden_state"], deterministic), "hidden_states": out["hidden_states"],
                "attentions": out["attentions"], "cross_attentions": out["cross_attentions"]}


class ElectraForPreTrainingModule(_EncoderWithHead):
    def setup(self):
        self._setup_encoder()
        self.discriminator_predictions = ElectraDiscriminatorPredictions(self.config, dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, S)."""
        return {"logits": self.discriminator_predictions(hidden_states)}


class ElectraGeneratorModule(_EncoderWithHead):
    """Masked LM and causal LM share the generator head (the causal one has config.is_decoder). Its output
    projection is tied to the word embeddings (tie_word_embeddings), or a Dense(E->V) of its own."""

    def setup(self):
        c = self.config
        self._setup_encoder()
        self.generator_predictions = ElectraGeneratorPredictions(c, dtype=self.dtype)
        if c.tie_word_embeddings:
            self.generator_lm_head = ElectraTiedLMHead(c, dtype=self.dtype)
        else:
            self.generator_lm_head = nn.Dense(c.vocab_size, kernel_init=normal_init(c), dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, S, V)."""
        x = self.generator_predictions(hidden_states)  # (B, S, E)
        if self.config.tie_word_embeddings:
            return {"logits": self.generator_lm_head(x, self.electra.word_embedding_table())}
        return {"logits": self.generator_lm_head(x)}


class ElectraForSequenceClassificationModule(_EncoderWithHead):
    def setup(self):
        self._setup_encoder()
        self.classifier = ElectraClassificationHead(self.config, dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, K)."""
        return {"logits": self.classifier(hidden_states, deterministic)}


class ElectraForTokenClassificationModule(_EncoderWithHead):
    def setup(self):
        self._setup_encoder()
        self.dropout = nn.Dropout(rate=classifier_dropout_rate(self.config))
        self.classifier = nn.Dense(self.config.num_labels, kernel_init=normal_init(self.config), dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, S, K)."""
        return {"logits": self.classifier(self.dropout(hidden_states, deterministic=deterministic))}


class ElectraForQuestionAnsweringModule(_EncoderWithHead):
    def setup(self):
        self._setup_encoder()
        self.qa_outputs = nn.Dense(self.config.num_labels, kernel_init=normal_init(self.config), dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> start_logits, end_logits (B, S)."""
        logits = self.qa_outputs(hidden_states)  # (B, S, 2)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


class ElectraForMultipleChoiceModule(_EncoderWithHead):
    """Inputs (B, C, S) are flattened to (B*C, S); each sequence is summarised and scored by Dense(H->1)."""

    def setup(self):
        self._setup_encoder()
        self.sequence_summary = ElectraSequenceSummary(self.config, dtype=self.dtype)
        self.classifier = nn.Dense(1, kernel_init=normal_init(self.config), dtype=self.dtype)

    def __call__(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False):
        """input_ids, attention_mask, token_type_ids, position_ids (B, C, S); the rest as ElectraModule.__call__.
        Returns logits (B, C) with the encoder's hidden states and attentions (over B*C sequences)."""
        num_choices = input_ids.shape[1]

        def flat(x):  # (B, C, S) -> (B*C, S)
            return x.reshape((-1, x.shape[-1]))

        out = self.electra(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                           head_mask, encoder_hidden_states, encoder_attention_mask, init_cache, deterministic,
                           output_attentions, output_hidden_states)
        summary = self.sequence_summary(out["last_hidden_state"], deterministic)  # (B*C, H)
        logits = self.classifier(summary).reshape((-1, num_choices))  # (B, C)
        return {"logits": logits, "hidden_states": out["hidden_states"], "attentions": out["attentions"],
                "cross_attentions": out["cross_attentions"]}
