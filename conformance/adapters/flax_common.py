"""What the two Flax adapters (ours and transformers') share: calling a Flax model eagerly or under an
outer jax.jit cached per (flags, train, return_dict) in ``handle.extra["jit"]``."""
from __future__ import annotations

import jax

from conformance.adapters.base import Handle


def call_flax_model(handle: Handle, arrays: dict, flags: dict, train: bool, seed: int | None, compiled: bool,
                    return_dict: bool):
    """Call ``handle.native`` with ``arrays`` as keyword inputs; a dropout rng from ``seed`` when training."""
    model = handle.native
    rng = jax.random.PRNGKey(0 if seed is None else seed) if train else None

    def call(params, arrays, rng):
        return model(**arrays, params=params, dropout_rng=rng, train=train, return_dict=return_dict, **flags)

    if not compiled:
        return call(model.params, arrays, rng)
    key = (tuple(sorted(flags.items())), train, return_dict)
    jitted = handle.extra.setdefault("jit", {}).get(key)
    if jitted is None:
        jitted = handle.extra["jit"][key] = jax.jit(call)
    return jitted(model.params, arrays, rng)
