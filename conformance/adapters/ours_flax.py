"""Adapter ``flax``: this project's JAX + Flax linen implementation (impl_flax).

Weights travel under canonical (PyTorch) names through electra_core.checkpoint; ``compiled=True`` runs
through an outer jax.jit over (params, inputs), ``compiled=False`` calls the model as a user does
(its own call validates on the host, then runs one cached jit of module.apply shared by equal modules);
save/load are impl_flax's save_pretrained / from_pretrained.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from conformance.adapters.base import Handle, MeshSpec, RunResult
from conformance.adapters.common import PackageClasses, package_version, to_numpy
from conformance.adapters.flax_common import run_cached as flax_run_cached
from conformance.adapters.flax_common import (call_flax_model, device_mesh, feed_in_chunks, jax_device, jax_devices,
                                              jnp_dtype, load_saved, prompt_then_tokens, split_dimensions)

import jax  # noqa: E402  (a missing jax must surface as ModuleNotFoundError('jax') at import)

LABEL_ARGUMENTS = ("labels", "start_positions", "end_positions")  # Flax heads take no labels (loss.flax_functions)


def _head_loss(handle: Handle, outputs: Mapping[str, Any], inputs: Mapping[str, Any]):
    """impl_flax.losses.<head> of the class on its outputs and the label inputs (a jax scalar)."""
    from impl_flax import losses
    from spec import load_spec

    head = load_spec().classes[handle.class_name].loss
    fn = getattr(losses, head)
    if head == "question_answering":
        return fn(outputs["start_logits"], outputs["end_logits"], inputs["start_positions"], inputs["end_positions"])
    if head == "pretraining":
        return fn(outputs["logits"], inputs["labels"], inputs.get("attention_mask"))
    if head == "sequence_classification":
        return fn(outputs["logits"], inputs["labels"], handle.native.config.problem_type)
    return fn(outputs["logits"], inputs["labels"])


class FlaxAdapter(PackageClasses):
    name = "flax"
    framework = "flax"
    package = "impl_flax"

    # -- description ------------------------------------------------------------------------------
    def version(self) -> str:
        return f"impl_flax (electra-conformance {package_version('electra-conformance')})"

    def framework_versions(self) -> dict[str, str]:
        return {p: package_version(p) for p in ("jax", "jaxlib", "flax", "optax")}

    def available_devices(self) -> list[str]:
        return jax_devices()

    optional_methods = ("loss", "loss_gradients", "call_native", "run_chunks", "run_incremental", "run_cached",
                        "model_class",
                        "method_signature", "save_pretrained_defaults", "run_distributed",
                        "distributed_loss_gradients", "sgd_step", "parameter_layout", "save_distributed")
    apis = ("documented", "native", "python_lists")  # behaviour.python_lists
    file_formats = ("safetensors", "msgpack")
    layouts = ("data", "tensor", "fsdp")  # impl_flax.sharding

    # -- models and weights -----------------------------------------------------------------------
    def _device(self, device: str):
        return jax_device(device)

    def _config(self, config: Mapping[str, Any]):
        from impl_flax import ElectraConfig

        return ElectraConfig.from_dict(dict(config))

    def build(self, class_name: str, config: dict, *, seed: int = 0, dtype: str = "float32",
              device: str = "cpu") -> Handle:
        with self._device(device):
            model = self.model_class(class_name)(self._config(config), seed=seed, dtype=jnp_dtype(dtype))
        return Handle(class_name, model.config.to_dict(), dtype, device, native=model, extra={"jit": {}})

    def get_weights(self, handle: Handle) -> dict[str, np.ndarray]:
        from electra_core.checkpoint import flax_to_pt

        return flax_to_pt(jax.tree_util.tree_map(np.asarray, handle.native.params))

    def load_weights(self, handle: Handle, state_dict: Mapping[str, np.ndarray]) -> None:
        from electra_core.checkpoint import expected_shapes, match_state, pt_to_flax

        model = handle.native
        result = match_state(expected_shapes(handle.class_name, model.config), dict(state_dict))
        if result.missing or result.unexpected:
            raise ValueError(f"{handle.class_name}: state dict does not match the model: missing {result.missing} "
                             f"unexpected {result.unexpected}")
        tree = pt_to_flax({k: np.asarray(v, np.float32) for k, v in result.state.items()})
        with self._device(handle.device):
            model.params = jax.tree_util.tree_map(jax.numpy.asarray, tree)

    # -- running ----------------------------------------------------------------------------------
    def run(self, handle: Handle, inputs: Mapping[str, Any], *, flags: Mapping[str, Any] | None = None,
            train: bool = False, seed: int | None = None, compiled: bool = False, tuple_form: bool = False,
            input_format: str = "kwargs") -> RunResult:
        if input_format not in self.formats:
            raise ValueError(f"Flax models take keyword inputs only; input_format {input_format!r} is not one of "
                             f"{self.formats}")
        flags = {k: v for k, v in (flags or {}).items() if k not in ("return_dict", "use_cache")}
        arrays = {k: v for k, v in inputs.items() if v is not None and k not in LABEL_ARGUMENTS}
        with self._device(handle.device):
            output = call_flax_model(handle, arrays, flags, train, seed, compiled, True)
            as_tuple = call_flax_model(handle, arrays, flags, train, seed, compiled, False) if tuple_form else None
        fields = {k: to_numpy(v) for k, v in output.items()}
        return RunResult(fields=fields, tuple_form=to_numpy(as_tuple) if as_tuple is not None else None,
                         output_class=type(output).__name__)

    def call_native(self, handle: Handle, arguments: Mapping[str, Any]) -> Any:
        """Optional protocol method (base.py): the model called with exactly ``arguments``."""
        from conformance.adapters.base import OWN_PARAMETERS

        model = handle.native
        values = {k: (model.params if isinstance(v, str) and v == OWN_PARAMETERS else v) for k, v in arguments.items()}
        with self._device(handle.device):
            return model(**values)

    def loss(self, handle: Handle, outputs: Mapping[str, Any], inputs: Mapping[str, Any]) -> np.ndarray:
        """Optional protocol method (loss.flax_functions): the class's loss from its outputs (RunResult
        fields) through impl_flax.losses.<head>; ``inputs`` holds the label arguments (labels, or
        start_positions/end_positions) and attention_mask where the loss uses it."""
        return np.asarray(_head_loss(handle, outputs, inputs))

    def loss_gradients(self, handle: Handle, inputs: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Optional protocol method (loss.differentiable): impl_flax.losses' function of the head applied
        to the model's outputs (train off), and its jax.grad with respect to the params under canonical
        names; ``inputs`` holds the call inputs and the label arguments."""
        from electra_core.checkpoint import flax_to_pt

        model = handle.native
        arrays = {k: v for k, v in inputs.items() if v is not None and k not in LABEL_ARGUMENTS}

        def loss_of(params):
            outputs = model(**arrays, params=params, train=False, return_dict=True)
            return _head_loss(handle, outputs, inputs)

        with self._device(handle.device):  # a one-off computation: XLA's unoptimised backend compiles ~3x faster
            compiled = jax.jit(jax.value_and_grad(loss_of)).lower(model.params).compile(
                compiler_options={"xla_backend_optimization_level": 0})
            loss, grads = compiled(model.params)
        return np.asarray(loss), flax_to_pt(jax.tree_util.tree_map(np.asarray, grads))

    run_cached = flax_run_cached  # optional protocol method (base.py): the rest of the inputs after a cached first call

    def run_incremental(self, handle: Handle, inputs: Mapping[str, Any], prompt_len: int) -> np.ndarray:
        sizes = prompt_then_tokens(prompt_len, np.shape(inputs["input_ids"])[1])
        with self._device(handle.device):
            return feed_in_chunks(handle.native, inputs, sizes)

    def run_chunks(self, handle: Handle, inputs: Mapping[str, Any], sizes) -> np.ndarray:
        """Optional protocol method: chunks through init_cache's cache, position_ids omitted."""
        with self._device(handle.device):
            return feed_in_chunks(handle.native, inputs, sizes)

    def save_pretrained_defaults(self, handle: Handle, directory: str) -> None:
        """Optional protocol method: save_pretrained with its defaults."""
        handle.native.save_pretrained(directory)

    # -- files ------------------------------------------------------------------------------------
    def save(self, handle: Handle, directory: str, formats: tuple[str, ...] = ("safetensors",)) -> None:
        unknown = [f for f in formats if f not in ("safetensors", "msgpack")]
        if unknown:
            raise ValueError(f"impl_flax saves 'safetensors' and 'msgpack', not {unknown}")
        if len(formats) == 1:  # the documented argument (files.api.save_pretrained); formats= for several files
            handle.native.save_pretrained(directory, safe_serialization=formats[0] == "safetensors")
        else:
            handle.native.save_pretrained(directory, formats=tuple(formats))

    def load(self, class_name: str, directory: str, **kwargs: Any) -> Handle:
        return load_saved(self.model_class(class_name), class_name, directory, kwargs)

    # -- distribution (impl_flax.sharding) ----------------------------------------------------------
    def _placed(self, handle: Handle, mesh: MeshSpec, layout: str):
        """(jax Mesh, the model's params placed on it as ``layout`` says)."""
        from impl_flax import sharding

        jax_mesh = device_mesh(mesh, sharding.make_mesh)
        return jax_mesh, sharding.shard_params(handle.native.params, jax_mesh, layout)

    def run_distributed(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec, layout: str) -> RunResult:
        """Optional protocol method (distribution.outputs): impl_flax.sharding.sharded_apply."""
        from impl_flax import sharding

        jax_mesh, params = self._placed(handle, mesh, layout)
        arrays = {k: v for k, v in inputs.items() if v is not None and k not in LABEL_ARGUMENTS}
        output = sharding.sharded_apply(handle.native, jax_mesh, layout)(params, **arrays)
        return RunResult(fields={k: to_numpy(v) for k, v in output.items()}, tuple_form=None,
                         output_class=type(output).__name__)

    def distributed_loss_gradients(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec,
                                   layout: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Optional protocol method (distribution.gradients): impl_flax.sharding.sharded_value_and_grad."""
        from electra_core.checkpoint import flax_to_pt
        from impl_flax import sharding

        jax_mesh, params = self._placed(handle, mesh, layout)
        batch = {k: v for k, v in inputs.items() if v is not None}
        loss, grads = sharding.sharded_value_and_grad(handle.native, jax_mesh, layout)(params, batch)
        return np.asarray(loss), flax_to_pt(jax.tree_util.tree_map(np.asarray, grads))

    def sgd_step(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec | None, layout: str,
                 learning_rate: float) -> dict[str, np.ndarray]:
        """Optional protocol method (distribution.optimizer_step): optax.sgd through
        impl_flax.sharding.sharded_train_step; on one device (``mesh`` None) the plain jax.grad step."""
        import optax

        from electra_core.checkpoint import flax_to_pt
        from impl_flax import sharding

        if mesh is None:
            _, grads = self.loss_gradients(handle, inputs)
            weights = self.get_weights(handle)
            return {name: weights[name] - learning_rate * grads[name] for name in weights}
        jax_mesh, params = self._placed(handle, mesh, layout)
        optimizer = optax.sgd(learning_rate)
        batch = {k: v for k, v in inputs.items() if v is not None}
        step = sharding.sharded_train_step(handle.native, optimizer, jax_mesh, layout)
        params, _, _ = step(params, optimizer.init(params), batch)
        return flax_to_pt(jax.tree_util.tree_map(np.asarray, params))

    def parameter_layout(self, handle: Handle, mesh: MeshSpec, layout: str) -> dict[str, int | None]:
        """Optional protocol method (distribution.parameter_layout): the divided dimension of each
        parameter as placed, read off the arrays' own shardings."""
        from electra_core.checkpoint import flax_to_pt

        _, params = self._placed(handle, mesh, layout)
        specs = jax.tree_util.tree_map(lambda leaf: leaf.sharding.spec, params)
        return split_dimensions(params, specs, flax_to_pt)

    def save_distributed(self, handle: Handle, mesh: MeshSpec, layout: str, directory: str) -> None:
        """Optional protocol method (distribution.checkpoint): save_pretrained of the placed params."""
        _, params = self._placed(handle, mesh, layout)
        handle.native.save_pretrained(directory, params=params)
