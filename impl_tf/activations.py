"""Activation functions by their config name (``ElectraConfig.hidden_act`` / ``summary_activation``).

Every function maps a float tensor of any shape to one of the same shape.
"""
from __future__ import annotations

import math
from typing import Callable

import tensorflow as tf


def gelu_exact(x: tf.Tensor) -> tf.Tensor:
    """x * Phi(x) with the exact normal CDF (erf form)."""
    return 0.5 * x * (1.0 + tf.math.erf(x / tf.cast(math.sqrt(2.0), x.dtype)))


def gelu_tanh(x: tf.Tensor) -> tf.Tensor:
    """The tanh approximation of gelu (gelu_new, gelu_fast, gelu_pytorch_tanh)."""
    c = tf.cast(math.sqrt(2.0 / math.pi), x.dtype)
    return 0.5 * x * (1.0 + tf.tanh(c * (x + 0.044715 * x * x * x)))


def quick_gelu(x: tf.Tensor) -> tf.Tensor:
    """x * sigmoid(1.702 x)."""
    return x * tf.sigmoid(1.702 * x)


def identity(x: tf.Tensor) -> tf.Tensor:
    return x


ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "gelu": gelu_exact,
    "gelu_new": gelu_tanh,
    "gelu_fast": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "quick_gelu": quick_gelu,
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "linear": identity,
}


def activation_by_name(name: str | None) -> Callable[[tf.Tensor], tf.Tensor]:
    """The activation called ``name``; None means identity (``summary_activation: null``)."""
    if name is None:
        return identity
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
