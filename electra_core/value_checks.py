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
