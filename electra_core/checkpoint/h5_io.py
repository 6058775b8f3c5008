"""tf_model.h5 in the layout transformers' TF save_pretrained writes (Keras 2 ``save_weights`` h5).

Root attrs: ``layer_names`` (top-level layers), ``backend``, ``keras_version``. Each layer group has
attr ``weight_names`` (full TF names, model scope first) and holds each weight at ``<layer>/<TF name>``.
Attributes over HDF5's 64 KiB limit are split as ``weight_names0``, ``weight_names1``, ...
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from electra_core.checkpoint.errors import CheckpointError
from electra_core.checkpoint.param_spec import params_data

_ATTR_LIMIT = 64512


def _read_names(group, name: str) -> list[str] | None:
    if name in group.attrs:
        values = list(group.attrs[name])
    elif f"{name}0" in group.attrs:
        values, k = [], 0
        while f"{name}{k}" in group.attrs:
            values.extend(group.attrs[f"{name}{k}"])
            k += 1
    else:
        return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _write_names(group, name: str, values: list[str]) -> None:
    import h5py

    if not values:
        group.attrs[name] = np.asarray([])
        return
    encoded = np.array(values, dtype=h5py.string_dtype())
    size = sum(len(v.encode("utf8")) for v in values)
    if size <= _ATTR_LIMIT:
        group.attrs[name] = encoded
        return
    pieces = int(np.ceil(size / _ATTR_LIMIT)) + 1
    for k, part in enumerate(np.array_split(encoded, pieces)):
        group.attrs[f"{name}{k}"] = part


def read_h5(path: Path) -> dict[str, np.ndarray]:
    """{TF weight name: array} of a transformers TF h5 file; CheckpointError naming the file otherwise."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            layers = _read_names(f, "layer_names")
            if layers is None:
                raise CheckpointError(f"{path}: h5 file has no 'layer_names' attribute; not a TF "
                                      f"save_pretrained checkpoint (a Keras 3 .weights.h5 is a different layout)")
            weights: dict[str, np.ndarray] = {}
            for layer in layers:
                group = f[layer]
                for weight_name in _read_names(group, "weight_names") or []:
                    if weight_name not in weights:
                        weights[weight_name] = np.asarray(group[weight_name])
    except CheckpointError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: not a readable TF h5 checkpoint ({type(e).__name__}: {e})") from e
    return weights


def _layer_of(tf_name: str) -> str:
    """Top-level layer of a scoped TF name: the component after the model scope."""
    parts = tf_name.split("/")
    if len(parts) < 3:
        raise ValueError(f"TF weight name {tf_name!r} lacks a model scope and a layer (scope/layer/.../leaf:0)")
    return parts[1]


def write_h5(path: Path, weights: Mapping[str, np.ndarray]) -> None:
    """Write {scoped TF weight name: array} in transformers' TF h5 layout (see module docstring)."""
    import h5py

    naming = params_data()["naming"]
    layers: dict[str, list[str]] = {}
    for tf_name in weights:
        layers.setdefault(_layer_of(tf_name), []).append(tf_name)
    for layer, shared_prefixes in naming["h5_layer_shares"].items():
        if layer in layers:
            shared = [n for n in weights if _layer_of(n) != layer
                      and any(n.split("/", 1)[1].startswith(p) for p in shared_prefixes)]
            layers[layer].extend(shared)
    with h5py.File(path, "w") as f:
        for key, value in naming["h5_root_attrs"].items():
            f.attrs[key] = value
        _write_names(f, "layer_names", list(layers))
        for layer, names in layers.items():
            group = f.create_group(layer)
            _write_names(group, "weight_names", names)
            for tf_name in names:
                group.create_dataset(tf_name, data=np.asarray(weights[tf_name]))
        _write_names(f.create_group("top_level_model_weights"), "weight_names", [])
