"""flax_model.msgpack: the flax.serialization msgpack format, implemented with msgpack + numpy.

Byte-compatible with ``flax.serialization.msgpack_serialize`` / ``msgpack_restore``: a tree of dicts
with str keys; arrays are msgpack ext type 1 holding msgpack((shape, dtype name, C-order bytes)),
numpy scalars ext type 3 (same payload), complex scalars ext type 2 (msgpack((real, imag))); dict
keys are written sorted (flax copies the tree with jax.tree_util, which sorts them). Arrays
over 2**30 bytes are stored as {"__msgpack_chunked_array__": True, "shape": {"0": ...},
"chunks": {"0": flat chunk, ...}}.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import msgpack
import numpy as np

from electra_core.checkpoint.errors import CheckpointError

EXT_NDARRAY = 1
EXT_COMPLEX = 2
EXT_NPSCALAR = 3
CHUNK_BYTES = 2**30
CHUNK_MARKER = "__msgpack_chunked_array__"


def _dtype(name: bytes) -> np.dtype:
    if name == b"bfloat16":
        import ml_dtypes  # numpy extension dtypes (a jax dependency); needed only for bfloat16

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name.decode("ascii"))


def _array_payload(array: np.ndarray) -> bytes:
    if array.dtype.hasobject or array.dtype.isalignedstruct:
        raise TypeError(f"cannot serialize an array of dtype {array.dtype}")
    return msgpack.packb((array.shape, array.dtype.name, array.tobytes("C")), use_bin_type=True)


def _array_from_payload(data: bytes) -> np.ndarray:
    shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
    return np.frombuffer(buffer, dtype=_dtype(dtype_name), count=-1, offset=0).reshape(shape, order="C")


def _pack_ext(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return msgpack.ExtType(EXT_NDARRAY, _array_payload(value))
    if isinstance(value, np.generic):
        return msgpack.ExtType(EXT_NPSCALAR, _array_payload(np.asarray(value)))
    if isinstance(value, complex):
        return msgpack.ExtType(EXT_COMPLEX, msgpack.packb((value.real, value.imag)))
    if hasattr(value, "__array__"):  # a framework array (jax, tf) given by the caller
        return msgpack.ExtType(EXT_NDARRAY, _array_payload(np.asarray(value)))
    return value


def _unpack_ext(code: int, data: bytes) -> Any:
    if code == EXT_NDARRAY:
        return _array_from_payload(data)
    if code == EXT_COMPLEX:
        real, imag = msgpack.unpackb(data)
        return complex(real, imag)
    if code == EXT_NPSCALAR:
        return _array_from_payload(data)[()]
    return msgpack.ExtType(code, data)


def _prepare(tree: Any) -> Any:
    """Keys sorted at every level (as flax's tree_map copy leaves them), large arrays chunked."""
    if isinstance(tree, Mapping):
        return {k: _prepare(tree[k]) for k in sorted(tree)}
    array = tree
    if isinstance(array, np.ndarray) and array.size * array.dtype.itemsize > CHUNK_BYTES:
        step = max(1, CHUNK_BYTES // array.dtype.itemsize)
        flat = array.reshape(-1)
        chunks = [flat[i:i + step] for i in range(0, flat.size, step)]
        return {CHUNK_MARKER: True, "shape": {str(i): d for i, d in enumerate(array.shape)},
                "chunks": {str(i): c for i, c in enumerate(chunks)}}
    return tree


def _unchunk(tree: Any) -> Any:
    if not isinstance(tree, dict):
        return tree
    if CHUNK_MARKER in tree:
        shape = tuple(tree["shape"][str(i)] for i in range(len(tree["shape"])))
        chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
        return np.concatenate(chunks).reshape(shape)
    return {k: _unchunk(v) for k, v in tree.items()}


def msgpack_bytes(tree: Mapping) -> bytes:
    """flax.serialization-compatible bytes of a nested dict with array leaves."""
    return msgpack.packb(_prepare(tree), default=_pack_ext, strict_types=True)


def decode_msgpack(data: bytes) -> Any:
    """The tree of flax.serialization msgpack bytes (arrays are read-only views of ``data``)."""
    return _unchunk(msgpack.unpackb(data, ext_hook=_unpack_ext, raw=False, strict_map_key=False))


def read_msgpack(path: Path) -> dict:
    """Param tree of a flax_model.msgpack file; CheckpointError naming the file if it is not one."""
    data = Path(path).read_bytes()
    try:
        tree = decode_msgpack(data)
    except Exception as e:  # msgpack raises many unrelated types for damaged input
        raise CheckpointError(f"{path}: not a readable flax msgpack file ({type(e).__name__}: {e})") from e
    if not isinstance(tree, dict) or not tree:
        raise CheckpointError(f"{path}: a flax msgpack checkpoint must hold a non-empty dict of parameters, "
                              f"got {type(tree).__name__}")
    _check_leaves(tree, path, ())
    return tree


def _check_leaves(tree: dict, path: Path, where: tuple) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _check_leaves(value, path, (*where, key))
        elif not isinstance(value, np.ndarray):
            raise CheckpointError(f"{path}: parameter {'/'.join(map(str, (*where, key)))} is a "
                                  f"{type(value).__name__}, expected an array")
