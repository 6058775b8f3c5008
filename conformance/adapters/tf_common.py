"""What the two TF adapters (ours and transformers') share: devices, and the four input formats of a
Keras model call (clause behaviour.tf.input_formats)."""
from __future__ import annotations

from typing import Any, Sequence

#: kwargs (keyword arguments), tensor (input_ids alone, positionally), list (one list in call signature
#: order), dict (one dict as the first positional argument)
INPUT_FORMATS = ("kwargs", "tensor", "list", "dict")


def tf_devices() -> list[str]:
    import tensorflow as tf

    kinds = {d.device_type.lower() for d in tf.config.list_logical_devices()}
    return [d for d in ("cpu", "gpu", "tpu") if d in kinds]


def tf_device(device: str):
    import tensorflow as tf

    return tf.device(f"/{device.upper()}:0")


def call_arguments(inputs: dict[str, Any], input_format: str, parameter_names: Sequence[str], *,
                   name_input_ids: bool = False) -> tuple[tuple, dict]:
    """(positional args, keyword args) carrying ``inputs`` in ``input_format``. ``parameter_names``: the
    call signature's order, for the list format (omitted inputs in between are None).
    ``name_input_ids``: the kwargs format passes input_ids=None when it is absent (tf-keras wants the
    first call argument by name)."""
    if input_format == "kwargs":
        return (), ({"input_ids": None, **inputs} if name_input_ids else dict(inputs))
    if input_format == "dict":
        return (dict(inputs),), {}
    if input_format == "tensor":
        if set(inputs) != {"input_ids"}:
            raise ValueError(f"input_format 'tensor' carries input_ids only, got {sorted(inputs)}")
        return (inputs["input_ids"],), {}
    if input_format == "list":
        names = list(parameter_names)
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise ValueError(f"inputs {unknown} are not call arguments ({names})")
        last = max(names.index(n) for n in inputs)
        return ([inputs.get(n) for n in names[:last + 1]],), {}
    raise ValueError(f"unknown input_format {input_format!r}; expected one of {INPUT_FORMATS}")


def configure_cpu_devices() -> None:
    """N logical CPU devices for the distribution family's CPU meshes, N from ELECTRA_CPU_DEVICES
    (conformance.devices.prepare_process); before TensorFlow initialises its devices, else nothing."""
    import os

    import tensorflow as tf

    from conformance.devices import CPU_DEVICES_VARIABLE

    count = int(os.environ.get(CPU_DEVICES_VARIABLE, "0") or 0)
    cpus = tf.config.list_physical_devices("CPU")
    if count < 2 or not cpus or tf.config.get_logical_device_configuration(cpus[0]):
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # the runtime has started: the process keeps its one CPU device
        pass


def mirrored_strategy(mesh_spec, cache: dict):
    """A MirroredStrategy over the first ``mesh_spec.devices`` logical devices of its platform (one per
    device count, cached in ``cache``: two collective-ops strategies of different sizes in one process
    clash, so every size reduces through one device); MeshUnavailable when the process has fewer."""
    import tensorflow as tf

    from conformance.adapters.base import MeshUnavailable

    found = tf.config.list_logical_devices(mesh_spec.platform.upper())
    if len(found) < mesh_spec.devices:
        raise MeshUnavailable(f"mesh {mesh_spec.id} needs {mesh_spec.devices} logical {mesh_spec.platform} devices; "
                              f"TensorFlow has {len(found)} (--devices {mesh_spec.platform}:{mesh_spec.devices} "
                              f"sets up CPU ones before TensorFlow starts)")
    if mesh_spec.model != 1:
        raise ValueError(f"tf.distribute.MirroredStrategy replicates the model: no model axis (mesh {mesh_spec.id})")
    key = (mesh_spec.platform, mesh_spec.devices)
    if key not in cache:
        cache[key] = tf.distribute.MirroredStrategy([d.name for d in found[:mesh_spec.devices]],
                                                    cross_device_ops=tf.distribute.ReductionToOneDevice())
    return cache[key]


def replicated_run(strategy, model, class_name: str, inputs: dict):
    """A RunResult of ``model`` (built in ``strategy``'s scope) called, training off, on every replica of
    ``strategy`` (strategy.run) with its share of the global batch ``inputs`` as
    strategy.experimental_distribute_dataset splits it; each field gathered back along the batch axis.
    (Keras predict does the same, but on a busy 2-core machine its distributed input pipeline stalled for
    minutes with 8 replicas: 205 s against 6 s on an idle one.)"""
    import tensorflow as tf

    from conformance.adapters.base import RunResult
    from conformance.adapters.common import to_numpy
    from spec import load_spec

    arrays = {k: v for k, v in inputs.items() if v is not None}
    batch = len(next(iter(arrays.values())))
    dataset = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(arrays).batch(batch))

    def replica(features):
        output = model(**features, training=False, return_dict=True)
        return {k: v for k, v in dict(output).items() if v is not None}

    per_replica = strategy.run(replica, args=(next(iter(dataset)),))
    return RunResult(fields={k: to_numpy(strategy.gather(v, axis=0)) for k, v in per_replica.items()},
                     tuple_form=None, output_class=load_spec().classes[class_name].output_class)


def run_cached(adapter, handle, inputs: dict, prefix_len: int, *, flags=None, tuple_form: bool = False):
    """Protocol method ``run_cached`` of the TF adapters (base.py; bound as their method): the first call
    with use_cache=True, then ``adapter.run`` on the rest with that call's past_key_values."""
    from conformance.adapters.common import split_for_cache

    first, second = split_for_cache(dict(inputs), prefix_len, mask_over_cache=False)
    with tf_device(handle.device):
        past = handle.native(**first, use_cache=True, training=False).past_key_values
    return adapter.run(handle, {**second, "past_key_values": past}, flags=flags, tuple_form=tuple_form)
