"""Host-side checks of call inputs, run before anything is traced (clauses ``error.*`` of errors.yaml).

Shapes and dtypes are checked always (also on tracers, at trace time); values (ids in range) only on
concrete inputs (decision.value_checks_under_jit). Shape keys: B batch, C choices, S sequence,
Sp cached length, M cache capacity, Se encoder length, H hidden, L layers, N heads.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from electra_core.value_checks import check_mask_values, check_sequence_not_empty, check_values_in_range
from impl_flax.cache import cache_capacity, cache_length


def is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _as_array(name: str, x: Any) -> Any:
    """Keep jax arrays and tracers; turn lists/tuples/numpy into numpy (ValueError naming ``name`` for a
    ragged list)."""
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        return x
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{name} cannot be read as an array (a ragged or mixed nested list?): {e}") from e


def _cast(x, dtype):
    """``x`` as ``dtype``: host (numpy) inputs stay numpy, so that the jitted call moves all of them to the
    device in one transfer instead of one dispatched operation each; jax arrays and tracers stay jax."""
    if isinstance(x, (jax.Array, jax.core.Tracer)):
        return x if x.dtype == dtype else x.astype(dtype)
    return np.asarray(x, dtype)


def _dtype_kind(x) -> str:
    return np.dtype(x.dtype).kind


def integer_ids(name: str, x: Any):
    """An integer (or bool) array for ``name``; TypeError naming the dtype otherwise."""
    x = _as_array(name, x)
    if _dtype_kind(x) not in "iub":
        raise TypeError(f"{name} must hold integer ids, got dtype {x.dtype}")
    return x


def check_shape(name: str, x, expected: tuple) -> None:
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{name} has shape {tuple(x.shape)}, expected {tuple(expected)}")


def check_range(name: str, x, upper: int, upper_name: str) -> None:
    """Values of ``x`` in [0, upper) (``upper_name`` names the bound); not checked on tracers."""
    if not is_traced(x):
        check_values_in_range(name, x, 0, upper, upper_name)


def check_mask(name: str, x):
    """A 0/1 mask of integer, float or bool dtype (error.attention_mask.values); values not checked on tracers."""
    x = check_numeric(name, x)
    if not is_traced(x):
        check_mask_values(name, x)
    return x


def check_numeric(name: str, x):
    x = _as_array(name, x)
    if _dtype_kind(x) not in "iubf" and x.dtype != jnp.bfloat16:
        raise TypeError(f"{name} must hold real numbers (integer, float or bool), got dtype {x.dtype}")
    return x


def prepare_call_inputs(config, *, lead_rank: int, input_ids, attention_mask=None, token_type_ids=None,
                        position_ids=None, head_mask=None, encoder_hidden_states=None,
                        encoder_attention_mask=None, cache_state: tuple[int, int, int] | None = None,
                        compute_dtype=jnp.float32) -> dict:
    """Check the call inputs and fill in the documented defaults.

    ``lead_rank``: 1 for (B, S) inputs, 2 for multiple choice (B, C, S).
    ``cache_state``: (batch, Sp, M) of a Flax cache, or None without a cache.
    Returns the module inputs: ids (lead.., S) int32, attention_mask (lead.., Sk) int32 (Sk = M with a
    cache, else S), head_mask (L, N), encoder inputs or None. An omitted attention_mask, token_type_ids
    or position_ids stays None: ``fill_defaults`` builds it inside the jitted call, so that it costs no
    host allocation and no transfer to the device.
    """
    rank = lead_rank + 1
    if input_ids is None:
        raise ValueError("input_ids is required")
    input_ids = integer_ids("input_ids", input_ids)
    if input_ids.ndim != rank:
        dims = "(batch, choices, seq)" if lead_rank == 2 else "(batch, seq)"
        raise ValueError(f"input_ids must have rank {rank} {dims}, got shape {tuple(input_ids.shape)}")
    shape = tuple(input_ids.shape)
    lead, seq = shape[:-1], shape[-1]
    check_sequence_not_empty("input_ids", shape, -1)
    check_range("input_ids", input_ids, config.vocab_size, "vocab_size")

    past, capacity = 0, None
    if cache_state is not None:
        cache_batch, past, capacity = cache_state
        if cache_batch != shape[0]:
            raise ValueError(f"past_key_values holds a cache for batch {cache_batch}, but input_ids has shape "
                             f"{shape}: expected batch {cache_batch}, actual {shape[0]}")
        if seq > capacity:
            raise ValueError(f"the cache from init_cache has max_length {capacity}; this call adds {seq} positions")
    past_known = not is_traced(past)
    if cache_state is not None and past_known:
        if past + seq > capacity:
            raise ValueError(f"the cache from init_cache has max_length {capacity}; it holds {past} positions and "
                             f"this call adds {seq}, needing {past + seq}")

    if token_type_ids is not None:
        token_type_ids = integer_ids("token_type_ids", token_type_ids)
        check_shape("token_type_ids", token_type_ids, shape)
        check_range("token_type_ids", token_type_ids, config.type_vocab_size, "type_vocab_size")

    limit = config.max_position_embeddings
    if position_ids is None:
        if past_known and past + seq > limit:
            raise ValueError(f"sequence length {past + seq} (cached {past} + new {seq}) exceeds "
                             f"max_position_embeddings {limit}")
    else:
        position_ids = integer_ids("position_ids", position_ids)
        check_shape("position_ids", position_ids, shape)
        check_range("position_ids", position_ids, limit, "max_position_embeddings")
        if config.position_embedding_type != "absolute" and past_known and past + seq > limit:
            raise ValueError(f"sequence length {past + seq} exceeds max_position_embeddings {limit}, the reach of "
                             f"the relative distance table")

    attention_mask = _prepare_attention_mask(attention_mask, shape, past, capacity)
    head_mask = _prepare_head_mask(config, head_mask, compute_dtype)
    encoder_hidden_states, encoder_attention_mask = _prepare_encoder_inputs(
        config, shape[0] if lead_rank == 1 else shape[0] * shape[1], encoder_hidden_states, encoder_attention_mask)
    return {
        "input_ids": _cast(input_ids, np.int32),
        "attention_mask": attention_mask,
        "token_type_ids": None if token_type_ids is None else _cast(token_type_ids, np.int32),
        "position_ids": None if position_ids is None else _cast(position_ids, np.int32),
        "head_mask": head_mask,
        "encoder_hidden_states": encoder_hidden_states,
        "encoder_attention_mask": encoder_attention_mask,
    }


def _prepare_attention_mask(attention_mask, shape: tuple, past: int, capacity: int | None):
    """(lead.., S) without a cache; with a cache (B, Sp+S) or (B, M), returned as (B, M); None stays None."""
    lead, seq = shape[:-1], shape[-1]
    if attention_mask is None:
        return None
    if capacity is None:
        attention_mask = check_numeric("attention_mask", attention_mask)
        check_shape("attention_mask", attention_mask, shape)
        return _cast(check_mask("attention_mask", attention_mask), np.int32)
    attention_mask = check_numeric("attention_mask", attention_mask)
    length = attention_mask.shape[-1] if attention_mask.ndim == len(shape) else None
    accepted = (capacity,) if is_traced(past) else (past + seq, capacity)
    if tuple(attention_mask.shape[:-1]) != lead or length not in accepted:
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected "
                         f"{lead + (past + seq,)} (cached + new positions) or {lead + (capacity,)} (the cache length)")
    attention_mask = _cast(check_mask("attention_mask", attention_mask), np.int32)
    if length < capacity:  # later positions are hidden by the causal mask; pad to a fixed shape
        pad = np.pad if isinstance(attention_mask, np.ndarray) else jnp.pad
        attention_mask = pad(attention_mask, [(0, 0)] * len(lead) + [(0, capacity - length)], constant_values=1)
    return attention_mask


def _prepare_head_mask(config, head_mask, compute_dtype):
    """None (keep every head: no multiplier at all), (N,) or (L, N) -> (L, N) multipliers."""
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    if head_mask is None:
        return None
    head_mask = check_numeric("head_mask", head_mask)
    if tuple(head_mask.shape) == (heads,):
        head_mask = (np if isinstance(head_mask, np.ndarray) else jnp).broadcast_to(head_mask[None, :], (layers, heads))
    elif tuple(head_mask.shape) != (layers, heads):
        raise ValueError(f"head_mask has shape {tuple(head_mask.shape)}, expected {(heads,)} (num_attention_heads,) "
                         f"or {(layers, heads)} (num_hidden_layers, num_attention_heads)")
    return _cast(head_mask, compute_dtype)


def _prepare_encoder_inputs(config, batch: int, encoder_hidden_states, encoder_attention_mask):
    """encoder_hidden_states (B, Se, H) and encoder_attention_mask (B, Se), default ones."""
    if encoder_hidden_states is None:
        if encoder_attention_mask is not None and config.add_cross_attention:
            raise ValueError("encoder_attention_mask was given without encoder_hidden_states")
        return None, None
    if not config.add_cross_attention:
        # accepted by every Flax class, effective only with cross-attention (decision.flax_past_key_values_on_every_head)
        return None, None
    encoder_hidden_states = check_numeric("encoder_hidden_states", encoder_hidden_states)
    actual = tuple(encoder_hidden_states.shape)
    if len(actual) != 3 or actual[0] != batch or actual[2] != config.hidden_size:
        enc_seq = actual[1] if len(actual) > 1 else "enc_seq"
        raise ValueError(f"encoder_hidden_states has shape {actual}, expected {(batch, enc_seq, config.hidden_size)} "
                         f"(batch, enc_seq, hidden_size)")
    enc_shape = tuple(encoder_hidden_states.shape[:2])
    if encoder_attention_mask is None:
        encoder_attention_mask = np.ones(enc_shape, np.int32)
    else:
        encoder_attention_mask = check_numeric("encoder_attention_mask", encoder_attention_mask)
        check_shape("encoder_attention_mask", encoder_attention_mask, enc_shape)
        encoder_attention_mask = _cast(check_mask("encoder_attention_mask", encoder_attention_mask), np.int32)
    return encoder_hidden_states, encoder_attention_mask


def fill_defaults(inputs: dict, cache: dict | None) -> dict:
    """Inside the jitted call: the documented defaults of the omitted inputs. attention_mask: ones
    (lead.., S), or (B, M) with a cache; token_type_ids: zeros; position_ids: Sp + arange(S), where Sp
    is the cache's written length (0 without a cache)."""
    ids = inputs["input_ids"]
    shape, seq = ids.shape, ids.shape[-1]
    filled = dict(inputs)
    if filled["token_type_ids"] is None:
        filled["token_type_ids"] = jnp.zeros(shape, jnp.int32)
    if filled["position_ids"] is None:
        past = 0 if cache is None else cache_length(cache).astype(jnp.int32)
        filled["position_ids"] = jnp.broadcast_to(past + jnp.arange(seq, dtype=jnp.int32), shape)
    if filled["attention_mask"] is None:
        keys = shape if cache is None else shape[:-1] + (cache_capacity(cache),)
        filled["attention_mask"] = jnp.ones(keys, jnp.int32)
    return filled
