"""Adapter ``tf``: this project's Keras 3 implementation (impl_tf) behind the conformance protocol.

Parameters are exchanged under canonical (PyTorch) names through impl_tf.weights (the Keras variable
paths are transformers' TF weight names, mapped by electra_core.checkpoint's rule). Compiled runs use
tf.function(jit_compile=True), cached per class and flags; inputs are validated on the host first.
Low precision uses Keras dtype policies (mixed_bfloat16 / mixed_float16: float32 variables).

Shape keys: B batch, S sequence, V vocab_size.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from conformance.adapters.base import Handle, MeshSpec, RunResult
from conformance.adapters.common import PackageClasses, package_version, to_numpy
from conformance.adapters.tf_common import run_cached as tf_run_cached
from conformance.adapters.tf_common import (INPUT_FORMATS, call_arguments, configure_cpu_devices, mirrored_strategy,
                                            replicated_run, tf_device, tf_devices)

import tensorflow  # noqa: E402,F401  (a missing tensorflow must surface as ModuleNotFoundError at import)

configure_cpu_devices()  # the distribution family's CPU meshes, before anything starts TensorFlow's runtime
_STRATEGIES: dict = {}  # (platform, devices) -> MirroredStrategy

_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


class TFAdapter(PackageClasses):
    name = "tf"
    framework = "tf"
    package = "impl_tf"

    # -- description ---------------------------------------------------------------------------
    def version(self) -> str:
        return f"impl_tf (electra-conformance {package_version('electra-conformance')})"

    def framework_versions(self) -> dict[str, str]:
        import tensorflow as tf

        return {"tensorflow": tf.__version__, "keras": tf.keras.__version__}

    def available_devices(self) -> list[str]:
        return tf_devices()

    optional_methods = ("loss_gradients", "call_native", "run_chunks", "run_incremental", "run_cached",
                        "export_serving",
                        "model_class", "method_signature", "save_pretrained_defaults", "run_distributed",
                        "distributed_loss_gradients", "sgd_step", "sgd_step_penalized", "save_distributed")
    layouts = ("data",)  # tf.distribute.MirroredStrategy: replicated variables, the batch split over replicas
    formats = INPUT_FORMATS
    apis = ("documented", "native", "python_lists")  # behaviour.python_lists
    file_formats = ("safetensors", "h5")

    # -- building and weights ------------------------------------------------------------------
    def _device(self, device: str):
        return tf_device(device)

    def _construct(self, build, dtype: str):
        import tensorflow as tf

        previous = tf.keras.config.dtype_policy()
        tf.keras.config.set_dtype_policy(_POLICIES[dtype])
        try:
            return build()
        finally:
            tf.keras.config.set_dtype_policy(previous)

    def build(self, class_name: str, config: dict, *, seed: int = 0, dtype: str = "float32",
              device: str = "cpu") -> Handle:
        import tensorflow as tf

        from impl_tf import ElectraConfig

        cls = self.model_class(class_name)
        tf.keras.utils.set_random_seed(seed)
        with self._device(device):
            model = self._construct(lambda: cls(ElectraConfig.from_dict(dict(config))), dtype)
        return Handle(class_name, model.config.to_dict(), dtype, device, native=model, extra={"compiled": {}})

    def get_weights(self, handle: Handle) -> dict[str, np.ndarray]:
        from impl_tf.weights import canonical_state

        return canonical_state(handle.native)

    def load_weights(self, handle: Handle, state_dict: Mapping[str, np.ndarray]) -> None:
        from impl_tf.weights import assign_canonical_state

        assign_canonical_state(handle.native, state_dict, strict=True)
        handle.extra["compiled"].clear()

    # -- running -------------------------------------------------------------------------------
    def _arguments(self, handle: Handle, inputs: dict, input_format: str):
        """(positional args, keyword args) of the requested input format."""
        return call_arguments(inputs, input_format, self.call_signature(handle.class_name).parameters)

    def _call(self, handle: Handle, args, kwargs, flags: dict, train: bool, compiled: bool, return_dict: bool):
        import tensorflow as tf

        model = handle.native
        if not compiled:
            return model(*args, **kwargs, **flags, training=train, return_dict=return_dict)
        self._validate_on_host(handle, args, kwargs)
        key = (tuple(sorted(flags.items())), train, return_dict)
        fn = handle.extra["compiled"].get(key)
        if fn is None:
            def call(args, kwargs):
                return model(*args, **kwargs, **flags, training=train, return_dict=return_dict)
            fn = handle.extra["compiled"][key] = tf.function(call, jit_compile=True)
        out = fn(args, kwargs)
        if return_dict:  # tf.function rebuilds the output mapping; keep the spec's class
            from electra_core.outputs import output_class

            out = output_class(model.output_class_name)(**dict(out))
        return out

    def _validate_on_host(self, handle: Handle, args, kwargs) -> None:
        """The value checks of an eager call, before the compiled graph (where they are not possible)."""
        model = handle.native
        values = dict(kwargs)
        if args:
            values["input_ids"] = args[0]
        model.resolve_call(values)

    def run(self, handle: Handle, inputs: Mapping[str, Any], *, flags: Mapping[str, Any] | None = None,
            train: bool = False, seed: int | None = None, compiled: bool = False, tuple_form: bool = False,
            input_format: str = "kwargs") -> RunResult:
        import tensorflow as tf

        flags = dict(flags or {})
        flags.pop("return_dict", None)
        args, kwargs = self._arguments(handle, {k: v for k, v in inputs.items() if v is not None}, input_format)
        with self._device(handle.device):
            if train and seed is not None:
                tf.random.set_seed(seed)
            output = self._call(handle, args, kwargs, flags, train, compiled, True)
            tuple_output = None
            if tuple_form:
                if train and seed is not None:
                    tf.random.set_seed(seed)
                tuple_output = self._call(handle, args, kwargs, flags, train, compiled, False)
        fields = {k: to_numpy(v) for k, v in output.items() if v is not None}
        return RunResult(fields=fields, tuple_form=to_numpy(tuple_output) if tuple_form else None,
                         output_class=type(output).__name__)

    def call_native(self, handle: Handle, arguments: Mapping[str, Any]) -> Any:
        """Optional protocol method (base.py): the model called with exactly ``arguments``."""
        with self._device(handle.device):
            return handle.native(**arguments)

    run_cached = tf_run_cached  # optional protocol method (base.py): the rest of the inputs after a cached first call

    def run_incremental(self, handle: Handle, inputs: Mapping[str, Any], prompt_len: int) -> np.ndarray:
        if handle.class_name != "TFElectraForCausalLM":
            raise ValueError(f"run_incremental needs TFElectraForCausalLM, not {handle.class_name}")
        model = handle.native
        ids = np.asarray(inputs["input_ids"])
        mask = np.asarray(inputs.get("attention_mask", np.ones_like(ids)))
        extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask") and v is not None}
        with self._device(handle.device):
            out = model(ids[:, :prompt_len], attention_mask=mask[:, :prompt_len], use_cache=True,
                        **{k: (v[:, :prompt_len] if k in ("token_type_ids", "position_ids") else v)
                           for k, v in extra.items()})
            logits, past = [np.asarray(out.logits)], out.past_key_values
            for t in range(prompt_len, ids.shape[1]):
                step_extra = {k: (v[:, t:t + 1] if k in ("token_type_ids", "position_ids") else v)
                              for k, v in extra.items()}
                out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=past, use_cache=True,
                            **step_extra)
                logits.append(np.asarray(out.logits))
                past = out.past_key_values
        return np.concatenate(logits, axis=1)

    def run_chunks(self, handle: Handle, inputs: Mapping[str, Any], sizes) -> np.ndarray:
        """Optional protocol method: chunks through the returned past_key_values, position_ids omitted."""
        model = handle.native
        ids = np.asarray(inputs["input_ids"])
        mask = np.asarray(inputs.get("attention_mask", np.ones_like(ids)))
        bounds = np.cumsum([0, *sizes])
        past, logits = None, []
        with self._device(handle.device):
            for start, stop in zip(bounds[:-1], bounds[1:]):
                out = model(ids[:, start:stop], attention_mask=mask[:, :stop], past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits.append(np.asarray(out.logits))
        return np.concatenate(logits, axis=1)

    def loss_gradients(self, handle: Handle, inputs: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Optional protocol method (loss.differentiable): the call's loss with labels among ``inputs``
        (training off) and d loss / d weight under canonical names (tf.GradientTape)."""
        import tensorflow as tf

        from impl_tf.weights import canonical_variables

        variables = canonical_variables(handle.native)
        with self._device(handle.device), tf.GradientTape() as tape:
            loss = handle.native(**{k: v for k, v in inputs.items() if v is not None}, training=False,
                                 return_dict=True).loss
        grads = tape.gradient(loss, [v.value for v, _ in variables.values()],  # the tf.Variable of each Keras one
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        out = {}
        for (name, (_, transpose)), grad in zip(variables.items(), grads):
            value = np.asarray(tf.convert_to_tensor(grad).numpy())
            out[name] = np.ascontiguousarray(value.T) if transpose else value
        return np.asarray(loss.numpy()), out

    def save_pretrained_defaults(self, handle: Handle, directory: str) -> None:
        """Optional protocol method: save_pretrained with its defaults."""
        handle.native.save_pretrained(directory)

    # -- files ---------------------------------------------------------------------------------
    def export_serving(self, handle: Handle, directory: str) -> None:
        """Optional protocol method: a SavedModel with impl_tf's serving signature (int32 (B, S) inputs)."""
        import tensorflow as tf

        model = handle.native
        tf.saved_model.save(model, directory, signatures={"serving_default": model.serving_function()})

    def save(self, handle: Handle, directory: str, formats: tuple[str, ...] = ("safetensors",)) -> None:
        unknown = [f for f in formats if f not in ("safetensors", "h5")]
        if unknown:
            raise ValueError(f"impl_tf saves 'safetensors' and 'h5', not {unknown}")
        if len(formats) == 1:  # the documented argument (files.api.save_pretrained); formats= for several files
            handle.native.save_pretrained(directory, safe_serialization=formats[0] == "safetensors")
        else:
            handle.native.save_pretrained(directory, formats=tuple(formats))

    def load(self, class_name: str, directory: str, **kwargs: Any) -> Handle:
        dtype = kwargs.pop("dtype", "float32")
        device = kwargs.pop("device", "cpu")
        cls = self.model_class(class_name)
        with self._device(device):
            model = self._construct(lambda: cls.from_pretrained(directory, **kwargs), dtype)
        return Handle(class_name, model.config.to_dict(), dtype, device, native=model, extra={"compiled": {}})

    # -- distribution (tf.distribute.MirroredStrategy) -----------------------------------------------
    def _replica(self, handle: Handle, strategy):
        """A copy of the model built in ``strategy``'s scope (mirrored variables) with the handle's weights;
        on one device (``strategy`` None) a plain copy."""
        import contextlib

        from impl_tf import ElectraConfig

        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = self.model_class(handle.class_name)(ElectraConfig.from_dict(dict(handle.config)))
            model.set_weights(handle.native.get_weights())
        return model

    def run_distributed(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec, layout: str) -> RunResult:
        """Optional protocol method (distribution.outputs): the model built in the strategy's scope, called
        on every replica with its share of one global batch (tf_common.replicated_run); Keras predict under
        the strategy is tests/test_tf_distribute.py's."""
        strategy = mirrored_strategy(mesh, _STRATEGIES)
        return replicated_run(strategy, self._replica(handle, strategy), handle.class_name, inputs)

    def distributed_loss_gradients(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec,
                                   layout: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Optional protocol method (distribution.loss, distribution.gradients): a custom training loop's
        step as impl_tf documents it: each replica computes the model's loss inside
        impl_tf.losses.replica_shares() (its share of the global-batch mean) and its gradients; the
        strategy sums both over the replicas."""
        import tensorflow as tf

        from impl_tf.losses import replica_shares
        from impl_tf.weights import canonical_variables

        strategy = mirrored_strategy(mesh, _STRATEGIES)
        model = self._replica(handle, strategy)
        arrays = {k: v for k, v in inputs.items() if v is not None}
        batch = len(next(iter(arrays.values())))
        variables = canonical_variables(model)
        dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(arrays).batch(batch))

        def replica_step(features):
            with replica_shares(), tf.GradientTape() as tape:
                loss = model(**features, training=False, return_dict=True).loss
            grads = tape.gradient(loss, [v.value for v, _ in variables.values()],
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return loss, [tf.convert_to_tensor(g) for g in grads]

        per_replica_loss, per_replica_grads = strategy.run(replica_step, args=(next(iter(dataset)),))
        loss = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss, axis=None)
        out = {}
        for (name, (_, transpose)), grad in zip(variables.items(), per_replica_grads):
            value = np.asarray(strategy.reduce(tf.distribute.ReduceOp.SUM, grad, axis=None).numpy())
            out[name] = np.ascontiguousarray(value.T) if transpose else value
        return np.asarray(loss.numpy()), out

    def sgd_step(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec | None, layout: str,
                 learning_rate: float) -> dict[str, np.ndarray]:
        """Optional protocol method (distribution.optimizer_step): compile with SGD and fit one global batch
        (labels among the inputs, as the documented API trains), under the strategy or on one device. Keras'
        compiled train step: an eager one (run_eagerly=True) took 4 s on an idle 2-core machine but 43 s (85 s
        for tf-keras) beside the other suites, against 31 s (49 s) compiled."""
        return self._fit_one_batch(handle, inputs, mesh, learning_rate, penalty=None)

    def sgd_step_penalized(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec | None, layout: str,
                           learning_rate: float, penalty: float) -> dict[str, np.ndarray]:
        """Optional protocol method (distribution.own_losses): sgd_step with a Keras L2 regularizer
        (penalty * sum(w**2)) on the word-embedding table, one of the model's own losses."""
        return self._fit_one_batch(handle, inputs, mesh, learning_rate, penalty=penalty)

    def _fit_one_batch(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec | None,
                       learning_rate: float, penalty: float | None) -> dict[str, np.ndarray]:
        import contextlib

        import tensorflow as tf

        from impl_tf.weights import canonical_state

        strategy = mirrored_strategy(mesh, _STRATEGIES) if mesh is not None else None
        model = self._replica(handle, strategy)
        if penalty is not None:
            model.get_input_embeddings().table.regularizer = tf.keras.regularizers.L2(penalty)
        arrays = {k: v for k, v in inputs.items() if v is not None}
        batch = len(next(iter(arrays.values())))
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate))
        model.fit(tf.data.Dataset.from_tensor_slices(arrays).batch(batch), epochs=1, verbose=0)
        return canonical_state(model)

    def save_distributed(self, handle: Handle, mesh: MeshSpec, layout: str, directory: str) -> None:
        """Optional protocol method (distribution.checkpoint): save_pretrained of the mirrored model."""
        self._replica(handle, mirrored_strategy(mesh, _STRATEGIES)).save_pretrained(directory)
