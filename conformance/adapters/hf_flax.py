"""Adapter ``hf-flax``: transformers' own FlaxElectra* classes (needs the ``hf`` and ``flax`` extras).

Weights travel under canonical (PyTorch) names through electra_core.checkpoint's Flax mapping; compiled
runs go through jax.jit; save/load are transformers' save_pretrained / from_pretrained.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from conformance.adapters.base import Handle, MeshSpec
from conformance.adapters.flax_common import run_cached as flax_run_cached
from conformance.adapters.flax_common import (batch_placed, call_flax_model, device_mesh, feed_in_chunks, jax_device,
                                              jax_devices, jnp_dtype, load_saved, placed_generic, plain_mesh,
                                              prompt_then_tokens)
from conformance.adapters.hf_common import HFAdapterBase, check_state_dict, package_version

import jax  # noqa: E402  (a missing jax must surface as ModuleNotFoundError('jax') at import)
import transformers  # noqa: E402,F401


class HFFlaxAdapter(HFAdapterBase):
    name = "hf-flax"
    framework = "flax"
    optional_methods = ("run_cached", "call_native", "run_chunks", "run_incremental", "model_class", "method_signature",
                        "save_pretrained_defaults", "run_distributed", "save_distributed")
    #: transformers' Flax models are pure functions of their params, so jax.jit partitions them for any
    #: placement of params and inputs; transformers has no partition rules for ELECTRA (no "tensor"), and its
    #: Flax classes compute no loss (no loss, gradients or optimizer step to compare)
    layouts = ("data", "fsdp")
    file_formats = ("safetensors", "msgpack")

    def framework_versions(self) -> dict[str, str]:
        return {p: package_version(p) for p in ("transformers", "jax", "jaxlib", "flax", "safetensors", "numpy")}

    def available_devices(self) -> list[str]:
        return jax_devices()

    def _device(self, device: str):
        return jax_device(device)

    def build(self, class_name: str, config: dict, *, seed: int = 0, dtype: str = "float32",
              device: str = "cpu") -> Handle:
        with self._device(device):
            model = self.model_class(class_name)(self.hf_config(config), seed=seed, dtype=jnp_dtype(dtype))
        return Handle(class_name, dict(config), dtype, device, native=model, extra={"jit": {}})

    def get_weights(self, handle: Handle) -> dict[str, np.ndarray]:
        from electra_core.checkpoint import flax_to_pt

        params = jax.tree_util.tree_map(np.asarray, handle.native.params)
        return flax_to_pt(params)

    def load_weights(self, handle: Handle, state_dict: Mapping[str, np.ndarray]) -> None:
        from electra_core.checkpoint import pt_to_flax

        state = check_state_dict(self.expected_shapes(handle), state_dict, handle.class_name)
        tree = pt_to_flax({k: np.asarray(v, dtype=np.float32) for k, v in state.items()})
        handle.native.params = jax.tree_util.tree_map(jax.numpy.asarray, tree)

    def run(self, handle: Handle, inputs: Mapping[str, Any], *, flags: Mapping[str, Any] | None = None,
            train: bool = False, seed: int | None = None, compiled: bool = False, tuple_form: bool = False,
            input_format: str = "kwargs"):
        if input_format != "kwargs":
            raise ValueError(f"Flax models take keyword inputs only; input_format {input_format!r} is not one "
                             f"of {self.formats}")
        flags = dict(flags or {})
        flags.pop("return_dict", None)
        arrays = {k: v for k, v in inputs.items() if v is not None}
        with self._device(handle.device):
            output = call_flax_model(handle, arrays, flags, train, seed, compiled, True)
            tuple_output = call_flax_model(handle, arrays, flags, train, seed, compiled, False) if tuple_form else None
        return self.run_result(output, tuple_output)

    run_cached = flax_run_cached  # optional protocol method (base.py): the rest of the inputs after a cached first call

    def run_incremental(self, handle: Handle, inputs: Mapping[str, Any], prompt_len: int) -> np.ndarray:
        sizes = prompt_then_tokens(prompt_len, np.shape(inputs["input_ids"])[1])
        with self._device(handle.device):
            return feed_in_chunks(handle.native, inputs, sizes, explicit_positions=True)

    def run_chunks(self, handle: Handle, inputs: Mapping[str, Any], sizes) -> np.ndarray:
        """Optional protocol method: chunks through init_cache's cache; position_ids passed explicitly,
        as transformers' default ignores the cache (decision.flax_position_ids_with_cache)."""
        with self._device(handle.device):
            return feed_in_chunks(handle.native, inputs, sizes, explicit_positions=True)

    def save_pretrained_defaults(self, handle: Handle, directory: str) -> None:
        """Optional protocol method: save_pretrained with its defaults."""
        handle.native.save_pretrained(directory)

    def save(self, handle: Handle, directory: str, formats: tuple[str, ...] = ("safetensors",)) -> None:
        for fmt in formats:
            if fmt not in ("safetensors", "msgpack"):
                raise ValueError(f"transformers' Flax classes save 'safetensors' or 'msgpack', not {fmt!r}")
            handle.native.save_pretrained(directory, params=handle.native.params,
                                          safe_serialization=(fmt == "safetensors"))

    def load(self, class_name: str, directory: str, **kwargs: Any) -> Handle:
        return load_saved(self.model_class(class_name), class_name, directory, kwargs)

    # -- distribution: jax.jit over params and inputs placed on the mesh --------------------------------
    def _placed(self, handle: Handle, mesh: MeshSpec, layout: str):
        jax_mesh = device_mesh(mesh, plain_mesh)
        return jax_mesh, placed_generic(handle.native.params, jax_mesh, layout)

    def run_distributed(self, handle: Handle, inputs: Mapping[str, Any], mesh: MeshSpec, layout: str):
        """Optional protocol method (distribution.outputs): the model's __call__ under jax.jit with the
        batch divided over "data" and the params placed by ``layout``; outputs gathered."""
        from jax.sharding import NamedSharding, PartitionSpec

        jax_mesh, params = self._placed(handle, mesh, layout)
        arrays = batch_placed({k: v for k, v in inputs.items() if v is not None}, jax_mesh)
        model = handle.native
        call = jax.jit(lambda params, arrays: model(**arrays, params=params, train=False),
                       out_shardings=NamedSharding(jax_mesh, PartitionSpec()))
        return self.run_result(call(params, arrays))

    def save_distributed(self, handle: Handle, mesh: MeshSpec, layout: str, directory: str) -> None:
        """Optional protocol method (distribution.checkpoint): save_pretrained of the placed params."""
        _, params = self._placed(handle, mesh, layout)
        handle.native.save_pretrained(directory, params=params)
