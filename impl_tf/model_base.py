"""TFElectraPreTrainedModel: what every public class shares — argument resolution and validation,
output construction, Keras fit support, embeddings access and resizing, from/save_pretrained glue
and a SavedModel serving signature.

Shape keys: B batch, S sequence, V vocab_size, E embedding_size.
"""
from __future__ import annotations

import contextlib
import numbers
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from electra_core import ElectraConfig
from electra_core.limits import check_parameter_memory, spec_class_name
from electra_core.outputs import output_class
from impl_tf import losses
from impl_tf.call_arguments import (CallArguments, call_parameter_names, resolve_flags, to_tensor,
                                   unpack_input_formats, widen_integer_ids)
from impl_tf.layers.stack import ElectraMainLayer
from impl_tf.validation import after_assertions, validate_call_inputs

keras = tf.keras


class TFElectraPreTrainedModel(keras.Model):
    #: output class name in spec/data/outputs.yaml
    output_class_name: str = ""
    #: call arguments holding the labels, in the order a tuple ``y`` is spread over them
    label_names: tuple[str, ...] = ("labels",)
    #: leading dims before the sequence: 1 for (B,S), 2 for multiple choice (B,C,S)
    lead_rank: int = 1
    #: canonical prefix of the base model's parameters ("" for the bare model)
    base_model_prefix = "electra"

    def __init__(self, config: ElectraConfig, **kwargs):
        if not isinstance(config, ElectraConfig):
            raise TypeError(f"config must be an ElectraConfig, got {type(config).__name__}")
        config.validate()
        check_parameter_memory(spec_class_name(type(self)), config)  # before any layer is built
        super().__init__(**kwargs)
        # inputs reach call() as given (numpy keeps its dtype for the checks; lists and dicts allowed)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.config = config
        self.electra = ElectraMainLayer(config, name="electra")

    def build_heads(self) -> None:
        """Create every weight now (each class builds its head layers here)."""

    def _finish_init(self) -> None:
        self.electra.build()
        self.build_heads()
        self.built = True

    # -- calling -------------------------------------------------------------------------------
    def resolve_call(self, given: dict[str, Any]) -> CallArguments:
        """The call's local arguments -> unpacked, converted, validated, flags filled from the config."""
        names = call_parameter_names(type(self))
        values = unpack_input_formats(names, {k: given.get(k) for k in names})
        values = {k: (v if k == "training" else to_tensor(v, k)) for k, v in values.items()}
        values = resolve_flags(self.config, values)
        asserts = validate_call_inputs(self.config, values, lead_rank=self.lead_rank)
        self.validate_labels(CallArguments(**values))
        values = widen_integer_ids(values)
        values = after_assertions(asserts, values, ("input_ids", "inputs_embeds", "token_type_ids", "position_ids"))
        values["training"] = bool(values.get("training") or False)
        return CallArguments(**values)

    def validate_labels(self, a: CallArguments) -> None:
        """Each head checks its labels' dtype and range (see impl_tf.label_checks)."""

    def body(self, a: CallArguments, with_decoder_inputs: bool = False) -> dict[str, Any]:
        """The ELECTRA body on resolved arguments; ``with_decoder_inputs``: also the cross-attention inputs and
        the cache (the classes whose call takes them). Returns the encoder's dict of outputs."""
        decoder_inputs = {}
        if with_decoder_inputs:
            decoder_inputs = dict(encoder_hidden_states=a.encoder_hidden_states,
                                  encoder_attention_mask=a.encoder_attention_mask,
                                  past_key_values=a.past_key_values, use_cache=a.use_cache)
        return self.electra(
            input_ids=a.input_ids, attention_mask=a.attention_mask, token_type_ids=a.token_type_ids,
            position_ids=a.position_ids, head_mask=a.head_mask, inputs_embeds=a.inputs_embeds,
            output_attentions=a.output_attentions, output_hidden_states=a.output_hidden_states,
            training=a.training, **decoder_inputs)

    def make_output(self, a: CallArguments, **fields):
        """The spec's output class with the present fields, or its tuple when return_dict is false."""
        out = output_class(self.output_class_name)(**fields)
        return out if a.return_dict else out.to_tuple()

    # -- Keras training --------------------------------------------------------------------------
    def _labels_into_inputs(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is None or self._compile_loss is not None:
            return data
        x = dict(x) if isinstance(x, Mapping) else {"input_ids": x}
        if isinstance(y, Mapping):
            x.update(y)
        elif isinstance(y, (tuple, list)) and len(y) == len(self.label_names):
            x.update(zip(self.label_names, y))
        else:
            x[self.label_names[0]] = y
        return keras.utils.pack_x_y_sample_weight(x, None, sample_weight)

    def train_step(self, data):
        with losses.replica_shares():  # the model's loss: this replica's share of the global-batch mean
            return super().train_step(self._labels_into_inputs(data))

    def test_step(self, data):
        with losses.replica_shares():
            return super().test_step(self._labels_into_inputs(data))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Under a tf.distribute strategy Keras' fit/evaluate first reduce the first distributed batch to
        its MEAN over the replicas, only to trace the model on it; that fails (AddN of different shapes)
        when the global batch does not split evenly over the replicas. Every weight exists from
        construction, so with no loss or metrics given to compile() there is nothing to trace: only the
        optimizer is built, in the strategy's scope."""
        strategy = self._distribute_strategy
        if (strategy is not None and self._compile_loss is None and self._compile_metrics is None
                and all(layer.built for layer in self._flatten_layers())):
            with strategy.scope():
                self._symbolic_build()
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def predict_step(self, data):
        """Keras' nested-structure utilities need plain containers: the output as a dict of tensors."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        out = self(x, training=False, return_dict=True)
        return dict(out)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """With no loss given to compile(), the model's own loss (labels inside the inputs).

        Under a tf.distribute strategy with R replicas (Keras' train/test steps): the model's loss is
        this replica's share of the global-batch mean (impl_tf.losses.replica_shares). Its gradient is
        the share's, so the summed gradients are those of the global mean; its value is the global mean
        / R, which Keras' loss tracker (x R, weighted by the replica's batch size) reports as the global
        mean whatever the split of the batch."""
        if self._compile_loss is None:
            loss = y_pred["loss"] if isinstance(y_pred, Mapping) else None
            if loss is None:
                raise ValueError(f"{type(self).__name__} has no loss to train on: pass the labels "
                                 f"({', '.join(self.label_names)}) in the input dict or as y, or give "
                                 f"compile() a loss")
            replicas = losses.sharing_replicas()
            if replicas == 1 and losses.replicas_here() > 1:
                raise RuntimeError(
                    f"{type(self).__name__}.compute_loss runs on one of {losses.replicas_here()} replicas, but the "
                    f"model's loss was computed as this replica's own mean: a mean of per-replica means is not "
                    f"the global-batch mean when the replicas count different numbers of positions. Compute "
                    f"the model's outputs and call compute_loss inside impl_tf.losses.replica_shares() (as "
                    f"the model's train_step and test_step do)")
            if replicas > 1:
                context = tf.distribute.get_replica_context()
                total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(loss))
                loss = loss + tf.stop_gradient(total / replicas - loss)
            for extra in self.losses:  # the same on every replica: R shares of extra / R
                loss = loss + (extra / replicas if replicas > 1 else extra)
            return loss
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)

    # -- embeddings ------------------------------------------------------------------------------
    def get_input_embeddings(self):
        """The word-embedding table layer (its ``table`` is (V,E))."""
        return self.electra.embeddings.word_embeddings

    def get_output_embeddings(self):
        """The layer producing vocabulary logits (LM heads), else None."""
        return None

    def resize_token_embeddings(self, new_num_tokens: int | None = None):
        """Resize the vocabulary to ``new_num_tokens`` rows keeping the old rows; updates
        config.vocab_size and the LM head bias. Returns the input embedding layer. A size that is not a
        positive int, or that would drop the pad_token_id row, is error.resize.new_num_tokens."""
        table = self.get_input_embeddings()
        if new_num_tokens is None or new_num_tokens == table.rows:
            return table
        if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, numbers.Integral) or new_num_tokens < 1:
            raise ValueError(f"new_num_tokens must be a positive int, got {new_num_tokens!r}")
        new_num_tokens = int(new_num_tokens)
        pad = self.config.pad_token_id
        if pad is not None and pad >= new_num_tokens:
            raise ValueError(f"new_num_tokens = {new_num_tokens} would drop pad_token_id = {pad}")
        strategy = self._distribute_strategy  # set when the model was built in a tf.distribute scope
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            table.resize(new_num_tokens)  # new variables: mirrored like the others under a strategy
            head = self.get_output_embeddings()
            if head is not None:
                head.resize(new_num_tokens)
        self.config.vocab_size = new_num_tokens
        return table

    # -- checkpoints -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, revision=None, cache_dir=None, local_files_only=False,
                        ignore_mismatched_sizes=False, config=None, **kwargs):
        """Build from a local directory or hub id (config.json + model.safetensors / tf_model.h5).
        ``kwargs``: the hub options token, proxies, force_download, subfolder; the loader options
        use_safetensors, from_pt; ElectraConfig fields overriding the loaded config. Anything else is a
        TypeError (error.loader.keyword)."""
        from impl_tf.pretrained import load_pretrained

        return load_pretrained(cls, pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir,
                               local_files_only=local_files_only, ignore_mismatched_sizes=ignore_mismatched_sizes,
                               config=config, **kwargs)

    def save_pretrained(self, save_directory, safe_serialization=None, formats=None):
        """Write config.json and the weights atomically (api.save_pretrained): model.safetensors with
        PyTorch names by default or with safe_serialization=True, tf_model.h5 in transformers' TF layout
        with safe_serialization=False; ``formats`` ("safetensors", "h5") selects several at once."""
        from impl_tf.pretrained import save_pretrained

        if formats is None:
            formats = ("h5",) if safe_serialization is False else ("safetensors",)
        elif safe_serialization is not None:
            raise ValueError("pass either safe_serialization or formats to save_pretrained, not both")
        save_pretrained(self, save_directory, formats=tuple(formats))

    # -- serving ---------------------------------------------------------------------------------
    def serving_function(self):
        """A tf.function taking input_ids, attention_mask, token_type_ids (int32, (B,S) dynamic) and
        returning the output's tensor fields as a dict; for tf.saved_model.save signatures."""
        spec = tf.TensorSpec((None,) * (self.lead_rank + 1), tf.int32)

        @tf.function(input_signature=[spec, spec, spec])
        def serving(input_ids, attention_mask, token_type_ids):
            out = self(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                       return_dict=True, training=False)
            return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

        return serving
