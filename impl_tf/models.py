"""The public TF ELECTRA classes. Each is thin: its head layers, its call signature (order and
defaults per spec/data/classes.yaml) and its loss.

Shape keys: B batch, C choices, S sequence, Sp cached length, Se encoder length, E embedding_size,
H hidden_size, N heads, D head_dim, L layers, V vocab_size, K num_labels.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from impl_tf import label_checks, losses
from impl_tf.layers.common import dense, dropout
from impl_tf.layers.heads import (ElectraClassificationHead, ElectraDiscriminatorPredictions,
                                  ElectraGeneratorPredictions, ElectraLMHead, ElectraSequenceSummary,
                                  classifier_dropout_rate)
from impl_tf.model_base import TFElectraPreTrainedModel


class TFElectraModel(TFElectraPreTrainedModel):
    """The bare encoder: last_hidden_state (B,S,H), plus past_key_values when a decoder uses the cache."""

    output_class_name = "TFBaseModelOutputWithPastAndCrossAttentions"
    base_model_prefix = ""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self._finish_init()

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
             use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        a = self.resolve_call(locals())
        out = self.body(a, with_decoder_inputs=True)
        return self.make_output(a, **out)


def _hidden_and_attentions(out):
    return {"hidden_states": out["hidden_states"], "attentions": out["attentions"]}


class TFElectraForPreTraining(TFElectraPreTrainedModel):
    """Discriminator: logits (B,S), one replaced-token score per position."""

    output_class_name = "TFElectraForPreTrainingOutput"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.discriminator_predictions = ElectraDiscriminatorPredictions(config, name="discriminator_predictions")
        self._finish_init()

    def build_heads(self):
        self.discriminator_predictions.build()

    def validate_labels(self, a):
        label_checks.check_token_labels(a, 2, allow_ignore=False, allow_float=True)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        a = self.resolve_call(locals())
        out = self.body(a)
        logits = self.discriminator_predictions(out["last_hidden_state"])
        loss = None if a.labels is None else losses.pretraining_loss(logits, a.labels, a.attention_mask)
        return self.make_output(a, loss=loss, logits=logits, **_hidden_and_attentions(out))


class _GeneratorModel(TFElectraPreTrainedModel):
    """Shared by the masked and causal LM heads: generator_predictions + generator_lm_head."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.generator_predictions = ElectraGeneratorPredictions(config, name="generator_predictions")
        self.generator_lm_head = ElectraLMHead(config, self.electra.embeddings.word_embeddings,
                                               name="generator_lm_head")
        self._finish_init()

    def build_heads(self):
        self.generator_predictions.build()
        self.generator_lm_head.build()

    def get_output_embeddings(self):
        return self.generator_lm_head

    def validate_labels(self, a):
        label_checks.check_token_labels(a, self.config.vocab_size, allow_ignore=True)

    def vocabulary_logits(self, hidden):
        """(B,S,H) -> (B,S,V)."""
        return self.generator_lm_head(self.generator_predictions(hidden))


class TFElectraForMaskedLM(_GeneratorModel):
    """Generator: vocabulary logits (B,S,V); loss over labels != -100."""

    output_class_name = "TFMaskedLMOutput"

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        a = self.resolve_call(locals())
        out = self.body(a)
        logits = self.vocabulary_logits(out["last_hidden_state"])
        loss = None if a.labels is None else losses.ignore_index_cross_entropy(logits, a.labels)
        return self.make_output(a, loss=loss, logits=logits, **_hidden_and_attentions(out))


class TFElectraForCausalLM(_GeneratorModel):
    """Extension: the generator as a left-to-right decoder (set config.is_decoder) with a key/value cache.
    Loss: position i predicts labels[:, i + 1]."""

    output_class_name = "TFCausalLMOutputWithCrossAttentions"

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, past_key_values=None,
             use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        a = self.resolve_call(locals())
        out = self.body(a, with_decoder_inputs=True)
        logits = self.vocabulary_logits(out["last_hidden_state"])
        loss = None if a.labels is None else losses.causal_lm_loss(logits, a.labels)
        return self.make_output(a, loss=loss, logits=logits, past_key_values=out["past_key_values"],
                                cross_attentions=out["cross_attentions"], **_hidden_and_attentions(out))

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None, **kwargs):
        """The next call's arguments in a generation loop. input_ids (B, S): every token so far; with a
        cache (past_key_values from the previous call) only the last one, (B, 1), is fed. attention_mask
        (B, S) covers the cached and the new positions (ones when omitted); positions follow the cache
        length by default. Other keyword arguments (use_cache, ...) pass through."""
        if attention_mask is None:
            attention_mask = tf.ones_like(input_ids)
        if past_key_values is not None:
            input_ids = input_ids[:, -1:]
        return {**kwargs, "input_ids": input_ids, "attention_mask": attention_mask, "past_key_values": past_key_values}


class TFElectraForSequenceClassification(TFElectraPreTrainedModel):
    """Classifier on the first token: logits (B,K)."""

    output_class_name = "TFSequenceClassifierOutput"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.classifier = ElectraClassificationHead(config, name="classifier")
        self._finish_init()

    def build_heads(self):
        self.classifier.build()

    def validate_labels(self, a):
        label_checks.check_sequence_labels(self.config, a)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        a = self.resolve_call(locals())
        out = self.body(a)
        logits = self.classifier(out["last_hidden_state"], training=a.training)
        loss = None if a.labels is None else losses.sequence_classification_loss(self.config, logits, a.labels)
        return self.make_output(a, loss=loss, logits=logits, **_hidden_and_attentions(out))


class TFElectraForMultipleChoice(TFElectraPreTrainedModel):
    """Scores C candidate sequences: inputs (B,C,S) -> logits (B,C)."""

    output_class_name = "TFMultipleChoiceModelOutput"
    lead_rank = 2

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.sequence_summary = ElectraSequenceSummary(config, name="sequence_summary")
        self.classifier = dense(1, config, "classifier")
        self._finish_init()

    def build_heads(self):
        self.sequence_summary.build()
        self.classifier.build((None, self.config.hidden_size))

    def validate_labels(self, a):
        label_checks.check_choice_labels(a)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        a = self.resolve_call(locals())
        source = a.input_ids if a.input_ids is not None else a.inputs_embeds
        choices = tf.shape(source)[1]

        def flat(x):  # (B, C, S) -> (B*C, S); inputs_embeds (B, C, S, E) -> (B*C, S, E)
            return None if x is None else tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], axis=0))

        out = self.body(dataclasses.replace(
            a, input_ids=flat(a.input_ids), attention_mask=flat(a.attention_mask),
            token_type_ids=flat(a.token_type_ids), position_ids=flat(a.position_ids),
            inputs_embeds=flat(a.inputs_embeds)))
        summary = self.sequence_summary(out["last_hidden_state"], training=a.training)  # (B*C, H)
        logits = tf.reshape(self.classifier(summary), (-1, choices))  # (B, C)
        loss = None if a.labels is None else losses.multiple_choice_loss(logits, a.labels)
        return self.make_output(a, loss=loss, logits=logits, **_hidden_and_attentions(out))


class TFElectraForTokenClassification(TFElectraPreTrainedModel):
    """Per-token classifier: logits (B,S,K); loss over labels != -100."""

    output_class_name = "TFTokenClassifierOutput"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.classifier = dense(config.num_labels, config, "classifier")
        self._finish_init()

    def build_heads(self):
        self.classifier.build((None, None, self.config.hidden_size))

    def validate_labels(self, a):
        label_checks.check_token_labels(a, self.config.num_labels, allow_ignore=True)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None, labels=None,
             training=False):
        a = self.resolve_call(locals())
        out = self.body(a)
        hidden = dropout(out["last_hidden_state"], classifier_dropout_rate(self.config), a.training)
        logits = self.classifier(hidden)
        loss = None if a.labels is None else losses.ignore_index_cross_entropy(logits, a.labels)
        return self.make_output(a, loss=loss, logits=logits, **_hidden_and_attentions(out))


class TFElectraForQuestionAnswering(TFElectraPreTrainedModel):
    """Extractive QA: start_logits, end_logits (B,S)."""

    output_class_name = "TFQuestionAnsweringModelOutput"
    label_names = ("start_positions", "end_positions")

    def __init__(self, config, **kwargs):
        if config.num_labels != 2:  # error.config.qa_num_labels
            raise ValueError(f"{type(self).__name__} splits its qa_outputs into start and end logits, so "
                             f"config.num_labels must be 2, got {config.num_labels}")
        super().__init__(config, **kwargs)
        self.qa_outputs = dense(config.num_labels, config, "qa_outputs")
        self._finish_init()

    def build_heads(self):
        self.qa_outputs.build((None, None, self.config.hidden_size))

    def validate_labels(self, a):
        label_checks.check_span_positions(a)

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
             inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None,
             start_positions=None, end_positions=None, training=False):
        a = self.resolve_call(locals())
        out = self.body(a)
        both = self.qa_outputs(out["last_hidden_state"])  # (B,S,2)
        start_logits, end_logits = both[..., 0], both[..., 1]
        loss = None
        if a.start_positions is not None and a.end_positions is not None:
            loss = losses.question_answering_loss(start_logits, end_logits, a.start_positions, a.end_positions)
        return self.make_output(a, loss=loss, start_logits=start_logits, end_logits=end_logits,
                                **_hidden_and_attentions(out))


ALL_CLASSES = (TFElectraModel, TFElectraForPreTraining, TFElectraForMaskedLM, TFElectraForCausalLM,
               TFElectraForSequenceClassification, TFElectraForMultipleChoice, TFElectraForTokenClassification,
               TFElectraForQuestionAnswering)
