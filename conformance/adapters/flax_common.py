"""What the two Flax adapters (ours and transformers') share: devices and dtypes, calling a Flax model
eagerly or under an outer jax.jit cached per (flags, train, return_dict) in ``handle.extra["jit"]``,
decoding in chunks through a key/value cache, and loading a saved model.

Shape keys: B batch, S sequence, V vocab."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import numpy as np

from conformance.adapters.base import Handle
from conformance.adapters.common import spec_dtypes, split_for_cache


def jax_devices() -> list[str]:
    """The platforms among cpu, gpu and tpu that jax has devices for."""
    found = []
    for platform in ("cpu", "gpu", "tpu"):
        try:
            if jax.devices(platform):
                found.append(platform)
        except RuntimeError:
            pass
    return found


def call_flax_model(handle: Handle, arrays: dict, flags: dict, train: bool, seed: int | None, compiled: bool,
                    return_dict: bool):
    """Call ``handle.native`` with ``arrays`` as keyword inputs; a dropout rng from ``seed`` when training."""
    model = handle.native
    rng = jax.random.PRNGKey(0 if seed is None else seed) if train else None

    def call(params, arrays, rng):
        return model(**arrays, params=params, dropout_rng=rng, train=train, return_dict=return_dict, **flags)

    if not compiled:
        return call(model.params, arrays, rng)
    key = (tuple(sorted(flags.items())), train, return_dict)
    jitted = handle.extra.setdefault("jit", {}).get(key)
    if jitted is None:
        jitted = handle.extra["jit"][key] = jax.jit(call)
    return jitted(model.params, arrays, rng)


def jax_device(device: str):
    """A context making the first ``device`` (cpu, gpu, tpu) jax's default."""
    return jax.default_device(jax.devices(device)[0])


def jnp_dtype(dtype: str):
    import jax.numpy as jnp

    if dtype not in spec_dtypes():
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {spec_dtypes()}")
    return getattr(jnp, dtype)


def feed_in_chunks(model, inputs: Mapping[str, Any], sizes: Sequence[int], explicit_positions: bool = False):
    """Logits (B, S, V) of a Flax causal LM fed inputs["input_ids"] (B, S) in consecutive chunks of
    ``sizes`` tokens through the cache of ``init_cache(B, S)``, with the attention mask over all S
    positions. Given token_type_ids and position_ids are sliced per chunk; ``explicit_positions``
    passes arange(S) positions when none are given (else the model's default is used)."""
    ids = np.asarray(inputs["input_ids"])
    mask = np.asarray(inputs.get("attention_mask", np.ones_like(ids)))
    per_token = {k: np.asarray(inputs[k]) for k in ("token_type_ids", "position_ids") if inputs.get(k) is not None}
    if explicit_positions and "position_ids" not in per_token:
        per_token["position_ids"] = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
    bounds = np.cumsum([0, *sizes])
    cache, logits = model.init_cache(*ids.shape), []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        out = model(ids[:, start:stop], attention_mask=mask, past_key_values=cache,
                    **{k: v[:, start:stop] for k, v in per_token.items()})
        cache = out.past_key_values
        logits.append(np.asarray(out.logits))
    return np.concatenate(logits, axis=1)


def run_cached(adapter, handle: Handle, inputs: Mapping[str, Any], prefix_len: int, *, flags=None,
               tuple_form: bool = False):
    """Protocol method ``run_cached`` of the Flax adapters (base.py; bound as their method): init_cache(B, S),
    the first call through it (none for ``prefix_len`` 0), then ``adapter.run`` on the rest with that call's
    past_key_values; the attention mask, when given, covers all S positions in both calls (the cache's length)."""
    first, second = split_for_cache(dict(inputs), prefix_len, mask_over_cache=True)
    model = handle.native
    batch, seq = np.shape(inputs["input_ids"] if "input_ids" in inputs else inputs["inputs_embeds"])[:2]
    with jax_device(handle.device):
        past = model.init_cache(batch, seq)
        if prefix_len:
            past = model(**first, past_key_values=past).past_key_values
    return adapter.run(handle, {**second, "past_key_values": past}, flags=flags, tuple_form=tuple_form)


def prompt_then_tokens(prompt_len: int, seq: int) -> list[int]:
    """Chunk sizes of incremental decoding: the prompt in one call, then one token per call."""
    return [prompt_len] + [1] * (seq - prompt_len)


def load_saved(model_class, class_name: str, directory: str, kwargs: dict[str, Any]) -> Handle:
    """``model_class.from_pretrained(directory, ...)`` on the requested device and dtype (kwargs "device",
    "dtype"; the rest go to from_pretrained) as a Handle."""
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", "float32")
    device = kwargs.pop("device", "cpu")
    with jax_device(device):
        model = model_class.from_pretrained(directory, dtype=jnp_dtype(dtype), **kwargs)
    return Handle(class_name, model.config.to_dict(), dtype, device, native=model, extra={"jit": {}})


# -- distribution (family distribution): shared by the Flax adapters --------------------------------------
def device_mesh(mesh_spec, make_mesh):
    """A jax Mesh over the first ``mesh_spec.devices`` devices of its platform, built by ``make_mesh(devices,
    data, model)``; ValueError naming the platform when the process has fewer devices."""
    from conformance.adapters.base import MeshUnavailable

    try:
        found = jax.devices(mesh_spec.platform)
    except RuntimeError:  # no backend for the platform
        found = []
    if len(found) < mesh_spec.devices:
        raise MeshUnavailable(f"mesh {mesh_spec.id} needs {mesh_spec.devices} {mesh_spec.platform} devices; this "
                              f"process has {len(found)} (--devices {mesh_spec.platform}:{mesh_spec.devices} sets up "
                              f"CPU ones before JAX starts)")
    return make_mesh(found[:mesh_spec.devices], mesh_spec.data, mesh_spec.model)


def split_dimensions(params, partition_specs, to_canonical) -> dict[str, int | None]:
    """{canonical name: the canonical dimension a parameter is divided along, None if held whole}, from a
    tree of PartitionSpecs matching ``params``: each leaf is marked by an array that varies along its
    divided axis only, converted to canonical names and layouts by ``to_canonical`` (the adapter's own
    flax -> canonical converter, transposes included), and the varying axis is read back."""
    def mark(leaf, spec):
        shape = np.shape(leaf)
        divided = [axis for axis, names in enumerate(tuple(spec)) if names is not None]
        if not divided:
            return np.zeros(shape, np.float32)
        axis = divided[0]
        ramp = np.arange(shape[axis], dtype=np.float32).reshape([-1 if a == axis else 1 for a in range(len(shape))])
        return np.broadcast_to(ramp, shape).copy()

    def varying(array) -> int | None:
        for axis in range(array.ndim):
            if array.shape[axis] > 1 and not np.all(array == np.take(array, [0], axis=axis)):
                return axis
        return None

    marks = jax.tree_util.tree_map(mark, params, partition_specs,
                                   is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
    return {name: varying(np.asarray(array)) for name, array in to_canonical(marks).items()}


def plain_mesh(devices, data: int, model: int):
    """A jax Mesh of ``devices`` shaped (data, model) with the axis names the distribution family uses."""
    return jax.sharding.Mesh(np.asarray(devices).reshape(data, model), ("data", "model"))


def placed_generic(params, jax_mesh, layout: str):
    """``params`` placed for a layout that needs no knowledge of the model: "data" replicates every leaf,
    "fsdp" divides every leaf over "data" along its first dimension the axis size divides (replicated
    when none does). A model-specific layout ("tensor") is the implementation's to offer."""
    from jax.sharding import NamedSharding, PartitionSpec

    data = jax_mesh.shape["data"]

    def spec(leaf):
        if layout == "data":
            return PartitionSpec()
        if layout != "fsdp":
            raise ValueError(f"layout {layout!r} needs the implementation's own partition rules; this placement "
                             f"offers 'data' and 'fsdp'")
        shape = np.shape(leaf)
        dims = [d for d, size in enumerate(shape) if size % data == 0]
        return PartitionSpec(*([None] * dims[0] + ["data"])) if dims else PartitionSpec()

    return jax.tree_util.tree_map(lambda leaf: jax.device_put(leaf, NamedSharding(jax_mesh, spec(leaf))), params)


def batch_placed(arrays: Mapping[str, Any], jax_mesh) -> dict:
    """Every input divided over "data" along its batch axis (jax raises ValueError naming the batch size
    and the axis size when the axis does not divide it)."""
    from jax.sharding import NamedSharding, PartitionSpec

    sharding = NamedSharding(jax_mesh, PartitionSpec("data"))
    return {k: jax.device_put(np.asarray(v), sharding) for k, v in arrays.items()}
