"""Call-argument handling shared by every model: the four input formats, numpy -> tensor conversion
and the config fallbacks of the output flags.

Input formats (identical results): keyword arguments; a single tensor (input_ids); a list/tuple in
signature order; a dict (any mapping, e.g. a tokenizer's output) as the first positional argument.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

FLAG_FALLBACKS = ("output_attentions", "output_hidden_states", "return_dict", "use_cache")


def call_parameter_names(cls) -> tuple[str, ...]:
    """Names of ``cls.call``'s parameters after self, in signature order."""
    return tuple(list(inspect.signature(cls.call).parameters)[1:])


def unpack_input_formats(names: tuple[str, ...], values: dict[str, Any]) -> dict[str, Any]:
    """Spread a dict or list/tuple passed as ``input_ids`` over the named arguments."""
    values = dict(values)
    first = values.get(names[0])
    if isinstance(first, Mapping):
        values[names[0]] = None
        for key, value in first.items():
            if key not in names:
                raise ValueError(f"unknown input {key!r} in the input dict; the call accepts {list(names)}")
            if key != names[0] and values.get(key) is not None:
                raise ValueError(f"{key!r} was given both in the input dict and as an argument")
            values[key] = value
    elif isinstance(first, (list, tuple)):
        if len(first) > len(names):
            raise TypeError(f"the input list has {len(first)} entries but the call takes {len(names)} arguments "
                            f"{list(names)}")
        values[names[0]] = None
        for key, value in zip(names, first):
            if key != names[0] and values.get(key) is not None and value is not None:
                raise ValueError(f"{key!r} was given both in the input list and as an argument")
            if value is not None:
                values[key] = value
    return values


def to_tensor(x: Any) -> Any:
    """numpy arrays (and nested tuples of them) -> tf tensors; everything else unchanged."""
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        return tf.convert_to_tensor(x)
    if isinstance(x, (list, tuple)) and x and all(isinstance(i, (list, tuple, np.ndarray, tf.Tensor)) for i in x):
        return tuple(to_tensor(i) for i in x)
    if isinstance(x, list):  # a python list of numbers
        return tf.convert_to_tensor(x)
    if hasattr(x, "numpy") and not isinstance(x, tf.Tensor):  # e.g. a torch tensor
        return tf.convert_to_tensor(x.numpy())
    return x


def resolve_flags(config, values: dict[str, Any]) -> dict[str, Any]:
    """Fill None output flags (and use_cache) from the config of the same name."""
    for flag in FLAG_FALLBACKS:
        if flag in values and values[flag] is None:
            values[flag] = getattr(config, flag)
    for flag in FLAG_FALLBACKS:
        if flag in values and isinstance(values[flag], (tf.Tensor, np.ndarray, np.bool_)):
            values[flag] = bool(values[flag])
    return values


ID_ARGUMENTS = ("input_ids", "token_type_ids", "position_ids", "labels", "start_positions", "end_positions")


def widen_integer_ids(values: dict[str, Any]) -> dict[str, Any]:
    """bool and narrow integer ids -> int32 (int32/int64 unchanged) so every gather accepts them."""
    for name in ID_ARGUMENTS:
        x = values.get(name)
        if isinstance(x, tf.Tensor) and (x.dtype == tf.bool or (x.dtype.is_integer and x.dtype not in (tf.int32, tf.int64))):
            values[name] = tf.cast(tf.cast(x, tf.int64), tf.int32) if x.dtype == tf.bool else tf.cast(x, tf.int64)
    return values
