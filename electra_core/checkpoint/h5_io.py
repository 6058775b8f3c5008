"""tf_model.h5 in the layout transformers' TF save_pretrained writes (Keras 2 ``save_weights`` h5).

Root attrs: ``layer_names`` (top-level layers), ``backend``, ``keras_version``. Each layer group has
attr ``weight_names`` (full TF names, model scope first) and holds each weight at ``<layer>/<TF name>``.
Attributes over HDF5's 64 KiB limit are split as ``weight_names0``, ``weight_names1``, ...
Reading refuses any listed weight whose data is not in the file itself (external storage, virtual
datasets, soft or external links: error.checkpoint.external_storage) before reading data.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from electra_core.checkpoint.errors import CheckpointError, CheckpointStorageError
from electra_core.checkpoint.param_spec import params_data
from electra_core.checkpoint.stored import StoredTensor, read_all

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


def _hard_path(f, parts: list[str], path: Path):
    """The object at ``parts`` below ``f``, every link on the way a hard link (error.checkpoint.external_storage)."""
    import h5py

    node = f
    for i, part in enumerate(parts):
        where = "/".join(parts[:i + 1])
        if part in ("", ".", ".."):
            raise CheckpointError(f"{path}: dataset path {'/'.join(parts)!r} has an empty, '.' or '..' component")
        link = node.get(part, getlink=True)
        if link is None:
            raise CheckpointError(f"{path}: weight_names lists {'/'.join(parts)!r} but the file has no {where!r}")
        if not isinstance(link, h5py.HardLink):
            raise CheckpointStorageError(f"{path}: {where!r} (on the path of dataset {'/'.join(parts)!r}) is a "
                                         f"{type(link).__name__}; expected data stored in the file itself")
        node = node[part]
    return node


def _check_storage(dataset, name: str, path: Path) -> None:
    """Refuse a dataset whose raw data lives outside the file: external storage or a virtual dataset."""
    import h5py

    plist = dataset.id.get_create_plist()
    if plist.get_external_count() > 0:
        files = [plist.get_external(i)[0].decode("utf8", "replace") for i in range(plist.get_external_count())]
        raise CheckpointStorageError(f"{path}: dataset {name!r} uses HDF5 external storage (its data is in "
                                     f"{files}); expected data stored in the file itself")
    if plist.get_layout() == h5py.h5d.VIRTUAL:
        raise CheckpointStorageError(f"{path}: dataset {name!r} is a virtual dataset (its data is mapped from "
                                     f"other datasets or files); expected data stored in the file itself")


def _stored(dataset, name: str, path: Path) -> StoredTensor:
    import h5py

    if not isinstance(dataset, h5py.Dataset):
        raise CheckpointError(f"{path}: {name!r} is a {type(dataset).__name__}, expected a dataset")
    _check_storage(dataset, name, path)

    def read() -> np.ndarray:
        try:
            return np.asarray(dataset[()])
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{path}: dataset {name!r} is unreadable ({type(e).__name__}: {e})") from e

    return StoredTensor(path, name, tuple(int(d) for d in dataset.shape), dataset.dtype, read)


def _describe(f, path: Path) -> dict[str, StoredTensor]:
    layers = _read_names(f, "layer_names")
    if layers is None:
        raise CheckpointError(f"{path}: h5 file has no 'layer_names' attribute; not a TF "
                              f"save_pretrained checkpoint (a Keras 3 .weights.h5 is a different layout)")
    weights: dict[str, StoredTensor] = {}
    for layer in layers:
        group = _hard_path(f, [layer], path)
        for weight_name in _read_names(group, "weight_names") or []:
            if weight_name not in weights:
                parts = [layer, *weight_name.split("/")]
                weights[weight_name] = _stored(_hard_path(f, parts, path), "/".join(parts), path)
    return weights


@contextlib.contextmanager
def open_h5(path: Path) -> Iterator[dict[str, StoredTensor]]:
    """{TF weight name: StoredTensor} of a transformers TF h5 file, readable while the context is open.
    Only metadata is read here; every listed dataset must be stored in the file itself
    (error.checkpoint.external_storage). CheckpointError naming the file otherwise."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable TF h5 checkpoint ({type(e).__name__}: {e})") from e
    with f:
        try:
            weights = _describe(f, path)
        except CheckpointError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{path}: not a readable TF h5 checkpoint ({type(e).__name__}: {e})") from e
        yield weights


def read_h5(path: Path) -> dict[str, np.ndarray]:
    """{TF weight name: array} of a transformers TF h5 file, each dataset bounded by the file's size
    (error.checkpoint.oversized); CheckpointError naming the file otherwise."""
    with open_h5(path) as weights:
        return read_all(weights)


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
