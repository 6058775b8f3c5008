"""model.safetensors reading and writing (numpy arrays, header metadata).

The safetensors package handles every dtype numpy knows; bfloat16 (which numpy lacks) goes through a
small reader/writer of the same format here: 8-byte little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then the raw little-endian data.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Mapping

import numpy as np

from electra_core.checkpoint.errors import CheckpointError

_BF16 = "BF16"


def _bfloat16() -> np.dtype:
    import ml_dtypes  # numpy extension dtypes (installed with jax); only needed for bfloat16

    return np.dtype(ml_dtypes.bfloat16)


def _has_bfloat16_header(path: Path) -> bool:
    try:
        header, _ = _read_header(path)
    except (OSError, ValueError, struct.error):
        return False
    return any(isinstance(v, dict) and v.get("dtype") == _BF16 for v in header.values())


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


def _read_with_bfloat16(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    header, start = _read_header(path)
    metadata = dict(header.pop("__metadata__", None) or {})
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    arrays = {}
    with safe_open(str(path), framework="np") as f:  # validates offsets; reads the numpy-native tensors
        for name, info in header.items():
            if info["dtype"] == _BF16:
                begin, end = info["data_offsets"]
                data = np.array(raw[start + begin:start + end])
                arrays[name] = data.view(_bfloat16()).reshape(info["shape"])
            else:
                arrays[name] = f.get_tensor(name)
    return arrays, metadata


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: array}, header metadata) of a safetensors file; CheckpointError naming the file if unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        if _has_bfloat16_header(path):
            return _read_with_bfloat16(path)
        with safe_open(str(path), framework="np") as f:
            metadata = dict(f.metadata() or {})
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from e
    return arrays, metadata


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
