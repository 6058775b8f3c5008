"""model.safetensors reading and writing (numpy arrays, header metadata)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

from electra_core.checkpoint.errors import CheckpointError


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """({name: array}, header metadata) of a safetensors file; CheckpointError naming the file if unreadable."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            metadata = dict(f.metadata() or {})
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from e
    return arrays, metadata


def safetensors_bytes(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """Serialized safetensors content: contiguous arrays plus string metadata."""
    from safetensors.numpy import save

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
