"""Activation functions by their config name (``hidden_act``, ``summary_activation``).

The names and their meaning are spec data (``ElectraConfig.field.hidden_act``): ``gelu`` is the exact
erf form, ``gelu_new`` / ``gelu_fast`` / ``gelu_pytorch_tanh`` the tanh approximation.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp


def _exact_gelu(x):
    return jax.nn.gelu(x, approximate=False)


def _tanh_gelu(x):
    return jax.nn.gelu(x, approximate=True)


def _quick_gelu(x):
    return x * jax.nn.sigmoid(1.702 * x)


def _identity(x):
    return x


_ACTIVATIONS: dict[str, Callable] = {
    "gelu": _exact_gelu,
    "gelu_new": _tanh_gelu,
    "gelu_fast": _tanh_gelu,
    "gelu_pytorch_tanh": _tanh_gelu,
    "quick_gelu": _quick_gelu,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "linear": _identity,
}


def activation(name: str | None) -> Callable:
    """The activation called ``name``; ``None`` (no activation) is the identity."""
    if name is None:
        return _identity
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None
