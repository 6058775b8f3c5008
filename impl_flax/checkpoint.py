"""from_pretrained / save_pretrained glue between the Flax classes and ``electra_core.checkpoint``.

The param tree of every class already uses the checkpoint's names, so a canonical (PyTorch-named)
state converts to it with ``pt_to_flax`` and back with ``flax_to_pt``; nothing is renamed here.
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from electra_core.checkpoint import expected_shapes, flax_to_pt, pt_to_flax, save_state
from electra_core.config import ElectraConfig
from electra_core.pretrained_args import load_weights, parse_pretrained_args, reading_checkpoint, resolve_config

logger = logging.getLogger("impl_flax")

#: formats from_pretrained reads, in order of preference
LOAD_FORMATS = ("msgpack", "safetensors")


def _report(message: str) -> None:
    logger.info(message)
    warnings.warn(message, stacklevel=3)


def load_pretrained(cls, name_or_path: str | os.PathLike, *, dtype, _do_init: bool, ignore_mismatched_sizes: bool,
                    config: ElectraConfig | None, options: dict[str, Any]):
    """Build ``cls`` from a checkpoint; returns the model, or (model, params) with ``_do_init=False``.
    ``options``: hub options, loader options and config fields (electra_core.pretrained_args)."""
    args = parse_pretrained_args(options, caller=f"{cls.__name__}.from_pretrained")
    with reading_checkpoint(args, name_or_path):  # config.json and weights of one whole checkpoint
        config = resolve_config(args, name_or_path, config)
        model = cls(config, dtype=dtype, _do_init=False)
        loaded = load_weights(args, name_or_path, LOAD_FORMATS, expected=expected_shapes(cls.__name__, config),
                              base_prefix=cls.base_model_prefix + ".",
                              ignore_mismatched_sizes=ignore_mismatched_sizes)
    matched = loaded.match  # shapes checked before any tensor was read (files.load.shapes_first)
    if matched.unexpected:
        _report(f"{cls.__name__}: the checkpoint {loaded.path} holds parameters the model does not use, ignored: "
                f"{sorted(matched.unexpected)}")
    # files.dtype_on_load: float16 / bfloat16 files load as float32 (dtype= is the computation dtype only)
    params = pt_to_flax({name: np.asarray(value, np.float32) if jnp.issubdtype(np.asarray(value).dtype, jnp.floating)
                         else value for name, value in matched.state.items()})
    fresh = sorted(matched.missing) + sorted(n for n, _, _ in matched.mismatched)
    if fresh:
        details = "".join(f"; {n}: checkpoint shape {got}, model shape {want}" for n, want, got in matched.mismatched)
        _report(f"{cls.__name__}: parameters not in the checkpoint {loaded.path} were newly initialised: "
                f"{fresh}{details}")
        params = model.init_weights(model.key, model.input_shape, params=params)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    model.params = params
    if not _do_init:
        model._params, model._is_initialized = None, False
        return model, params
    return model


def _numpy_tree(params: dict) -> dict:
    flat = flatten_dict(params)
    return unflatten_dict({k: np.asarray(jax.device_get(v)) for k, v in flat.items()})


def save_pretrained(model, save_directory: str | os.PathLike, params: dict, formats: tuple[str, ...]) -> None:
    """config.json plus the weight files of ``formats`` ("msgpack", "safetensors"), written atomically."""
    allowed = set(LOAD_FORMATS)
    if not formats or set(formats) - allowed:
        raise ValueError(f"formats must be a non-empty subset of {sorted(allowed)}, got {tuple(formats)}")
    model.check_params(params)
    save_state(save_directory, flax_to_pt(_numpy_tree(params)), model.config, formats=tuple(formats))
