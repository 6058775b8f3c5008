"""model.safetensors reading and writing (numpy arrays, header metadata).

The safetensors package handles every dtype numpy knows; bfloat16 (which numpy lacks) goes through a
small reader/writer of the same format here: 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw little-endian data.
"""
from __future__ import annotations

import contextlib
import functools
import json
import struct
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from electra_core.checkpoint.errors import CheckpointError
from electra_core.checkpoint.stored import StoredTensor, read_all

_BF16 = "BF16"


def _bfloat16() -> np.dtype:
    import ml_dtypes  # numpy extension dtypes (installed with jax); only needed for bfloat16

    return np.dtype(ml_dtypes.bfloat16)


_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64", "I32": "int32", "I16": "int16",
           "I8": "int8", "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool"}


def _read_header(path: Path) -> tuple[dict, int]:
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > size - 8:
            raise ValueError(f"header length {length} exceeds the file size {size}")
        header = json.loads(f.read(length))
    if not isinstance(header, dict):
        raise ValueError("the safetensors header is not a JSON object")
    return header, 8 + length


def _numpy_dtype(code: str) -> np.dtype:
    """numpy dtype of a safetensors dtype code; a code numpy cannot hold (F8_*) becomes void, which the
    matching step refuses as non-float before any data is read."""
    if code == _BF16:
        return _bfloat16()
    return np.dtype(_DTYPES.get(code, "V1"))


def _tensor(path: Path, name: str, info: dict, handle, raw, start: int) -> StoredTensor:
    dtype, shape = _numpy_dtype(info["dtype"]), tuple(int(d) for d in info["shape"])
    if info["dtype"] == _BF16:
        begin, end = info["data_offsets"]

        def read() -> np.ndarray:
            return np.array(raw()[start + begin:start + end]).view(dtype).reshape(shape)
    else:
        def read() -> np.ndarray:
            return handle.get_tensor(name)
    return StoredTensor(path, name, shape, dtype, read)


@contextlib.contextmanager
def open_safetensors(path: Path) -> Iterator[tuple[dict[str, StoredTensor], dict[str, str]]]:
    """({name: StoredTensor}, header metadata) of a safetensors file, readable while the context is
    open. Only the header is read here (safetensors checks it against the file's size); CheckpointError
    naming the file if it is unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        header, start = _read_header(path)
        handle = safe_open(str(path), framework="np")  # validates offsets; reads the numpy-native tensors
    except (SafetensorError, OSError, ValueError, TypeError, KeyError, struct.error) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from e
    with handle:
        metadata = dict(header.pop("__metadata__", None) or {})
        raw = functools.lru_cache(maxsize=1)(lambda: np.memmap(path, dtype=np.uint8, mode="r"))
        try:
            tensors = {name: _tensor(Path(path), name, info, handle, raw, start) for name, info in header.items()}
        except (ValueError, TypeError, KeyError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from e
        try:
            yield tensors, metadata
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from e


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: array}, header metadata) of a safetensors file; CheckpointError naming the file if unreadable."""
    with open_safetensors(path) as (tensors, metadata):
        return read_all(tensors), metadata


def _bytes_with_bfloat16(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    codes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
             _bfloat16(): _BF16}
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    chunks, offset = [], 0
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        if array.dtype not in codes:
            raise TypeError(f"parameter {name!r}: cannot store dtype {array.dtype} beside bfloat16 arrays")
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": codes[array.dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def safetensors_bytes(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """Serialized safetensors content: contiguous arrays plus string metadata."""
    from safetensors.numpy import save

    if any(np.asarray(a).dtype.name == "bfloat16" for a in arrays.values()):
        return _bytes_with_bfloat16(arrays, metadata)
    return save({name: np.ascontiguousarray(a) for name, a in arrays.items()}, metadata=dict(metadata))


def read_index(path: Path) -> dict[str, str]:
    """weight_map {name: shard file} of a model.safetensors.index.json."""
    try:
        index = json.loads(Path(path).read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise TypeError("weight_map must map names to shard file names")
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors index ({type(e).__name__}: {e})") from e
    return weight_map
