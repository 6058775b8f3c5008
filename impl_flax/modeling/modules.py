"""The linen modules behind the public classes: the bare ELECTRA encoder and one module per head.

Every module takes (input_ids, attention_mask, token_type_ids, position_ids, head_mask,
encoder_hidden_states, encoder_attention_mask, init_cache, deterministic, output_attentions,
output_hidden_states) with every tensor already filled in (the wrapper in model_base supplies the
defaults) and returns a dict of the output class's fields (None = absent).
Shapes: B batch, C choices, S sequence, Sk key length, H hidden, E embedding, V vocab, K num_labels,
L layers, N heads.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from impl_flax.modeling.embeddings import ElectraEmbeddings, normal_init
from impl_flax.modeling.encoder import ElectraEncoder
from impl_flax.modeling.frozen_config import FrozenConfig
from impl_flax.modeling.heads import (ElectraClassificationHead, ElectraDiscriminatorPredictions,
                                      ElectraGeneratorPredictions, classifier_dropout_rate, generator_lm_head)
from impl_flax.modeling.sequence_summary import ElectraSequenceSummary


def _key_mask(mask):
    """(B, Sk) 0/1 -> (B, 1, 1, Sk) bool, broadcast over heads and queries."""
    return (mask > 0)[:, None, None, :]


class ElectraModule(nn.Module):
    """embeddings -> embeddings_project (when E != H) -> encoder."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def setup(self):
        c = self.config
        self.embeddings = ElectraEmbeddings(c, dtype=self.dtype)
        if c.embedding_size != c.hidden_size:
            self.embeddings_project = nn.Dense(c.hidden_size, kernel_init=normal_init(c), dtype=self.dtype)
        self.encoder = ElectraEncoder(c, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask,
                 encoder_hidden_states=None, encoder_attention_mask=None, init_cache: bool = False,
                 deterministic: bool = True, output_attentions: bool = False, output_hidden_states: bool = False):
        """input_ids, token_type_ids, position_ids (B, S) int; attention_mask (B, Sk) int; head_mask (L, N) float or None;
        encoder_hidden_states (B, enc_seq, H); encoder_attention_mask (B, enc_seq)."""
        x = self.embeddings(input_ids, token_type_ids, position_ids, deterministic=deterministic)
        if self.config.embedding_size != self.config.hidden_size:
            x = self.embeddings_project(x)
        encoder_key_mask = None if encoder_attention_mask is None else _key_mask(encoder_attention_mask)
        last, hidden, attentions, cross = self.encoder(
            x, _key_mask(attention_mask), head_mask, encoder_hidden_states, encoder_key_mask,
            init_cache=init_cache, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        return {"last_hidden_state": last, "hidden_states": hidden, "attentions": attentions,
                "cross_attentions": cross}

    def word_embedding_table(self):
        """(V, E), the table the tied generator head multiplies with."""
        return self.variables["params"]["embeddings"]["word_embeddings"]["embedding"]


class _WithEncoder(nn.Module):
    """Shared part of the head modules: ``electra`` (the encoder) plus ``head`` applied to its output."""

    config: FrozenConfig
    dtype: jnp.dtype = jnp.float32
    gradient_checkpointing: bool = False

    def _setup_encoder(self):
        self.electra = ElectraModule(self.config, dtype=self.dtype, gradient_checkpointing=self.gradient_checkpointing)

    def __call__(self, *args, deterministic: bool = True, **kwargs):
        out = self.electra(*args, deterministic=deterministic, **kwargs)
        fields = self.head(out["last_hidden_state"], deterministic)
        return {**fields, "hidden_states": out["hidden_states"], "attentions": out["attentions"],
                "cross_attentions": out["cross_attentions"]}


class ElectraForPreTrainingModule(_WithEncoder):
    def setup(self):
        self._setup_encoder()
        self.discriminator_predictions = ElectraDiscriminatorPredictions(self.config, dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, S)."""
        return {"logits": self.discriminator_predictions(hidden_states)}


class ElectraGeneratorModule(_WithEncoder):
    """Masked LM and causal LM share the generator head (the causal one has config.is_decoder)."""

    def setup(self):
        self._setup_encoder()
        self.generator_predictions = ElectraGeneratorPredictions(self.config, dtype=self.dtype)
        self.generator_lm_head = generator_lm_head(self.config, self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, S, V)."""
        x = self.generator_predictions(hidden_states)
        if self.config.tie_word_embeddings:
            return {"logits": self.generator_lm_head(x, self.electra.word_embedding_table())}
        return {"logits": self.generator_lm_head(x)}


class ElectraForSequenceClassificationModule(_WithEncoder):
    def setup(self):
        self._setup_encoder()
        self.classifier = ElectraClassificationHead(self.config, dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, K)."""
        return {"logits": self.classifier(hidden_states, deterministic=deterministic)}


class ElectraForTokenClassificationModule(_WithEncoder):
    def setup(self):
        self._setup_encoder()
        self.dropout = nn.Dropout(rate=classifier_dropout_rate(self.config))
        self.classifier = nn.Dense(self.config.num_labels, kernel_init=normal_init(self.config), dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> logits (B, S, K)."""
        return {"logits": self.classifier(self.dropout(hidden_states, deterministic=deterministic))}


class ElectraForQuestionAnsweringModule(_WithEncoder):
    def setup(self):
        self._setup_encoder()
        self.qa_outputs = nn.Dense(self.config.num_labels, kernel_init=normal_init(self.config), dtype=self.dtype)

    def head(self, hidden_states, deterministic):
        """(B, S, H) -> start_logits, end_logits (B, S)."""
        logits = self.qa_outputs(hidden_states)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


class ElectraForMultipleChoiceModule(_WithEncoder):
    """Inputs (B, C, S) are flattened to (B*C, S); each sequence is summarised and scored by Dense(H->1)."""

    def setup(self):
        self._setup_encoder()
        self.sequence_summary = ElectraSequenceSummary(self.config, dtype=self.dtype)
        self.classifier = nn.Dense(1, kernel_init=normal_init(self.config), dtype=self.dtype)

    def __call__(self, input_ids, attention_mask, token_type_ids, position_ids, head_mask, *args,
                 deterministic: bool = True, **kwargs):
        num_choices = input_ids.shape[1]

        def flat(x):
            return x.reshape((-1, x.shape[-1]))

        out = self.electra(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                           head_mask, *args, deterministic=deterministic, **kwargs)
        summary = self.sequence_summary(out["last_hidden_state"], deterministic=deterministic)
        logits = self.classifier(summary).reshape((-1, num_choices))
        return {"logits": logits, "hidden_states": out["hidden_states"], "attentions": out["attentions"],
                "cross_attentions": out["cross_attentions"]}
