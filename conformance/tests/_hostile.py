"""Builders of hostile checkpoint files (not a test module): h5 datasets whose data lives outside the
file, decompression bombs, shard indexes that point outside their folder, msgpack arrays that declare
more than they hold, weights with NaN/inf. Each starts from a valid checkpoint file and changes one
parameter, so a loader that does not refuse it loads a model (and the test sees the difference)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import msgpack
import numpy as np

from electra_core.checkpoint import h5_io, msgpack_io, pt_to_flax, pt_to_tf
from electra_core.checkpoint.param_spec import params_data

#: the parameter the builders replace (every class has it; its shape is (V, E))
TARGET = "word_embeddings"
#: the kinds of h5 dataset whose data is not stored in the file itself
H5_OUTSIDE = ("external_storage", "virtual_dataset", "soft_link", "external_link")


def file_name(key: str) -> str:
    """The spec's name of a checkpoint file (params.yaml files: safetensors, msgpack, h5, ...)."""
    return params_data()["files"][key]


# -- tf_model.h5 ----------------------------------------------------------------------------------
def write_h5(directory: Path, state: dict, scope: str) -> Path:
    """tf_model.h5 of a canonical state under TF model scope ``scope``; removes model.safetensors so
    that the h5 file is the one TF loaders read."""
    path = directory / file_name("h5")
    h5_io.write_h5(path, pt_to_tf(state, scope))
    (directory / file_name("safetensors")).unlink(missing_ok=True)
    return path


def h5_dataset(f, word: str = TARGET) -> tuple[str, object]:
    """(path in the file, dataset) of the first weight whose path contains ``word``."""
    import h5py

    found = []
    f.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) and word in name
                 else None)
    if not found:
        raise LookupError(f"no dataset with {word!r} in {f.filename}")
    return found[0]


def _replace(f, name: str, make) -> None:
    """Delete dataset ``name`` and let ``make(parent group, leaf name)`` create its replacement."""
    parent, leaf = name.rsplit("/", 1)
    del f[name]
    make(f[parent], leaf)


def make_h5_outside(path: Path, kind: str, elsewhere: Path) -> str:
    """Replace the TARGET dataset of ``path`` by one whose data is not in the file: HDF5 external storage
    reading ``elsewhere`` (a raw file of the right size, written here), a virtual dataset or an external
    link into ``elsewhere`` (an h5 file written here), or a soft link to a copy elsewhere in the file.
    Returns the dataset's path in the file."""
    import h5py

    with h5py.File(path, "r+") as f:
        name, dataset = h5_dataset(f)
        value = np.asarray(dataset[()])
        if kind == "external_storage":
            elsewhere.write_bytes(np.full(value.shape, 7.0, value.dtype).tobytes())
            _replace(f, name, lambda g, leaf: g.create_dataset(
                leaf, shape=value.shape, dtype=value.dtype, external=[(str(elsewhere), 0, value.nbytes)]))
        elif kind in ("virtual_dataset", "external_link"):
            with h5py.File(elsewhere, "w") as other:
                other.create_dataset("data", data=np.full_like(value, 7.0))
            if kind == "virtual_dataset":
                layout = h5py.VirtualLayout(shape=value.shape, dtype=value.dtype)
                layout[...] = h5py.VirtualSource(str(elsewhere), "data", shape=value.shape)
                _replace(f, name, lambda g, leaf: g.create_virtual_dataset(leaf, layout))
            else:
                _replace(f, name, lambda g, leaf: g.__setitem__(leaf, h5py.ExternalLink(str(elsewhere), "data")))
        elif kind == "soft_link":
            f.create_dataset("stash", data=np.full_like(value, 7.0))
            _replace(f, name, lambda g, leaf: g.__setitem__(leaf, h5py.SoftLink("/stash")))
        else:
            raise ValueError(f"unknown kind {kind!r}; expected one of {H5_OUTSIDE}")
    return name


def make_h5_bomb(path: Path, shape: tuple[int, ...], word: str = TARGET) -> str:
    """Replace the first dataset whose path contains ``word`` by a gzip-compressed float32 dataset of
    ``shape`` (a few KB on disk however large ``shape`` is). Returns its path in the file."""
    import h5py

    with h5py.File(path, "r+") as f:
        name, _ = h5_dataset(f, word)
        chunks = tuple(min(d, 1024) for d in shape)

        def make(group, leaf):
            bomb = group.create_dataset(leaf, shape=shape, dtype=np.float32, chunks=chunks, compression="gzip",
                                        fillvalue=0.0)
            bomb[tuple(slice(0, c) for c in chunks)] = np.zeros(chunks, np.float32)  # one real compressed chunk

        _replace(f, name, make)
    return name


# -- model.safetensors.index.json -------------------------------------------------------------------
def shard_index(directory: Path, entry: str) -> Path:
    """Remove model.safetensors and write an index mapping each of its tensors to shard ``entry``."""
    from safetensors.numpy import load_file

    single = directory / file_name("safetensors")
    names = sorted(load_file(single))
    single.unlink()
    index = directory / file_name("safetensors_index")
    index.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": {n: entry for n in names}}))
    return index


def outside_copy(directory: Path, outside: Path) -> Path:
    """A valid model.safetensors (the checkpoint's own) in the folder ``outside``."""
    outside.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(directory / file_name("safetensors"), outside / file_name("safetensors")))


def make_traversal(directory: Path, kind: str, outside: Path) -> str:
    """A sharded checkpoint in ``directory`` whose only shard is the valid file outside_copy put in
    ``outside``, reached by a relative '..' path, an absolute path, or a symlink inside the folder.
    Returns the weight_map entry."""
    target = outside_copy(directory, outside)
    if kind == "relative":
        entry = os.path.relpath(target, directory)
    elif kind == "absolute":
        entry = str(target.resolve())
    elif kind == "symlink":
        entry = "model-00001-of-00001.safetensors"
        (directory / entry).symlink_to(target.resolve())
    else:
        raise ValueError(f"unknown kind {kind!r}; expected relative, absolute or symlink")
    shard_index(directory, entry)
    return entry


# -- flax_model.msgpack -------------------------------------------------------------------------------
def write_msgpack(directory: Path, state: dict) -> Path:
    path = directory / file_name("msgpack")
    path.write_bytes(msgpack_io.msgpack_bytes(pt_to_flax(state)))
    return path


def _declaring(shape: tuple[int, ...], data: bytes) -> msgpack.ExtType:
    """An ndarray ext value (flax's format) that declares float32 ``shape`` and holds ``data``."""
    payload = msgpack.packb((list(shape), "float32", data), use_bin_type=True)
    return msgpack.ExtType(msgpack_io.EXT_NDARRAY, payload)


def make_msgpack_bomb(path: Path, shape: tuple[int, ...]) -> str:
    """Rewrite flax_model.msgpack with the TARGET leaf declaring ``shape`` float32 while holding 16 bytes.
    Returns the leaf's path in the tree."""
    tree = msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)
    where = _find_leaf(tree, ())
    node = tree
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = _declaring(shape, bytes(16))
    path.write_bytes(msgpack.packb(tree, use_bin_type=True))
    return "/".join(where)


def _find_leaf(tree: dict, where: tuple) -> tuple:
    for key, value in tree.items():
        if isinstance(value, dict):
            found = _find_leaf(value, (*where, key))
            if found:
                return found
        elif TARGET in "/".join((*where, key)):
            return (*where, key)
    return ()


# -- non-finite weights -------------------------------------------------------------------------------
def with_non_finite(state: dict, words: tuple[str, str]) -> tuple[dict, tuple[str, str]]:
    """A copy of ``state`` with a NaN in the first parameter containing words[0] and an inf in the first
    containing words[1]; returns it and the two parameter names."""
    state = {k: np.array(v) for k, v in state.items()}
    nan_name = next(n for n in sorted(state) if words[0] in n)
    inf_name = next(n for n in sorted(state) if words[1] in n and n != nan_name)
    state[nan_name].flat[0] = np.nan
    state[inf_name].flat[-1] = np.inf
    return state, (nan_name, inf_name)
