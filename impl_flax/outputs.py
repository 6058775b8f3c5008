"""The Flax output classes of the spec, registered as JAX pytrees so they can cross ``jax.jit``.

A flattened output keeps its present field names as static data; absent fields stay absent.
"""
from __future__ import annotations

import jax

from electra_core.outputs import ModelOutput, output_class
from spec import load_spec

FLAX_OUTPUT_NAMES = tuple(name for name in load_spec().outputs if name.startswith("Flax"))


def _flatten_with_keys(output: ModelOutput):
    names = tuple(output.keys())
    return [(jax.tree_util.DictKey(n), output[n]) for n in names], names


def _unflatten(cls, names, children):
    return cls(**dict(zip(names, children)))


def _register(cls: type[ModelOutput]) -> type[ModelOutput]:
    jax.tree_util.register_pytree_with_keys(
        cls, _flatten_with_keys, lambda names, children: _unflatten(cls, names, children),
        flatten_func=lambda o: (tuple(o.values()), tuple(o.keys())),
    )
    return cls


OUTPUT_CLASSES: dict[str, type[ModelOutput]] = {name: _register(output_class(name)) for name in FLAX_OUTPUT_NAMES}
globals().update(OUTPUT_CLASSES)
__all__ = list(FLAX_OUTPUT_NAMES) + ["OUTPUT_CLASSES"]
