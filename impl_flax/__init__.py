"""JAX + Flax linen implementation of the Flax ELECTRA classes of the spec.

``from impl_flax import ElectraConfig, FlaxElectraModel, FlaxMaskedLMOutput, ...``
"""
from electra_core.config import ElectraConfig
from electra_core.tokenizer import AutoTokenizer, ElectraTokenizerFast
from impl_flax.model_base import FlaxElectraPreTrainedModel
from impl_flax.models import (PUBLIC_CLASSES, FlaxElectraForCausalLM, FlaxElectraForMaskedLM,
                              FlaxElectraForMultipleChoice, FlaxElectraForPreTraining,
                              FlaxElectraForQuestionAnswering, FlaxElectraForSequenceClassification,
                              FlaxElectraForTokenClassification, FlaxElectraModel)
from impl_flax.outputs import OUTPUT_CLASSES

globals().update(OUTPUT_CLASSES)

__all__ = ["ElectraConfig", "ElectraTokenizerFast", "AutoTokenizer", "FlaxElectraPreTrainedModel", *[c.__name__ for c in PUBLIC_CLASSES], *OUTPUT_CLASSES]
