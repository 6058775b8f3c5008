"""Call-argument handling shared by every model: the four input formats, numpy -> tensor conversion
and the config fallbacks of the output flags.

Input formats (identical results): keyword arguments; a single tensor (input_ids); a list/tuple in
signature order; a dict (any mapping, e.g. a tokenizer's output) as the first positional argument.
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

FLAG_FALLBACKS = ("output_attentions", "output_hidden_states", "return_dict", "use_cache")


@dataclasses.dataclass(frozen=True)
class CallArguments:
    """A model call's arguments once resolved (TFElectraPreTrainedModel.resolve_call): unpacked from their
    input format, converted to tensors, validated, the output flags filled in from the config. An argument
    the class's call does not take stays None."""

    input_ids: Any = None  # (B, S) or (B, C, S) int
    attention_mask: Any = None  # (B, Sp+S) 0/1
    token_type_ids: Any = None  # like input_ids
    position_ids: Any = None  # like input_ids
    head_mask: Any = None  # (N,) or (L, N)
    inputs_embeds: Any = None  # (B, S, E) or (B, C, S, E)
    encoder_hidden_states: Any = None  # (B, Se, H)
    encoder_attention_mask: Any = None  # (B, Se)
    past_key_values: Any = None  # L pairs of (B, N, Sp, D)
    use_cache: bool | None = None
    output_attentions: bool = False
    output_hidden_states: bool = False
    return_dict: bool = True
    training: bool = False
    labels: Any = None
    start_positions: Any = None  # (B,)
    end_positions: Any = None  # (B,)


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
    elif isinstance(first, (list, tuple)) and not is_number_list(first):
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


def is_number_list(x: Any) -> bool:
    """A (nested) Python list of numbers, e.g. ``[[101, 7, 102]]``: the values of one input, never the
    positional-list input format (whose entries are arrays or tensors)."""
    if isinstance(x, list):
        return bool(x) and all(is_number_list(i) for i in x)
    return isinstance(x, (int, float, np.number, np.bool_))


def to_tensor(x: Any, name: str = "input") -> Any:
    """numpy arrays (and nested tuples of them) and Python lists of numbers -> tf tensors; everything
    else unchanged. TypeError naming ``name`` for string/object arrays, ValueError for ragged lists."""
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        _check_numeric_array(name, x)
        return tf.convert_to_tensor(x)
    if isinstance(x, (list, tuple)) and x and all(isinstance(i, (list, tuple, np.ndarray, tf.Tensor)) for i in x) \
            and not is_number_list(x):
        return tuple(to_tensor(i, name) for i in x)
    if isinstance(x, list):  # a python list of numbers
        return _list_to_tensor(name, x)
    if hasattr(x, "numpy") and not isinstance(x, tf.Tensor):  # e.g. a torch tensor
        return tf.convert_to_tensor(x.numpy())
    return x


def _check_numeric_array(name: str, x) -> None:
    """Real numbers only (integer, float, bool): TypeError naming ``name`` and the dtype for complex, string
    and object arrays (error.input_ids.dtype, error.attention_mask.dtype, error.float_inputs.dtype)."""
    if x.dtype.kind in "OUSVc" and x.dtype.name != "bfloat16":
        raise TypeError(f"{name} must hold real numbers (integer, float or bool), got dtype {x.dtype}")


def _list_to_tensor(name: str, x: list):
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} cannot be read as an array (a ragged or mixed nested list?): {e}") from e
    _check_numeric_array(name, array)
    return tf.convert_to_tensor(x)  # TF's own dtypes for Python numbers (int32, float32)


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
