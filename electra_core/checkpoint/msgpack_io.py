"""flax_model.msgpack: the flax.serialization msgpack format, implemented with msgpack + numpy.

Byte-compatible with ``flax.serialization.msgpack_serialize`` / ``msgpack_restore``: a tree of dicts
with str keys; arrays are msgpack ext type 1 holding msgpack((shape, dtype name, C-order bytes)),
numpy scalars ext type 3 (same payload), complex scalars ext type 2 (msgpack((real, imag))); dict
keys are written sorted (flax copies the tree with jax.tree_util, which sorts them). Arrays
over 2**30 bytes are stored as {"__msgpack_chunked_array__": True, "shape": {"0": ...},
"chunks": {"0": flat chunk, ...}}.

Reading checks each array's declared shape and dtype against the bytes it holds (and a chunked
array's shape against its chunks) before anything is allocated (error.checkpoint.oversized);
msgpack itself refuses container and byte lengths past the end of the data.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import msgpack
import numpy as np

from electra_core.checkpoint.errors import CheckpointError, CheckpointSizeError
from electra_core.checkpoint.stored import in_memory

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


class DeclaredSizeError(ValueError):
    """An array's declared shape and dtype need another number of bytes than it stores."""


def _declared_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"an array shape must be a list of non-negative ints, got {shape!r}")
    return tuple(shape)


def _array_from_payload(data: bytes) -> np.ndarray:
    """The array of an ext payload (a read-only view of ``data``); DeclaredSizeError, before any
    allocation, when its declared shape and dtype need another number of bytes than it holds."""
    shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
    shape, dtype = _declared_shape(shape), _dtype(dtype_name)
    needed = math.prod(shape) * dtype.itemsize
    if not isinstance(buffer, bytes) or needed != len(buffer):
        held = len(buffer) if isinstance(buffer, bytes) else type(buffer).__name__
        raise DeclaredSizeError(f"declares shape {shape} {dtype} = {needed} bytes but holds {held}")
    return np.frombuffer(buffer, dtype=dtype, count=-1, offset=0).reshape(shape, order="C")


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


class _Refused:
    """Stands in for an array whose declared size does not match its bytes until the tree walk, which
    knows the parameter's name, reports it (the ext hook sees only the payload)."""

    def __init__(self, reason: str):
        self.reason = reason


def _unpack_ext(code: int, data: bytes) -> Any:
    if code in (EXT_NDARRAY, EXT_NPSCALAR):
        try:
            array = _array_from_payload(data)
        except DeclaredSizeError as e:
            return _Refused(str(e))
        return array if code == EXT_NDARRAY else array[()]
    if code == EXT_COMPLEX:
        real, imag = msgpack.unpackb(data)
        return complex(real, imag)
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


def _joined(node: dict, where: tuple) -> np.ndarray:
    """The array of a chunked-array node, its declared shape checked against the chunks' sizes first."""
    shape = _declared_shape([node["shape"][str(i)] for i in range(len(node["shape"]))])
    chunks = [_unchunk(node["chunks"][str(i)], (*where, "chunks", str(i))) for i in range(len(node["chunks"]))]
    if not all(isinstance(c, np.ndarray) and c.ndim == 1 for c in chunks) or len({c.dtype for c in chunks}) > 1:
        raise ValueError(f"{'/'.join(where)}: chunks of a chunked array must be flat arrays of one dtype")
    held = sum(c.size for c in chunks)
    if math.prod(shape) != held:
        raise DeclaredSizeError(f"{'/'.join(where)}: chunked array declares shape {shape} "
                                f"({math.prod(shape)} elements) but its chunks hold {held}")
    return np.concatenate(chunks).reshape(shape) if chunks else np.zeros(shape)


def _unchunk(tree: Any, where: tuple = ()) -> Any:
    """The decoded tree with chunked arrays joined; DeclaredSizeError naming the parameter for an array
    whose declared size its bytes do not back."""
    if isinstance(tree, _Refused):
        raise DeclaredSizeError(f"{'/'.join(where) or '(root)'} {tree.reason}")
    if not isinstance(tree, dict):
        return tree
    if CHUNK_MARKER in tree:
        return _joined(tree, where)
    return {k: _unchunk(v, (*where, str(k))) for k, v in tree.items()}


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
    except DeclaredSizeError as e:
        raise CheckpointSizeError(f"{path}: parameter {e}; refusing to allocate what the file does not hold") from e
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


def _described(tree: dict, path: Path, where: tuple) -> dict:
    return {key: _described(value, path, (*where, str(key))) if isinstance(value, dict)
            else in_memory(path, "/".join((*where, str(key))), value) for key, value in tree.items()}


def describe_msgpack(path: Path) -> dict:
    """The param tree of read_msgpack with StoredTensor leaves (their data is already in memory, views
    of the file's bytes), so conversion and matching treat every format alike."""
    return _described(read_msgpack(path), Path(path), ())
