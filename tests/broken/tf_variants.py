"""Broken variants of impl_tf. Each class names its defect and the spec clause the conformance suite
must flag (see tests/test_suite_selftest.py); the patch is applied when the adapter is created.

Shape keys: B batch, S sequence, Sp cached length.
"""
from __future__ import annotations

import tensorflow as tf

from conformance.adapters.ours_tf import TFAdapter
from tests.broken.patching import patch, with_arguments


class _Broken(TFAdapter):
    defect = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = f"tf-broken-{self.defect}"
        self.apply()

    def apply(self) -> None:
        raise NotImplementedError


def _main_layer():
    from impl_tf.layers.stack import ElectraMainLayer

    return ElectraMainLayer


def _change_call_defaults(change) -> None:
    """Patch ElectraMainLayer.call so that ``change(arguments)`` edits the arguments first."""
    layer = _main_layer()
    patch(layer, "call", with_arguments(layer.call, change))


def _sequence_and_past(a) -> tuple:
    ids = a["input_ids"] if a["input_ids"] is not None else a["inputs_embeds"][..., 0]
    past = 0 if a["past_key_values"] is None else tf.shape(a["past_key_values"][0][0])[2]
    return tf.shape(ids)[0], tf.shape(ids)[1], past


class TanhGelu(_Broken):
    """gelu computed with the tanh approximation although the spec says exact (erf)."""
    defect = "tanh-gelu"

    def apply(self):
        from impl_tf import activations

        patch(activations, "ACTIVATIONS", dict(activations.ACTIVATIONS, gelu=activations.gelu_tanh))


class QuickGeluAsSilu(_Broken):
    """quick_gelu computed as silu, x * sigmoid(x), instead of x * sigmoid(1.702 x)."""
    defect = "quick-gelu-as-silu"

    def apply(self):
        from impl_tf import activations

        patch(activations, "ACTIVATIONS", dict(activations.ACTIVATIONS, quick_gelu=activations.ACTIVATIONS["silu"]))


class LayerNormEpsIgnored(_Broken):
    """Every LayerNorm uses Keras' default epsilon instead of config.layer_norm_eps."""
    defect = "eps-ignored"

    def apply(self):
        from impl_tf.layers import heads, stack

        def layer_norm(config, name="LayerNorm"):
            return tf.keras.layers.LayerNormalization(name=name)

        for module in (stack, heads):
            patch(module, "layer_norm", layer_norm)


class PaddingMaskIgnored(_Broken):
    """attention_mask is accepted but never applied to the attention scores."""
    defect = "padding-mask-ignored"

    def apply(self):
        layer = _main_layer()
        original = layer._self_attention_bias

        def bias(self, attention_mask, seq, past_length, dtype):
            return original(self, tf.ones_like(attention_mask), seq, past_length, dtype)

        patch(layer, "_self_attention_bias", bias)


class TokenTypesDefaultOnes(_Broken):
    """An omitted token_type_ids means all ones (sentence B) instead of zeros."""
    defect = "token-types-default-ones"

    def apply(self):
        def change(a):
            if a["token_type_ids"] is None:
                batch, seq, _ = _sequence_and_past(a)
                a["token_type_ids"] = tf.ones((batch, seq), tf.int32)

        _change_call_defaults(change)


class PositionsOffByOne(_Broken):
    """Default positions start at 1 instead of 0."""
    defect = "positions-off-by-one"

    def apply(self):
        def change(a):
            if a["position_ids"] is None:
                _, seq, past = _sequence_and_past(a)
                a["position_ids"] = (tf.range(seq) + past + 1)[None, :]

        _change_call_defaults(change)


class CachePositionsNotOffset(_Broken):
    """Decoding with a cache restarts the default positions at 0 instead of at the cached length."""
    defect = "cache-positions-not-offset"

    def apply(self):
        def change(a):
            if a["position_ids"] is None:
                _, seq, _ = _sequence_and_past(a)
                a["position_ids"] = tf.range(seq)[None, :]

        _change_call_defaults(change)


class IgnoredLabelsCounted(_Broken):
    """Labels of -100 are scored as class 0 and counted in the mean."""
    defect = "ignored-labels-counted"

    def apply(self):
        from impl_tf import losses

        def counted(logits, labels):
            labels = tf.cast(labels, tf.int32)
            safe = tf.where(labels == losses.IGNORE_INDEX, tf.zeros_like(labels), labels)
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=safe, logits=tf.cast(logits, tf.float32)))

        patch(losses, "ignore_index_cross_entropy", counted)


class DropoutInInference(_Broken):
    """Dropout is applied whatever the training flag says."""
    defect = "dropout-in-inference"

    def apply(self):
        from impl_tf.layers import common, heads, stack

        def dropout(x, rate, training):
            return tf.nn.dropout(x, rate=rate) if rate else x

        for module in (common, heads, stack):
            if hasattr(module, "dropout"):
                patch(module, "dropout", dropout)


class PrepareInputsMissing(_Broken):
    """TFElectraForCausalLM lacks prepare_inputs_for_generation (the defect the signatures family found)."""
    defect = "no-prepare-inputs"

    def apply(self):
        from impl_tf import TFElectraForCausalLM

        patch(TFElectraForCausalLM, "prepare_inputs_for_generation", None)


class TupleDropsCache(_Broken):
    """With return_dict=False the tuple leaves out past_key_values, the cache the call built (as transformers'
    TF encoder does): visible only in a decoder asked for both its cache and the tuple form."""
    defect = "tuple-drops-cache"

    def apply(self):
        from impl_tf.model_base import TFElectraPreTrainedModel

        original = TFElectraPreTrainedModel.make_output

        def make_output(model, a, **fields):
            if not a.return_dict:
                fields.pop("past_key_values", None)
            return original(model, a, **fields)

        patch(TFElectraPreTrainedModel, "make_output", make_output)


class CacheKeepsCrossAttention(_Broken):
    """With cross-attention, each layer's returned cache also holds the cross-attention keys and values, four
    tensors instead of the self-attention's pair, and a cache of four per layer is taken back (as transformers'
    TF classes do): the outputs stay right."""
    defect = "cache-keeps-cross-attention"

    def apply(self):
        from impl_tf import validation
        from impl_tf.layers import stack

        check_past = validation._check_past
        patch(validation, "_check_past", lambda config, past, lead: check_past(config, [p[:2] for p in past], lead))

        original = stack.ElectraLayer.call

        def call(layer, hidden_states, mask_bias, head_mask=None, past=None, past_length=0, encoder_hidden_states=None,
                 encoder_mask_bias=None, output_attentions=False, training=False):
            out = original(layer, hidden_states, mask_bias, head_mask=head_mask, past=past, past_length=past_length,
                           encoder_hidden_states=encoder_hidden_states, encoder_mask_bias=encoder_mask_bias,
                           output_attentions=output_attentions, training=training)
            if encoder_hidden_states is None or not layer.config.add_cross_attention:
                return out
            cross, heads = layer.crossattention.self_attention, (layer.config.num_attention_heads, layer.config.head_dim)
            present = out[3] + (stack.split_heads(cross.key(encoder_hidden_states), *heads),
                                stack.split_heads(cross.value(encoder_hidden_states), *heads))
            return out[:3] + (present,)

        patch(stack.ElectraLayer, "call", call)


class ServingDropsTokenTypes(_Broken):
    """The SavedModel's serving signature takes token_type_ids but never passes them on: invisible while
    the exported model is called with all-zero type ids only."""
    defect = "serving-drops-token-types"

    def apply(self):
        from impl_tf.model_base import TFElectraPreTrainedModel

        def serving_function(model):
            spec = tf.TensorSpec((None,) * (model.lead_rank + 1), tf.int32)

            @tf.function(input_signature=[spec, spec, spec])
            def serving(input_ids, attention_mask, token_type_ids):
                out = model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, training=False)
                return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

            return serving

        patch(TFElectraPreTrainedModel, "serving_function", serving_function)


class WordIdsIndexRenamed(_Broken):
    """BatchEncoding.word_ids names its row argument `index` instead of the documented `batch_index`
    (electra_core's own tokenizer had this): seen only by a call that passes the row by keyword."""
    defect = "word-ids-index-renamed"

    def apply(self):
        from electra_core.tokenizer.batch_encoding import BatchEncoding

        patch(BatchEncoding, "word_ids", lambda encoding, index=0: list(encoding._encoding(index).word_ids))


class SpecialTokenCountIgnoresPair(_Broken):
    """num_special_tokens_to_add answers 2 (one sequence) whatever `pair` says."""
    defect = "special-token-count-ignores-pair"

    def apply(self):
        from electra_core.tokenizer import ElectraTokenizerFast

        patch(ElectraTokenizerFast, "num_special_tokens_to_add", lambda tokenizer, pair=False: 2)


class ResizeDropsPadRow(_Broken):
    """resize_token_embeddings never checks pad_token_id, so it may cut the padding row off the table."""
    defect = "resize-drops-pad-row"

    def apply(self):
        from impl_tf.model_base import TFElectraPreTrainedModel

        original = TFElectraPreTrainedModel.resize_token_embeddings

        def resize_token_embeddings(model, new_num_tokens=None):
            pad, model.config.pad_token_id = model.config.pad_token_id, None
            try:
                return original(model, new_num_tokens)
            finally:
                model.config.pad_token_id = pad

        patch(TFElectraPreTrainedModel, "resize_token_embeddings", resize_token_embeddings)


class RaggedListUnnamed(_Broken):
    """A ragged Python list reaches numpy unchecked: numpy's ValueError about an inhomogeneous shape names no
    argument (only the listing of every argument that Keras appends to the message does)."""
    defect = "ragged-list-unnamed"

    def apply(self):
        import numpy as np

        from impl_tf import call_arguments

        def list_to_tensor(name, x):
            array = np.asarray(x)
            call_arguments._check_numeric_array(name, array)
            return tf.convert_to_tensor(x)

        patch(call_arguments, "_list_to_tensor", list_to_tensor)


class ComplexHeadMaskAccepted(_Broken):
    """A complex head_mask is taken: the input checks look for string and object dtypes only, so the mask is
    cast to float (its imaginary part dropped) without a word."""
    defect = "complex-head-mask-accepted"

    def apply(self):
        from impl_tf import call_arguments, validation

        def numeric_only(name, x):
            if x.dtype.kind in "OUSV":
                raise TypeError(f"{name} must be a numeric array, got dtype {x.dtype}")

        patch(call_arguments, "_check_numeric_array", numeric_only)
        patch(validation, "check_real", lambda name, x: None)


class OwnLossesPerReplica(_Broken):
    """The model's own losses (model.losses: regularizers, add_loss) added whole on every replica of a
    tf.distribute strategy, so that a step counts them R times, where each replica's share is 1/R."""
    defect = "own-losses-per-replica"

    def apply(self):
        from impl_tf import losses, model_base

        model_class = model_base.TFElectraPreTrainedModel
        shared = model_class.compute_loss

        def compute_loss(model, *args, **kwargs):
            loss = shared(model, *args, **kwargs)
            replicas = losses.sharing_replicas()
            for extra in model.losses:  # the share of extra already added, plus the rest of it
                loss = loss + extra * (1 - 1 / replicas)
            return loss

        patch(model_class, "compute_loss", compute_loss)


class RelativeLengthUncheckedWithPositions(_Broken):
    """Given position_ids, the length check treats every config as absolute: a relative-attention model then
    takes a sequence longer than its distance table when the position ids are in range."""
    defect = "relative-length-unchecked-with-positions"

    def apply(self):
        from impl_tf import model_base, validation

        checked = validation.validate_call_inputs

        def validate_call_inputs(config, args, lead_rank=1):
            if args.get("position_ids") is not None:
                config = type(config).from_dict(config.to_dict(), position_embedding_type="absolute")
            return checked(config, args, lead_rank)

        patch(model_base, "validate_call_inputs", validate_call_inputs)


class UnusedWeightsUnlisted(_Broken):
    """A checkpoint's parameters that the model does not use are dropped without a word (the load lists the
    newly initialised ones only)."""
    defect = "unused-weights-unlisted"

    def apply(self):
        import dataclasses

        from impl_tf import pretrained

        assign = pretrained.assign_match
        patch(pretrained, "assign_match",
              lambda model, result: assign(model, dataclasses.replace(result, unexpected=[])))


class DictWinsOverKeyword(_Broken):
    """An input given both in the input dict (or list) and as a keyword takes the dict's value, the keyword's
    dropped without a word (what transformers' TF classes do), where the spec refuses two values for one
    argument."""
    defect = "dict-wins-over-keyword"

    def apply(self):
        from collections.abc import Mapping

        from impl_tf import call_arguments, model_base

        unpack = call_arguments.unpack_input_formats

        def unpack_input_formats(names, values):
            first = values.get(names[0])
            if isinstance(first, Mapping):
                inside = set(first)
            elif isinstance(first, (list, tuple)) and not call_arguments.is_number_list(first):
                inside = {name for name, value in zip(names, first) if value is not None}
            else:
                inside = set()
            dropped = {name: None for name in inside if name != names[0]}
            return unpack(names, dict(values, **dropped))

        patch(model_base, "unpack_input_formats", unpack_input_formats)


class HeaderReadBeforeItsCheck(_Broken):
    """The safetensors header is read with the length the file declares before that length is compared with
    the file: a file declaring a huge header makes the load allocate that much before it fails."""
    defect = "header-read-before-its-check"

    def apply(self):
        import json
        import struct
        from pathlib import Path

        from electra_core.checkpoint import safetensors_io

        def read_header(path):
            with open(path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                text = f.read(length)
            if length > Path(path).stat().st_size - 8:
                raise ValueError(f"header length {length} exceeds the file size")
            return json.loads(text), 8 + length

        patch(safetensors_io, "_read_header", read_header)
