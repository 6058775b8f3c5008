"""Small building blocks shared by the layers: initializers, dropout, a named embedding table.

Shape keys: B batch, S sequence, R table rows, W table width.
"""
from __future__ import annotations

import tensorflow as tf

keras = tf.keras


def normal_initializer(config) -> keras.initializers.Initializer:
    """Truncated normal with stddev ``config.initializer_range`` for every kernel and table."""
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def dropout(x: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
    """Inverted dropout; the identity unless ``training`` and ``rate > 0``. Creates no variables."""
    if not training or not rate:
        return x
    return tf.nn.dropout(x, rate=rate)


class Dense(keras.layers.Layer):
    """y = x @ kernel + bias over the last axis: x (..., In) -> (..., units); kernel (In, units).

    Leading dims are folded into one before a single 2-D matmul (a rank-3 x rank-2 matmul would be a
    broadcast batched matmul)."""

    def __init__(self, units: int, kernel_initializer, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self._initializer = kernel_initializer

    def build(self, input_shape):
        self.in_features = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(self.in_features, self.units),
                                      initializer=self._initializer)
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        self.built = True

    def call(self, x):
        kernel, bias = tf.cast(self.kernel, x.dtype), tf.cast(self.bias, x.dtype)
        if x.shape.rank == 2:
            return tf.matmul(x, kernel) + bias
        lead = tf.shape(x)[:-1]
        y = tf.matmul(tf.reshape(x, (-1, self.in_features)), kernel) + bias
        return tf.reshape(y, tf.concat([lead, [self.units]], axis=0))


def dense(units: int, config, name: str) -> Dense:
    """A Dense layer (kernel (in, units), bias (units,)) initialised like every ELECTRA kernel."""
    return Dense(units, kernel_initializer=normal_initializer(config), name=name)


class LayerNorm(keras.layers.Layer):
    """(x - mean) / sqrt(var + eps) * gamma + beta over the last axis, computed in float32;
    x (..., W) -> (..., W), gamma and beta (W,)."""

    def __init__(self, epsilon: float, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        width = int(input_shape[-1])
        self.gamma = self.add_weight(name="gamma", shape=(width,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(width,), initializer="zeros")
        self.built = True

    def call(self, x):
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
        y = (x32 - mean) * tf.math.rsqrt(variance + self.epsilon)
        y = y * tf.cast(self.gamma, tf.float32) + tf.cast(self.beta, tf.float32)
        return tf.cast(y, x.dtype)


def layer_norm(config, name: str = "LayerNorm") -> LayerNorm:
    """LayerNorm over the last axis (gamma, beta) with ``config.layer_norm_eps``."""
    return LayerNorm(config.layer_norm_eps, name=name)


class EmbeddingTable(keras.layers.Layer):
    """A lookup table (R, W) stored as the single weight ``<name>/<weight_name>``.

    ``weight_name`` is ``weight`` for the word embeddings and ``embeddings`` for the others, the
    variable names transformers' TF checkpoints use.
    """

    def __init__(self, rows: int, width: int, config, weight_name: str = "embeddings", **kwargs):
        super().__init__(**kwargs)
        self.rows, self.width, self.weight_name = rows, width, weight_name
        self._initializer = normal_initializer(config)

    def build(self, input_shape=None):
        self.table = self.add_weight(name=self.weight_name, shape=(self.rows, self.width),
                                     initializer=self._initializer)
        self.built = True

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        """ids (...) int -> (..., W)."""
        return tf.gather(self.table, ids)

    def resize(self, new_rows: int) -> None:
        """Replace the table by one of ``new_rows`` rows keeping the first min(old, new) rows."""
        self.table = replace_variable(self, self.table, (new_rows, self.width), self._initializer)
        self.rows = new_rows


def replace_variable(layer: keras.layers.Layer, old, new_shape: tuple, initializer, axis: int = 0):
    """A new variable of ``new_shape`` at ``old``'s path keeping ``old``'s leading entries along
    ``axis`` (the vocabulary axis); the new entries come from ``initializer``."""
    scope = old.path.rsplit("/", 1)[0]
    new_value = initializer(new_shape, dtype=old.dtype)
    keep = min(new_shape[axis], old.shape[axis])
    old_value = tf.gather(tf.convert_to_tensor(old), tf.range(keep), axis=axis)
    fresh = tf.gather(new_value, tf.range(keep, new_shape[axis]), axis=axis)
    new_value = tf.concat([old_value, fresh], axis=axis)
    tracker = layer._tracker
    tracker.unlock()  # built layers refuse new state; resizing is the one sanctioned exception
    try:
        layer._untrack_variable(old)
        with _name_scopes(scope.split("/")):
            new = layer.add_weight(name=old.name, shape=new_shape, initializer=lambda *a, **k: new_value,
                                   trainable=old.trainable)
    finally:
        tracker.lock()
    return new


class _name_scopes:
    """Enter nested Keras name scopes so a variable gets the path ``a/b/.../name``."""

    def __init__(self, parts):
        self.scopes = [keras.name_scope(p) for p in parts]

    def __enter__(self):
        for s in self.scopes:
            s.__enter__()

    def __exit__(self, *exc):
        for s in reversed(self.scopes):
            s.__exit__(*exc)
