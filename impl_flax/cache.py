"""The Flax key/value cache (the "cache" collection from ``init_cache``): reading its state on the host
and checking that a cache fits the model before it is traced (error.past_key_values.shape).

Per self-attention block it holds cached_key / cached_value (B, M, N, D) and cache_index (the number
Sp of positions written so far). Shape keys: B batch, M max_length, N heads, D head_dim.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax.traverse_util import flatten_dict


def _structure(tree: Any) -> dict:
    return {k: (tuple(np.shape(v)), np.dtype(getattr(v, "dtype", object)).kind)
            for k, v in flatten_dict(dict(tree)).items()}


def cache_state(past_key_values: Any, model) -> tuple[int, int, int]:
    """(batch, Sp, M) of a cache made by ``model.init_cache``; ValueError if it is not such a cache.
    Sp is an int, or a traced scalar when the cache is traced by an outer jax.jit."""
    if not isinstance(past_key_values, dict) or not past_key_values:
        raise ValueError(f"past_key_values must be the cache dict from init_cache (expected a dict of "
                         f"cached_key/cached_value/cache_index per layer), got {type(past_key_values).__name__}")
    actual = _structure(past_key_values)
    keys = [v for k, v in actual.items() if k[-1] == "cached_key"]
    if not keys or len(keys[0][0]) != 4:
        raise ValueError(f"past_key_values is not a cache from init_cache: expected cached_key entries of shape "
                         f"(batch, max_length, heads, head_dim), actual entries {sorted('/'.join(k) for k in actual)}")
    batch, capacity = keys[0][0][:2]
    known = model.__dict__.setdefault("_cache_structures", {})
    if (batch, capacity) not in known:
        known[(batch, capacity)] = _structure(jax.eval_shape(lambda: model.init_cache(batch, capacity)))
    expected = known[(batch, capacity)]
    if actual != expected:
        diff = sorted(set(actual.items()) ^ set(expected.items()))[:4]
        raise ValueError(f"past_key_values does not fit this model: expected a cache with "
                         f"{len(expected)} entries like {next(iter(expected.values()))[0]}, actual {len(actual)} "
                         f"entries; first differences {diff}")
    indices = [v for k, v in flatten_dict(dict(past_key_values)).items() if k[-1] == "cache_index"]
    if any(isinstance(v, jax.core.Tracer) for v in indices):
        return batch, indices[0], capacity  # traced (under an outer jit): the position is not known here
    positions = {int(np.asarray(v)) for v in indices}
    if len(positions) > 1:
        raise ValueError(f"past_key_values has layers at different positions {sorted(positions)}")
    return batch, positions.pop(), capacity


def _first_leaf(past_key_values: Any, name: str):
    """The first ``name`` entry (cache_index, cached_key, ...) of the cache's layers."""
    for path, value in flatten_dict(dict(past_key_values)).items():
        if path[-1] == name:
            return value
    raise ValueError(f"past_key_values holds no {name}: expected the cache dict from init_cache")


def cache_length(past_key_values: Any):
    """Sp, the number of positions written into the cache (a scalar array; traced under jit)."""
    return _first_leaf(past_key_values, "cache_index")


def cache_capacity(past_key_values: Any) -> int:
    """M, the number of positions the cache can hold (its max_length)."""
    return np.shape(_first_leaf(past_key_values, "cached_key"))[1]
