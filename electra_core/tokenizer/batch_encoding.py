"""BatchEncoding: the tokenizer's result, a dict readable as ``inputs["input_ids"]`` and ``inputs.input_ids``
and unpackable with ``**inputs`` into a model call; optional tensor conversion that imports the
framework only when asked for."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from electra_core.tokenizer._spec import tokenizer_spec


def _as_numpy(key: str, value: Any, dtype: str) -> np.ndarray:
    rows = value if isinstance(value, list) else [value]
    lengths = {len(r) for r in rows if isinstance(r, list)}
    if len(lengths) > 1:
        raise ValueError(f"cannot make a tensor of {key!r}: its rows have different lengths {sorted(lengths)}; "
                         f"pass padding=True (or padding='max_length') to pad them to one length")
    return np.asarray(value, dtype=dtype)


def to_tensor(array: np.ndarray, kind: str):
    """``array`` as a tensor of ``kind`` (np, tf, jax, pt); the framework is imported here, on demand."""
    if kind == "np":
        return array
    if kind == "tf":
        import tensorflow as tf

        return tf.convert_to_tensor(array)
    if kind == "jax":
        import jax.numpy as jnp

        return jnp.asarray(array)
    if kind == "pt":
        import torch

        return torch.from_numpy(np.ascontiguousarray(array))
    raise ValueError(f"return_tensors={kind!r} is not supported; use None or one of "
                     f"{list(tokenizer_spec().call['return_tensors_values'])}")


class BatchEncoding(dict):
    """Mapping of output key -> ids (lists of ints, or tensors when ``return_tensors`` was given).

    ``encodings`` holds the `tokenizers` Encoding of each row (None for a rebuilt mapping).
    """

    def __init__(self, data: dict | None = None, encodings: Sequence | None = None,
                 tensor_type: str | None = None):
        super().__init__(data or {})
        self.encodings = list(encodings) if encodings is not None else None
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key {key!r}; keys: {list(self)}") from None

    def __getstate__(self):
        return {"data": dict(self), "encodings": self.encodings}

    def __setstate__(self, state):
        self.update(state["data"])
        self.encodings = state["encodings"]

    @property
    def data(self) -> dict:
        return dict(self)

    def convert_to_tensors(self, tensor_type: str) -> "BatchEncoding":
        """Convert every value in place to a tensor of ``tensor_type`` (np, tf, jax, pt); rows must have one length."""
        dtypes = tokenizer_spec().call["tensor_dtype"]
        if tensor_type not in dtypes:
            to_tensor(np.zeros(0), tensor_type)  # raises the unsupported-value error
        for key, value in list(self.items()):
            self[key] = to_tensor(_as_numpy(key, value, dtypes[tensor_type]), tensor_type)
        return self

    # -- per-row views of the underlying encodings ---------------------------------------------
    def _encoding(self, batch_index: int):
        if not self.encodings:
            raise ValueError("this BatchEncoding carries no tokenizer encodings")
        if not 0 <= batch_index < len(self.encodings):
            raise ValueError(f"row {batch_index} is out of range [0, {len(self.encodings)})")
        return self.encodings[batch_index]

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of row ``batch_index``."""
        return list(self._encoding(batch_index).tokens)

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of row ``batch_index``, the index of the word it comes from (None for special tokens)."""
        return list(self._encoding(batch_index).word_ids)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """For each token of row ``batch_index``: 0 (first sequence), 1 (second) or None (special token)."""
        return list(self._encoding(batch_index).sequence_ids)
