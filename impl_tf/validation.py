"""Host-side checks of call inputs, run before any graph: accelerators return zeros for out-of-range
gathers, so bad ids must be caught here. Concrete inputs (numpy, eager tensors) are checked by value;
symbolic ones (inside tf.function) by their static shapes plus tf.debugging assertions for values.

Bad values and shapes raise ValueError, wrong dtypes TypeError; messages name the argument, the
offending value or shape and what was expected.

Shape keys: B batch (with C choices for multiple choice: the "lead" dims), S sequence, Sp cached
length, E embedding_size, N heads, L layers, V vocab_size, T type_vocab_size, P max_position_embeddings.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import tensorflow as tf

from electra_core.value_checks import check_mask_values, check_sequence_not_empty, check_values_in_range


def is_symbolic(x: Any) -> bool:
    return isinstance(x, tf.Tensor) and not hasattr(x, "numpy")


def static_shape(x: Any) -> tuple:
    """Shape as a tuple of ints, None for unknown dims."""
    shape = x.shape
    if isinstance(shape, tf.TensorShape):
        return tuple(shape.as_list()) if shape.rank is not None else ()
    return tuple(shape)


def dtype_name(x: Any) -> str:
    dtype = x.dtype
    return dtype.name if isinstance(dtype, tf.DType) else np.dtype(dtype).name


def is_integer(x: Any) -> bool:
    """Integer or bool dtype (bool and narrow ints are accepted and widened)."""
    dtype = x.dtype
    if isinstance(dtype, tf.DType):
        return dtype.is_integer or dtype == tf.bool
    return np.issubdtype(np.dtype(dtype), np.integer) or np.dtype(dtype) == np.bool_


def check_integer(name: str, x: Any) -> None:
    if not is_integer(x):
        raise TypeError(f"{name} must hold integers (int32 or int64), got dtype {dtype_name(x)}")


def check_range(name: str, x: Any, low: int, high: int, what: str, allowed: tuple = ()):
    """Every value of ``x`` in [low, high) (or one of ``allowed``); ``what`` names the bound.
    Symbolic ``x``: returns the assertion op, which the caller makes its inputs depend on."""
    if is_symbolic(x):
        values = tf.cast(x, tf.float64 if x.dtype.is_floating else tf.int64)
        ok = tf.logical_and(values >= low, values < high)
        for a in allowed:
            ok = tf.logical_or(ok, tf.equal(values, a))
        return tf.debugging.Assert(tf.reduce_all(ok), [f"{name} has values outside [{low}, {high}) ({what})",
                                                       tf.reduce_min(values), tf.reduce_max(values)])
    check_values_in_range(name, x, low, high, what, allowed)
    return None


def check_mask(name: str, x: Any) -> None:
    """A 0/1 mask of integer, float or bool dtype (error.attention_mask.values); values are checked on
    concrete inputs only (decision.value_checks_under_jit)."""
    dtype = x.dtype
    if isinstance(dtype, tf.DType) and not (dtype.is_integer or dtype.is_floating or dtype == tf.bool):
        raise TypeError(f"{name} must be a 0/1 mask of integer, float or bool dtype, got dtype {dtype.name}")
    if not is_symbolic(x):
        check_mask_values(name, x)


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def check_shape(name: str, x: Any, expected: tuple, expected_text: str) -> None:
    actual = static_shape(x)
    if not _same(actual, expected):
        raise ValueError(f"{name} has shape {actual}, expected {expected_text} = {expected}")


def validate_call_inputs(config, args: Mapping[str, Any], lead_rank: int = 1) -> list:
    """Check the model inputs in ``args`` (call argument name -> value or None) against ``config``.

    lead_rank: number of leading dims before the sequence (1: (B,S); 2 for multiple choice: (B,C,S)).
    Returns the graph assertions made for symbolic inputs (empty in eager mode).
    """
    asserts = []
    input_ids, embeds = args.get("input_ids"), args.get("inputs_embeds")
    if input_ids is not None and embeds is not None:
        raise ValueError("pass either input_ids or inputs_embeds, not both")
    if input_ids is None and embeds is None:
        raise ValueError("pass input_ids or inputs_embeds (neither was given)")
    lead_text = "(B, C, S)" if lead_rank == 2 else "(B, S)"
    if input_ids is not None:
        check_integer("input_ids", input_ids)
        shape = static_shape(input_ids)
        if len(shape) != lead_rank + 1:
            raise ValueError(f"input_ids has shape {shape}, expected rank {lead_rank + 1} {lead_text}")
        asserts.append(check_range("input_ids", input_ids, 0, config.vocab_size, "vocab_size"))
    else:
        shape = static_shape(embeds)
        if len(shape) != lead_rank + 2:
            raise ValueError(f"inputs_embeds has shape {shape}, expected rank {lead_rank + 2} "
                             f"{lead_text[:-1]}, E) with E = embedding_size = {config.embedding_size}")
        if shape[-1] is not None and shape[-1] != config.embedding_size:
            raise ValueError(f"inputs_embeds has shape {shape}: its last dimension {shape[-1]} must equal "
                             f"embedding_size = {config.embedding_size}")
        shape = shape[:-1]
    lead, seq = shape[:-1], shape[-1]
    check_sequence_not_empty("input_ids" if input_ids is not None else "inputs_embeds",
                             static_shape(input_ids if input_ids is not None else embeds), lead_rank)

    past = args.get("past_key_values")
    past_length = _check_past(config, past, lead) if past is not None else 0

    for name, high, what in (("token_type_ids", config.type_vocab_size, "type_vocab_size"),
                             ("position_ids", config.max_position_embeddings, "max_position_embeddings")):
        x = args.get(name)
        if x is None:
            continue
        check_integer(name, x)
        x_shape = static_shape(x)
        # position_ids may broadcast over the batch, as (1, S)
        if not (_same(x_shape, shape) or (name == "position_ids" and _same(x_shape, (1,) * len(lead) + (seq,)))):
            raise ValueError(f"{name} has shape {x_shape}, expected the shape of the inputs {shape} {lead_text}")
        asserts.append(check_range(name, x, 0, high, what))

    mask = args.get("attention_mask")
    if mask is not None:
        total = None if (seq is None or past_length is None) else past_length + seq
        m_shape = static_shape(mask)
        ok = _same(m_shape, lead + (total,)) or (lead_rank == 1 and _same(m_shape, lead + (seq, total)))
        if not ok:
            text = "(B, Sp + S)" if past is not None else lead_text
            raise ValueError(f"attention_mask has shape {m_shape}, expected {text} = {lead + (total,)}")
        check_mask("attention_mask", mask)

    if args.get("position_ids") is None or config.position_embedding_type != "absolute":
        asserts.append(_check_length(config, seq, past, past_length,
                                     input_ids if input_ids is not None else embeds, lead_rank))
    for name in ("head_mask", "inputs_embeds", "encoder_hidden_states"):
        check_real(name, args.get(name))
    _check_head_mask(config, args.get("head_mask"))
    _check_encoder(config, args, lead)
    return [a for a in asserts if a is not None]


def check_real(name: str, x: Any) -> None:
    """A float input of a real dtype (integer, float or bool), else TypeError naming it and its dtype
    (error.float_inputs.dtype): a complex tensor would be cast or computed in complex arithmetic silently."""
    if x is None:
        return
    dtype = tf.as_dtype(x.dtype)
    if not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
        raise TypeError(f"{name} must hold real numbers (integer, float or bool), got dtype {dtype_name(x)}")


def _check_length(config, seq, past, past_length, source, lead_rank):
    """Sp + S <= P; asserted in the graph when a length is only known at run time."""
    P = config.max_position_embeddings
    if seq is not None and past_length is not None:
        if past_length + seq > P:
            detail = f" ({past_length} cached + {seq} new)" if past is not None else ""
            raise ValueError(f"sequence length {past_length + seq}{detail} exceeds max_position_embeddings = {P}")
        return None
    total = tf.shape(source)[lead_rank] + (tf.shape(past[0][0])[2] if past is not None else 0)
    return tf.debugging.assert_less_equal(total, P, message=f"sequence length (cached + new) exceeds "
                                                            f"max_position_embeddings = {P}")


def _check_past(config, past, lead) -> int | None:
    L, N, D = config.num_hidden_layers, config.num_attention_heads, config.head_dim
    if len(past) != L:
        raise ValueError(f"past_key_values has {len(past)} entries, expected one (key, value) pair per layer "
                         f"(num_hidden_layers = {L})")
    lengths = set()
    for i, pair in enumerate(past):
        if len(pair) != 2:
            raise ValueError(f"past_key_values[{i}] has {len(pair)} tensors, expected a (key, value) pair")
        for t in pair:
            s = static_shape(t)
            if len(s) != 4 or not _same((s[0], s[1], s[3]), (lead[0], N, D)):
                raise ValueError(f"past_key_values[{i}] has shape {s}, expected (B, N, Sp, D) = "
                                 f"({lead[0]}, {N}, Sp, {D})")
            lengths.add(s[2])
    if len(lengths) > 1:
        raise ValueError(f"past_key_values have different cached lengths {sorted(lengths, key=str)}")
    return lengths.pop()


def _check_head_mask(config, head_mask) -> None:
    if head_mask is None:
        return
    L, N = config.num_hidden_layers, config.num_attention_heads
    s = static_shape(head_mask)
    if not (_same(s, (N,)) or _same(s, (L, N))):
        raise ValueError(f"head_mask has shape {s}, expected (N,) = ({N},) or (L, N) = ({L}, {N})")


def _check_encoder(config, args, lead) -> None:
    states, mask = args.get("encoder_hidden_states"), args.get("encoder_attention_mask")
    if states is None:
        if mask is not None:
            raise ValueError("encoder_attention_mask was given without encoder_hidden_states")
        return
    if not config.add_cross_attention:
        raise ValueError("encoder_hidden_states needs a model with config.add_cross_attention = True "
                         "(and is_decoder = True)")
    s = static_shape(states)
    if len(s) != 3 or not _same((s[0], s[2]), (lead[0], config.hidden_size)):
        enc_seq = s[1] if len(s) > 1 else "Se"
        raise ValueError(f"encoder_hidden_states has shape {s}, expected (B, Se, H) = "
                         f"({lead[0]}, {enc_seq}, {config.hidden_size})")
    if mask is not None:
        check_shape("encoder_attention_mask", mask, s[:2], "(B, Se)")
        check_mask("encoder_attention_mask", mask)


def after_assertions(asserts: list, values: dict, names: tuple) -> dict:
    """Make the tensors ``values[name]`` depend on the graph assertions, so no gather runs first."""
    if not asserts:
        return values
    values = dict(values)
    with tf.control_dependencies(asserts):
        for name in names:
            if isinstance(values.get(name), tf.Tensor):
                values[name] = tf.identity(values[name])
    return values
