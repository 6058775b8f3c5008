"""ELECTRA for TensorFlow: Keras 3 models (``tf.keras``) with the transformers 4.37 TF API.

``from impl_tf import ElectraConfig, TFElectraModel, TFElectraForMaskedLM, TFMaskedLMOutput, ...``
"""
from electra_core import ElectraConfig
from electra_core.tokenizer import AutoTokenizer, ElectraTokenizerFast
from electra_core.outputs import output_class
from impl_tf.models import (ALL_CLASSES, TFElectraForCausalLM, TFElectraForMaskedLM, TFElectraForMultipleChoice,
                            TFElectraForPreTraining, TFElectraForQuestionAnswering,
                            TFElectraForSequenceClassification, TFElectraForTokenClassification, TFElectraModel)
from impl_tf.model_base import TFElectraPreTrainedModel

OUTPUT_CLASS_NAMES = tuple(cls.output_class_name for cls in ALL_CLASSES)
globals().update({name: output_class(name) for name in OUTPUT_CLASS_NAMES})

__all__ = ["ElectraConfig", "ElectraTokenizerFast", "AutoTokenizer", "TFElectraPreTrainedModel", *(cls.__name__ for cls in ALL_CLASSES),
           *OUTPUT_CLASS_NAMES]
