"""Adapter ``hf-tf``: transformers' own TFElectra* classes (needs the ``hf`` and ``tf`` extras).

transformers' TF classes are Keras 2 models: ``tf.keras`` itself up to TensorFlow 2.15, the ``tf_keras``
package from TensorFlow 2.16 on (where ``tf.keras`` is Keras 3). There transformers imports ``tf_keras``
directly and sets TF_USE_LEGACY_KERAS=1 in the environment when it loads its TF code. If TensorFlow were first
imported after that, ``tf.keras`` would be tf-keras for the whole process and a Keras 3 implementation
(our impl_tf) in the same process would break. This module therefore imports TensorFlow and binds
``tf.keras`` first, then restores the variable, so both can share a process; the CLI still runs every
--impl in its own process (and sets TF_USE_LEGACY_KERAS=1 for this one, see registry.BUILTIN_ENVIRONMENT).
"""
from __future__ import annotations

import os
from importlib.metadata import version
from typing import Any, Mapping

import numpy as np
from packaging.version import Version

from conformance.adapters.base import Handle, MeshSpec
from conformance.adapters.hf_common import HFAdapterBase, check_state_dict, package_version
from conformance.adapters.tf_common import run_cached as tf_run_cached
from conformance.adapters.tf_common import (INPUT_FORMATS, call_arguments, configure_cpu_devices, mirrored_strategy,
                                            replicated_run, tf_device, tf_devices)

#: TensorFlow <= 2.15: tf.keras is Keras 2 itself, and TF_USE_LEGACY_KERAS would make it import tf_keras
KERAS_IN_TF = Version(version("tensorflow")) < Version("2.16")
if KERAS_IN_TF:
    os.environ.pop("TF_USE_LEGACY_KERAS", None)
_legacy_before = os.environ.get("TF_USE_LEGACY_KERAS")
import tensorflow as tf  # noqa: E402

tf.keras.layers  # noqa: B018  (bind tf.keras now, before transformers changes the environment)
configure_cpu_devices()  # the distribution family's CPU meshes, before anything starts TensorFlow's runtime
if KERAS_IN_TF:
    keras2 = tf.keras
else:
    import tf_keras as keras2  # noqa: E402
import transformers  # noqa: E402,F401

_FORMATS = {"h5": False, "safetensors": True}  # format -> safe_serialization


def _restore_environment() -> None:
    if _legacy_before is None:
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = _legacy_before


_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
_STRATEGIES: dict = {}  # (platform, devices) -> MirroredStrategy


class HFTFAdapter(HFAdapterBase):
    name = "hf-tf"
    framework = "tf"

    def framework_versions(self) -> dict[str, str]:
        keras = () if KERAS_IN_TF else ("tf-keras",)
        packages = ("transformers", "tensorflow", *keras, "safetensors", "h5py", "numpy")
        return {p: package_version(p) for p in packages}

    def available_devices(self) -> list[str]:
        return tf_devices()

    def model_class(self, class_name: str):
        cls = super().model_class(class_name)
        _restore_environment()
        return cls

    optional_methods = ("loss_gradients", "call_native", "run_incremental", "run_cached", "export_serving",
                        "model_class",
                        "method_signature", "save_pretrained_defaults", "run_distributed", "sgd_step",
                        "sgd_step_penalized", "save_distributed")
    #: Keras fit/predict under tf.distribute.MirroredStrategy, transformers' documented way to train its TF
    #: classes; its loss is a per-replica scalar, so no distributed loss or gradients outside fit
    layouts = ("data",)
    formats = INPUT_FORMATS
    file_formats = ("safetensors", "h5")

    def _device(self, device: str):
        return tf_device(device)

    def build(self, class_name: str, config: dict, *, seed: int = 0, dtype: str = "float32",
              device: str = "cpu") -> Handle:
        cls = self.model_class(class_name)
        previous = keras2.mixed_precision.global_policy()
        keras2.utils.set_random_seed(seed)
        keras2.mixed_precision.set_global_policy(_POLICIES[dtype])
        try:
            with self._device(device):
                model = cls(self.hf_config(config))
                model.build_in_name_scope()
        finally:
            keras2.mixed_precision.set_global_policy(previous)
        return Handle(class_name, dict(config), dtype, device, native=model, extra={"compiled": {}})

    def _scoped_names(self, handle: Handle) -> dict[str, Any]:
        """{weight name without the model scope: variable}."""
        return {w.name.split("/", 1)[1]: w for w in handle.native.weights}

    def get_weights(self, handle: Handle) -> dict[str, np.ndarray]:
        from electra_core.checkpoint import tf_to_pt

        return tf_to_pt({w.name: w.numpy() for w in handle.native.weights})

    def loss_gradients(self, handle: Handle, inputs: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Optional protocol method (loss.differentiable): the call's loss with labels among ``inputs``
        (training off) and d loss / d weight under canonical names (tf.GradientTape)."""
        from electra_core.checkpoint import tf_to_pt

        weights = handle.native.weights
        with self._device(handle.device), tf.GradientTape() as tape:
            loss = handle.native(**{k: v for k, v in inputs.items() if v is not None}, training=False,
                                 return_dict=True).loss
        grads = tape.gradient(loss, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return (np.asarray(loss.numpy()),
                tf_to_pt({w.name: tf.convert_to_tensor(g).numpy() for w, g in zip(weights, grads)}))

    def load_weights(self, handle: Handle, state_dict: Mapping[str, np.ndarray]) -> None:
        from electra_core.checkpoint import pt_to_tf

        state = check_state_dict(self.expected_shapes(handle), state_dict, handle.class_name)
        variables = self._scoped_names(handle)
        for tf_name, value in pt_to_tf(state, None).items():
            if tf_name not in variables:
                raise ValueError(f"{handle.class_name}: no TF weight {tf_name!r} for the canonical state; "
                                 f"model has {sorted(variables)[:5]}...")
            variables[tf_name].assign(np.asarray(value, dtype=variables[tf_name].dtype.as_numpy_dtype))

    def _arguments(self, handle: Handle, inputs: dict, input_format: str):
        """(positional args, keyword args) of the requested input format; tf-keras insists on the first
        call argument by name, so the kwargs format names input_ids (None when inputs_embeds replaces it)."""
        return call_arguments(inputs, input_format, self.call_signature(handle.class_name).parameters,
                              name_input_ids=True)

    def _call(self, handle: Handle, args, kwargs, flags: dict, train: bool, compiled: bool, return_dict: bool):
        model = handle.native

        def call(args, kwargs):
            return model(*args, **kwargs, **flags, training=train, return_dict=return_dict)

        if not compiled:
            return call(args, kwargs)
        key = (tuple(sorted(flags.items())), train, return_dict)
        fn = handle.extra["compiled"].get(key)
        if fn is None:
            fn = handle.extra["compiled"][key] = tf.function(call, jit_compile=True)
        return fn(args, kwargs)

    def run(self, handle: Handle, inputs: Mapping[str, Any], *, flags: Mapping[str, Any] | None = None,
            train: bool = False, seed: int | None = None, compiled: bool = False, tuple_form: bool = False,
            input_format: str = "kwargs"):
        flags = dict(flags or {})
        flags.pop("return_dict", None)
        args, kwargs = self._arguments(handle, {k: v for k, v in inputs.items() if v is not None}, input_format)
        if train and seed is not None:
            tf.random.set_seed(seed)
        with self._device(handle.device):
            output = self._call(handle, args, kwargs, flags, train, compiled, True)
            tuple_output = self._call(handle, args, kwargs, flags, train, compiled, False) if tuple_form else None
        return self.run_result(output, tuple_output)

    run_cached = tf_run_cached  # optional protocol method (base.py): the rest of the inputs after a cached first call

    def run_incremental(self, handle: Handle, inputs: Mapping[str, Any], prompt_len: int) -> np.ndarray:
        raise NotImplementedError(f"transformers has no TF causal LM for ELECTRA ({handle.class_name})")

    def save_pretrained_defaults(self, handle: Handle, directory: str) -> None:
        """Optional protocol method: save_pretrained with its defaults."""
        handle.native.save_pretrained(directory)

    def export_serving(self, handle: Handle, directory: str) -> None:
        """Optional protocol method: a SavedModel whose serving_default is transformers' ``serving``
        specialised to the model's input_signature (int32, dynamic shape), as its save_pretrained does."""
        model = handle.native
        serving = model.serving.get_concrete_function(model.input_signature)
        tf.saved_model.save(model, directory, signatures={"serving_default": serving})

    def save(self, handle: Handle, directory: str, formats: tuple[str, ...] = ("safetensors",)) -> None:
        for fmt in formats:
            if fmt not in _FORMATS:
                raise ValueError(f"transformers' TF classes save {sorted(_FORMATS)}, not {fmt!r}")
            handle.native.save_pretrained(directory, safe_serialization=_FORMATS[fmt])

    def load(self, class_name: str, directory: str, **kwargs: Any) -> Handle:
        dtype = kwargs.pop("dtype", "float32")
        device = kwargs.pop("device", "cpu")
        with self._device(device):
            model = self.model_class(class_name).from_pretrained(directory, **kwargs)
        return Handle(class_name, model.config.to_dict(), dtype, device, native=model, extra={"compiled": {}})

    # -- distribution (tf.distribute.MirroredStrategy, tf-keras fit / predict) ------------------------------
    def _replica(self, handle: Handle, strategy):
        """A copy of the model built in ``strategy``'s scope (mirrored variables) with the handle's weights;
        a plain copy when ``strategy`` is None."""
        import contextlib

        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = self.model_class(handle.class_name)(self.hf_config(handle.config))
            model.build_in_name_scope()
            model.set_weights(handle.native.get_weights())
        return model

    def run_distributed(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec, layout: str):
        """Optional protocol method (distribution.outputs): the mirrored model called on every replica with
        its share of one global batch (tf_common.replicated_run)."""
        strategy = mirrored_strategy(mesh, _STRATEGIES)
        return replicated_run(strategy, self._replica(handle, strategy), handle.class_name, inputs)

    def sgd_step(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec | None, layout: str,
                 learning_rate: float) -> dict[str, np.ndarray]:
        """Optional protocol method (distribution.optimizer_step): compile with SGD and no loss (the model's
        own, labels among the inputs, as transformers documents) and fit one global batch, under the
        strategy or on one device (``mesh`` None); compiled, as ours_tf.sgd_step explains."""
        return self._fit_one_batch(handle, inputs, mesh, learning_rate, penalty=None)

    def sgd_step_penalized(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec | None, layout: str,
                           learning_rate: float, penalty: float) -> dict[str, np.ndarray]:
        """Optional protocol method (distribution.own_losses): sgd_step with penalty * sum(w**2) over the
        word-embedding table given to the model's add_loss (tf-keras takes a callable outside a call)."""
        return self._fit_one_batch(handle, inputs, mesh, learning_rate, penalty=penalty)

    def _fit_one_batch(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec | None,
                       learning_rate: float, penalty: float | None) -> dict[str, np.ndarray]:
        import contextlib

        from electra_core.checkpoint import tf_to_pt

        strategy = mirrored_strategy(mesh, _STRATEGIES) if mesh is not None else None
        model = self._replica(handle, strategy)
        if penalty is not None:
            table = model.get_input_embeddings().weight
            model.add_loss(lambda: penalty * tf.reduce_sum(tf.square(table)))
        arrays = {k: v for k, v in inputs.items() if v is not None}
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model.compile(optimizer=keras2.optimizers.SGD(learning_rate))
        model.fit(tf.data.Dataset.from_tensor_slices(arrays).batch(len(next(iter(arrays.values())))), epochs=1,
                  verbose=0)
        return tf_to_pt({w.name: w.numpy() for w in model.weights})

    def save_distributed(self, handle: Handle, mesh: MeshSpec, layout: str, directory: str) -> None:
        """Optional protocol method (distribution.checkpoint): save_pretrained of the mirrored model."""
        self._replica(handle, mirrored_strategy(mesh, _STRATEGIES)).save_pretrained(directory)
