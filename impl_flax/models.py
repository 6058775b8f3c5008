"""The eight public Flax classes: each names its linen module; everything else is the shared wrapper."""
from __future__ import annotations

from impl_flax.generation import GenerationMixin
from impl_flax.model_base import FlaxElectraPreTrainedModel
from impl_flax.modeling import heads
from impl_flax.modeling.frozen_config import FrozenConfig
from impl_flax.modeling.layers import ElectraModule


class FlaxElectraModel(FlaxElectraPreTrainedModel):
    """The bare encoder: last_hidden_state (B, S, H)."""

    module_class = ElectraModule


class FlaxElectraForPreTraining(FlaxElectraPreTrainedModel):
    """Discriminator: replaced-token logits (B, S)."""

    module_class = heads.ElectraForPreTrainingModule


class FlaxElectraForMaskedLM(FlaxElectraPreTrainedModel):
    """Generator: vocabulary logits (B, S, V)."""

    module_class = heads.ElectraGeneratorModule


class FlaxElectraForCausalLM(GenerationMixin, FlaxElectraPreTrainedModel):
    """Generator head as a left-to-right decoder (config.is_decoder) with a key/value cache."""

    module_class = heads.ElectraGeneratorModule


class FlaxElectraForSequenceClassification(FlaxElectraPreTrainedModel):
    """Logits (B, K) from the first token."""

    module_class = heads.ElectraForSequenceClassificationModule

    def dropout_rates(self) -> list[float]:
        return super().dropout_rates() + [heads.classifier_dropout_rate(FrozenConfig(self.config))]


class FlaxElectraForMultipleChoice(FlaxElectraPreTrainedModel):
    """Inputs (B, C, S) -> logits (B, C)."""

    module_class = heads.ElectraForMultipleChoiceModule
    input_lead_rank = 2

    def dropout_rates(self) -> list[float]:
        return super().dropout_rates() + [self.config.summary_first_dropout, self.config.summary_last_dropout]


class FlaxElectraForTokenClassification(FlaxElectraPreTrainedModel):
    """Logits (B, S, K)."""

    module_class = heads.ElectraForTokenClassificationModule

    def dropout_rates(self) -> list[float]:
        return super().dropout_rates() + [heads.classifier_dropout_rate(FrozenConfig(self.config))]


class FlaxElectraForQuestionAnswering(FlaxElectraPreTrainedModel):
    """start_logits, end_logits (B, S)."""

    module_class = heads.ElectraForQuestionAnsweringModule

    @classmethod
    def check_config(cls, config) -> None:
        if config.num_labels != 2:
            raise ValueError(f"{cls.__name__} splits its qa_outputs into start and end logits, so config.num_labels "
                             f"must be 2, got {config.num_labels}")


PUBLIC_CLASSES = (FlaxElectraModel, FlaxElectraForPreTraining, FlaxElectraForCausalLM, FlaxElectraForMaskedLM,
                  FlaxElectraForSequenceClassification, FlaxElectraForMultipleChoice,
                  FlaxElectraForTokenClassification, FlaxElectraForQuestionAnswering)
