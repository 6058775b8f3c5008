"""Host-side value checks of call inputs, shared by impl_tf and impl_flax (numpy only).

They run on concrete inputs before anything is traced or any graph runs: on accelerators a gather
with an out-of-range id returns zeros instead of failing, so a bad id must be caught here (clauses
``error.*.out_of_range``).
"""
from __future__ import annotations

from typing import Any

import numpy as np


def check_values_in_range(name: str, x: Any, low: int, high: int, what: str, allowed: tuple = ()) -> None:
    """Every value of ``x`` in [low, high) or one of ``allowed``; else ValueError naming the first
    offending value, its index, the range and ``what`` bounds it (e.g. "vocab_size").

    The common case costs two reductions (min and max) and no temporaries; the offending element is
    only searched for when the bounds are crossed."""
    values = np.asarray(x)
    if values.size == 0:
        return
    if values.dtype == np.bool_:
        values = values.astype(np.int8)
    if values.min() >= low and values.max() < high:
        return
    bad = (values < low) | (values >= high)
    for value in allowed:
        bad &= values != value
    if not bad.any():
        return
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    extra = f" (or {', '.join(map(str, allowed))})" if allowed else ""
    raise ValueError(f"{name} value {values[where].item()} at index {where} is outside the allowed range "
                     f"[{low}, {high}){extra} ({what})")


def check_mask_values(name: str, x: Any) -> None:
    """A mask holds 1 (attend) and 0 (masked) only, in an integer, float or bool dtype
    (error.attention_mask.values); TypeError for another dtype, else ValueError naming the first value
    that is not 0 or 1 and its index.

    Integer masks cost two reductions (min and max); float masks one more pass for fractions and NaN."""
    values = np.asarray(x)
    if values.dtype == np.bool_ or values.size == 0:
        return
    if values.dtype.name == "bfloat16":
        values = values.astype(np.float32)
    kind = values.dtype.kind
    if kind not in "iuf":
        raise TypeError(f"{name} must be a 0/1 mask of integer, float or bool dtype, got dtype {values.dtype}")
    if values.min() >= 0 and values.max() <= 1 and (kind != "f" or not np.any((values > 0) & (values < 1))):
        return
    bad = (values != 0) & (values != 1)
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(f"{name} value {values[where].item()} at index {where} is not 0 or 1: a mask holds 1 "
                     f"(attend) or 0 (masked)")


def check_sequence_not_empty(name: str, shape: tuple, seq_axis: int) -> None:
    """The sequence axis of ``name`` holds at least one position (error.sequence.empty)."""
    if shape[seq_axis] == 0:
        raise ValueError(f"{name} has shape {tuple(shape)}: its sequence is empty (length 0); every class needs "
                         f"at least 1 position")
