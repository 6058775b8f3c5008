"""Casting a parameter tree's floating-point leaves (to_bf16 / to_fp16 / to_fp32)."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def cast_floating(params: Any, dtype, mask: Any = None) -> Any:
    """A copy of ``params`` with floating leaves cast to ``dtype``; ``mask`` (same tree, bool leaves)
    selects the leaves to cast (False leaves are kept as they are)."""

    def cast(leaf, selected=True):
        if selected and jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
            return jnp.asarray(leaf).astype(dtype)
        return leaf

    if mask is None:
        return jax.tree_util.tree_map(cast, params)
    return jax.tree_util.tree_map(cast, params, mask)
