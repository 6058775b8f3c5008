"""Adapter ``keras-hub``: keras-hub's ``keras_hub.models.ElectraBackbone`` (needs the ``keras-hub`` extra).

keras-hub is the maintained Keras 3 home of ELECTRA. It offers the bare encoder only, with its own
constructor and call convention, so this adapter declares a narrow slice of the spec (``capabilities``):

* class ``TFElectraModel`` only; output ``last_hidden_state`` only (the backbone also returns a
  ``pooled_output`` that ElectraModel does not have; its ``pooled_dense`` weights have no canonical name
  and are left out of ``get_weights``/``load_weights``);
* inputs ``input_ids``, ``attention_mask``, ``token_type_ids``, which keras-hub calls ``token_ids``,
  ``padding_mask`` and ``segment_ids`` and requires all three: an omitted attention_mask is passed as
  ones and an omitted token_type_ids as zeros (the documented defaults);
* no call flags (no attentions or hidden states, no tuple output), no checkpoint files in the
  transformers layout, no documented signatures (``apis`` empty);
* config: one ``dropout`` rate serves both hidden and attention dropout (``config_check``); positions are
  absolute only; no decoder or cross-attention; the activation and LayerNorm epsilon are fixed inside
  ElectraBackbone, so only the values ELECTRA checkpoints use (the documented defaults ``hidden_act`` gelu,
  ``layer_norm_eps`` 1e-12) are declared. Whether keras-hub computes those is what the suite measures.

The config dict is translated, not validated here: the fields ElectraBackbone takes go to its constructor
as given (what it does with an invalid value is keras-hub's behaviour under test); a field outside the
declared values is refused with a ValueError naming it; the fields a bare encoder never reads (heads,
labels, token ids of the tokenizer) are ignored, and so is initializer_range: ElectraBackbone always
initialises with TruncatedNormal(stddev=0.02), so a built model has small weights whatever the config says
(tests that need another scale load weights).

``run`` returns the backbone's ``sequence_output`` as last_hidden_state (output class "dict": keras-hub
returns a plain dict); ``compiled`` goes through tf.function(jit_compile=True); a training call with a seed
first sets the state of every dropout SeedGenerator from it, so it is reproducible.

Canonical (PyTorch) names map to the backbone's variables by a fixed table (``_variable_table``): Dense
kernels are (in, out), the attention projections are per-head einsum kernels (H, N, D) / (N, D, H).
Low precision runs under Keras dtype policies (mixed_bfloat16 / mixed_float16: float32 variables).

keras-hub needs the TensorFlow backend of Keras 3: ``KERAS_BACKEND=tensorflow`` must be set before keras
is first imported (the CLI sets it for this adapter's process, registry.BUILTIN_ENVIRONMENT); this module
sets it when keras is not imported yet and refuses another backend.

Shape keys: B batch, S sequence, E embedding_size, H hidden_size, N heads, D head_dim, I intermediate_size.
"""
from __future__ import annotations

import inspect
import os
import sys
from typing import Any, Mapping

import numpy as np

if "keras" not in sys.modules:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
import keras_hub  # noqa: E402

from conformance.adapters.base import Capabilities, Handle, RunResult, Support  # noqa: E402
from conformance.adapters.common import package_version  # noqa: E402
from conformance.adapters.tf_common import tf_device, tf_devices  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the keras-hub adapter needs the TensorFlow backend of Keras; this process runs "
                      f"{keras.backend.backend()!r} (set KERAS_BACKEND=tensorflow before keras is imported)")

CLASS_NAME = "TFElectraModel"
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
#: call argument -> ElectraBackbone input
_INPUT_NAMES = {"input_ids": "token_ids", "attention_mask": "padding_mask", "token_type_ids": "segment_ids"}
#: ElectraConfig field -> ElectraBackbone constructor argument (hidden_dropout_prob also stands for
#: attention_probs_dropout_prob, which config_check requires to be equal)
_CONSTRUCTOR_ARGS = {"vocab_size": "vocab_size", "num_hidden_layers": "num_layers",
                     "num_attention_heads": "num_heads", "hidden_size": "hidden_dim",
                     "embedding_size": "embedding_dim", "intermediate_size": "intermediate_dim",
                     "hidden_dropout_prob": "dropout", "max_position_embeddings": "max_sequence_length",
                     "type_vocab_size": "num_segments"}
#: ElectraConfig fields keras-hub supports at these values only
_CONFIG_VALUES = {
    "position_embedding_type": ("absolute",),  # PositionEmbedding: a learned absolute table
    "is_decoder": (False,),  # bidirectional encoder only, no cache
    "add_cross_attention": (False,),
    "hidden_act": ("gelu",),  # fixed inside ElectraBackbone; gelu is what ELECTRA checkpoints use
    "layer_norm_eps": (1e-12,),  # fixed inside ElectraBackbone (embeddings and every layer)
    "output_attentions": (False,),  # the config defaults of the flags it cannot honour
    "output_hidden_states": (False,),
    "return_dict": (True,),
}


def _config_check(class_name: str, config: Mapping[str, Any]) -> Support:
    """Relations ElectraBackbone cannot express: one dropout rate for hidden and attention dropout."""
    hidden, attention = config.get("hidden_dropout_prob"), config.get("attention_probs_dropout_prob")
    if hidden is not None and attention is not None and hidden != attention:
        return Support(False, f"config attention_probs_dropout_prob={attention!r} != hidden_dropout_prob={hidden!r} "
                              f"(ElectraBackbone has one dropout rate)")
    return Support(True)


def _variable_table(config: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """{canonical name: (backbone variable path, layout)}; layout is how the canonical array becomes the
    variable: "same", "T" (Linear (out, in) -> kernel (in, out)), "qkv" ((N*D, H) -> (H, N, D)),
    "qkv_bias" ((N*D,) -> (N, D)) or "attn_out" ((H, N*D) -> (N, D, H))."""
    table = {
        "embeddings.word_embeddings.weight": ("token_embedding/embeddings", "same"),
        "embeddings.position_embeddings.weight": ("position_embedding/embeddings", "same"),
        "embeddings.token_type_embeddings.weight": ("segment_embedding/embeddings", "same"),
        "embeddings.LayerNorm.weight": ("embeddings_layer_norm/gamma", "same"),
        "embeddings.LayerNorm.bias": ("embeddings_layer_norm/beta", "same"),
    }
    if config["embedding_size"] != config["hidden_size"]:
        table["embeddings_project.weight"] = ("embeddings_projection/kernel", "T")
        table["embeddings_project.bias"] = ("embeddings_projection/bias", "same")
    for i in range(config["num_hidden_layers"]):
        pt, kh = f"encoder.layer.{i}.", f"transformer_layer_{i}/"
        for proj in ("query", "key", "value"):
            table[f"{pt}attention.self.{proj}.weight"] = (f"{kh}self_attention_layer/{proj}/kernel", "qkv")
            table[f"{pt}attention.self.{proj}.bias"] = (f"{kh}self_attention_layer/{proj}/bias", "qkv_bias")
        table.update({
            f"{pt}attention.output.dense.weight": (f"{kh}self_attention_layer/attention_output/kernel", "attn_out"),
            f"{pt}attention.output.dense.bias": (f"{kh}self_attention_layer/attention_output/bias", "same"),
            f"{pt}attention.output.LayerNorm.weight": (f"{kh}self_attention_layer_norm/gamma", "same"),
            f"{pt}attention.output.LayerNorm.bias": (f"{kh}self_attention_layer_norm/beta", "same"),
            f"{pt}intermediate.dense.weight": (f"{kh}feedforward_intermediate_dense/kernel", "T"),
            f"{pt}intermediate.dense.bias": (f"{kh}feedforward_intermediate_dense/bias", "same"),
            f"{pt}output.dense.weight": (f"{kh}feedforward_output_dense/kernel", "T"),
            f"{pt}output.dense.bias": (f"{kh}feedforward_output_dense/bias", "same"),
            f"{pt}output.LayerNorm.weight": (f"{kh}feedforward_layer_norm/gamma", "same"),
            f"{pt}output.LayerNorm.bias": (f"{kh}feedforward_layer_norm/beta", "same"),
        })
    return table


def _to_canonical(value: np.ndarray, layout: str) -> np.ndarray:
    if layout == "T":
        return np.ascontiguousarray(value.T)
    if layout == "qkv":  # (H, N, D) -> (N*D, H)
        return np.ascontiguousarray(value.reshape(value.shape[0], -1).T)
    if layout == "qkv_bias":  # (N, D) -> (N*D,)
        return value.reshape(-1)
    if layout == "attn_out":  # (N, D, H) -> (H, N*D)
        return np.ascontiguousarray(value.reshape(-1, value.shape[-1]).T)
    return value


def _from_canonical(value: np.ndarray, layout: str, shape: tuple) -> np.ndarray:
    if layout in ("T", "qkv", "attn_out"):  # every one is a transpose, then the variable's shape
        return np.ascontiguousarray(value.T).reshape(shape)
    return value.reshape(shape)


def _canonical_shape(shape: tuple, layout: str) -> tuple:
    if layout == "T":
        return tuple(shape[::-1])
    if layout == "qkv":
        return (shape[1] * shape[2], shape[0])
    if layout == "qkv_bias":
        return (shape[0] * shape[1],)
    if layout == "attn_out":
        return (shape[2], shape[0] * shape[1])
    return tuple(shape)


class KerasHubAdapter:
    name = "keras-hub"
    framework = "tf"

    # -- description ---------------------------------------------------------------------------
    def version(self) -> str:
        return f"keras-hub {package_version('keras-hub')}"

    def framework_versions(self) -> dict[str, str]:
        return {"keras": keras.__version__, "tensorflow": tf.__version__}

    def available_devices(self) -> list[str]:
        return tf_devices()

    def capabilities(self) -> Capabilities:
        return Capabilities(
            classes=(CLASS_NAME,),
            inputs=frozenset(_INPUT_NAMES),
            flags=frozenset(),
            outputs=frozenset({"last_hidden_state"}),
            dtypes=tuple(_POLICIES),
            config=dict(_CONFIG_VALUES),
            config_check=_config_check,
            input_formats=("kwargs",),
            files=(),
            methods=frozenset(),
            apis=frozenset(),
        )

    def supports(self, class_name: str, dtype: str = "float32", device: str = "cpu") -> Support:
        if class_name != CLASS_NAME:
            return Support(False, f"keras-hub has no {class_name} (ElectraBackbone is the bare encoder, "
                                  f"{CLASS_NAME})")
        if dtype not in _POLICIES:
            return Support(False, f"unknown dtype {dtype!r}; keras-hub runs {list(_POLICIES)} here")
        if device not in self.available_devices():
            return Support(False, f"no {device} device available to TensorFlow")
        return Support(True)

    def _require_class(self, class_name: str) -> None:
        if class_name != CLASS_NAME:
            raise ValueError(f"keras-hub implements {CLASS_NAME} only (ElectraBackbone), not {class_name!r}")

    def constructor_signature(self, class_name: str) -> inspect.Signature:
        self._require_class(class_name)
        return inspect.signature(keras_hub.models.ElectraBackbone)

    def call_signature(self, class_name: str) -> inspect.Signature:
        self._require_class(class_name)
        signature = inspect.signature(keras_hub.models.ElectraBackbone.call)
        return signature.replace(parameters=[p for n, p in signature.parameters.items() if n != "self"])

    # -- building and weights ------------------------------------------------------------------
    def _backbone_arguments(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(ElectraBackbone keyword arguments, the full config dict) of an ElectraConfig dict, the spec's
        defaults filling the fields it leaves out; ValueError naming the field for a value keras-hub cannot
        express."""
        from spec import load_spec

        spec_config = load_spec().config
        full = {f.name: f.default for f in spec_config.fields if not f.derived}
        full.update(config)
        for name, allowed in _CONFIG_VALUES.items():
            value = full[name]
            # `in` would take True for 1 and 1e-12 for a bool; compare type and value
            if not any(type(value) is type(a) and value == a for a in allowed):
                raise ValueError(f"keras-hub's ElectraBackbone cannot express {name}={value!r} "
                                 f"(supported: {', '.join(repr(a) for a in allowed)})")
        support = _config_check(CLASS_NAME, full)
        if not support.ok:
            raise ValueError(f"keras-hub's ElectraBackbone cannot express {support.reason}")
        return {arg: full[name] for name, arg in _CONSTRUCTOR_ARGS.items()}, full

    def build(self, class_name: str, config: dict, *, seed: int = 0, dtype: str = "float32",
              device: str = "cpu") -> Handle:
        self._require_class(class_name)
        if dtype not in _POLICIES:
            raise ValueError(f"unknown dtype {dtype!r}; expected one of {list(_POLICIES)}")
        arguments, full = self._backbone_arguments(config)
        keras.utils.set_random_seed(seed)
        with tf_device(device):
            model = keras_hub.models.ElectraBackbone(**arguments, dtype=_POLICIES[dtype])
        table = _variable_table(full)
        variables = {v.path: v for v in model.weights}
        missing = sorted(path for path, _ in table.values() if path not in variables)
        if missing:  # a keras-hub release with other variable names: fail loudly, never half-map
            raise RuntimeError(f"keras-hub {package_version('keras-hub')}: ElectraBackbone has no variables "
                               f"{missing[:5]}; the adapter's name table does not fit this release")
        return Handle(class_name, dict(full), dtype, device, native=model,
                      extra={"table": table, "variables": variables, "compiled": {}})

    def _canonical_variables(self, handle: Handle) -> dict[str, tuple[Any, str]]:
        variables = handle.extra["variables"]
        return {name: (variables[path], layout) for name, (path, layout) in handle.extra["table"].items()}

    def get_weights(self, handle: Handle) -> dict[str, np.ndarray]:
        return {name: _to_canonical(np.asarray(variable.numpy()), layout)
                for name, (variable, layout) in self._canonical_variables(handle).items()}

    def load_weights(self, handle: Handle, state_dict: Mapping[str, np.ndarray]) -> None:
        """Set every canonical parameter. ValueError naming the missing and unexpected names, or every
        shape mismatch, before anything is assigned; a head-class state dict (``electra.`` prefix) fits."""
        variables = self._canonical_variables(handle)
        state, unexpected = {}, []
        for name, value in state_dict.items():
            plain = name[len("electra."):] if name.startswith("electra.") and name not in variables else name
            if plain not in variables:
                unexpected.append(name)
            elif plain not in state or plain == name:  # an exact name wins over a prefixed duplicate
                state[plain] = value
        missing = [name for name in variables if name not in state]
        if missing or unexpected:
            raise ValueError(f"keras-hub ElectraBackbone: the state dict does not fit: missing {missing}, "
                             f"unexpected {unexpected}")
        mismatched = []
        for name, value in state.items():
            variable, layout = variables[name]
            expected = _canonical_shape(tuple(variable.shape), layout)
            if tuple(np.shape(value)) != expected:
                mismatched.append(f"{name}: expected shape {expected}, got {tuple(np.shape(value))}")
        if mismatched:
            raise ValueError("keras-hub ElectraBackbone: wrong shapes: " + "; ".join(mismatched))
        for name, value in state.items():
            variable, layout = variables[name]
            array = _from_canonical(np.asarray(value), layout, tuple(variable.shape))
            variable.assign(array.astype(variable.dtype))
        handle.extra["compiled"].clear()

    # -- running -------------------------------------------------------------------------------
    def _backbone_inputs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The ElectraBackbone input dict: arrays passed as given (keras-hub's own checks and casts are
        under test), omitted masks filled with the documented defaults. Without input_ids nothing is
        filled and keras-hub reports the missing input itself."""
        given = {k: v for k, v in inputs.items() if v is not None}
        unknown = sorted(set(given) - set(_INPUT_NAMES))
        if unknown:
            raise TypeError(f"keras-hub's ElectraBackbone takes {sorted(_INPUT_NAMES)}, not {unknown}")
        out = {_INPUT_NAMES[k]: np.asarray(v) for k, v in given.items()}
        if "token_ids" in out:  # keras-hub requires all three inputs
            shape = np.shape(out["token_ids"])
            out.setdefault("padding_mask", np.ones(shape, dtype=np.int32))
            out.setdefault("segment_ids", np.zeros(shape, dtype=np.int32))
        return out

    def _reseed(self, handle: Handle, seed: int) -> None:
        """Dropout draws from each layer's SeedGenerator state; setting every state from ``seed`` makes a
        training call reproducible."""
        generators = [g for layer in handle.native._flatten_layers(include_self=True)
                      for g in getattr(layer, "_seed_generators", ())]
        for k, generator in enumerate(generators):
            generator.state.assign(np.array([seed, k], dtype=generator.state.dtype))

    def run(self, handle: Handle, inputs: Mapping[str, Any], *, flags: Mapping[str, Any] | None = None,
            train: bool = False, seed: int | None = None, compiled: bool = False, tuple_form: bool = False,
            input_format: str = "kwargs") -> RunResult:
        flags = {k: v for k, v in (flags or {}).items() if v is not None}
        if flags:
            raise TypeError(f"keras-hub's ElectraBackbone honours no call flags; got {sorted(flags)}")
        if tuple_form:
            raise TypeError("keras-hub's ElectraBackbone has no tuple output (return_dict=False)")
        if input_format != "kwargs":
            raise ValueError(f"keras-hub adapter: input_format 'kwargs' only, not {input_format!r}")
        values = self._backbone_inputs(inputs)
        model = handle.native
        with tf_device(handle.device):
            if train and seed is not None:
                self._reseed(handle, seed)
            if compiled:
                fn = handle.extra["compiled"].get(bool(train))
                if fn is None:
                    def call(values):
                        return model(values, training=train)
                    fn = handle.extra["compiled"][bool(train)] = tf.function(call, jit_compile=True)
                output = fn(values)
            else:
                output = model(values, training=train)
        return RunResult(fields={"last_hidden_state": np.asarray(output["sequence_output"].numpy())},
                         output_class="dict")
