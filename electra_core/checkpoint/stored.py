"""Stored tensors known by their shape and dtype before their data is read (files.load.shapes_first).

Each reader (h5_io, safetensors_io, msgpack_io) describes the tensors of a file as StoredTensor
objects; names.py converts them to canonical names (a transpose only flips the recorded shape), and
matching.py compares shapes and dtypes with the model's. Only then is any data read, and only for
the tensors the model takes, so a file that declares huge or unwanted tensors costs nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from electra_core.checkpoint.errors import CheckpointError, CheckpointSizeError


@dataclass(frozen=True)
class StoredTensor:
    """One tensor of ``path``, stored under ``name`` with ``stored_shape`` and ``dtype``.

    ``shape`` is the shape in the layout the holder asked for: the stored shape, reversed once
    ``transposed()``. ``read()`` loads the data (through ``reader``) and checks that it has the
    declared shape."""

    path: Path
    name: str
    stored_shape: tuple[int, ...]
    dtype: np.dtype
    reader: Callable[[], np.ndarray]
    transpose: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return self.stored_shape[::-1] if self.transpose else self.stored_shape

    @property
    def ndim(self) -> int:
        return len(self.stored_shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.stored_shape) * self.dtype.itemsize

    def transposed(self) -> "StoredTensor":
        return replace(self, transpose=not self.transpose)

    def read(self) -> np.ndarray:
        array = np.asarray(self.reader())
        if array.shape != self.stored_shape:
            raise CheckpointError(f"{self.path}: {self.name} declares shape {self.stored_shape} but its data "
                                  f"has shape {array.shape}")
        return np.ascontiguousarray(array.T) if self.transpose else array


def in_memory(path: Path, name: str, array: np.ndarray) -> StoredTensor:
    """A StoredTensor over an array already in memory (a decoded msgpack leaf)."""
    return StoredTensor(path, name, tuple(array.shape), array.dtype, lambda: array)


def check_file_bound(tensor: StoredTensor) -> None:
    """error.checkpoint.oversized: a tensor no expected shape vouches for may not declare more bytes
    than its whole file holds (a compressed dataset inflating past the file is a decompression bomb)."""
    size = Path(tensor.path).stat().st_size
    if tensor.nbytes > size:
        raise CheckpointSizeError(
            f"{tensor.path}: {tensor.name} declares shape {tensor.stored_shape} {tensor.dtype} = {tensor.nbytes} "
            f"bytes, more than the whole file ({size} bytes); refusing to inflate it without an expected shape")


def read_all(tensors: Mapping[str, StoredTensor]) -> dict:
    """Read every tensor, each first bounded by its file's size (check_file_bound): the reader of a
    file whose expected shapes are unknown."""
    for tensor in tensors.values():
        check_file_bound(tensor)
    return {name: tensor.read() for name, tensor in tensors.items()}


def materialize(values: Mapping[str, object]) -> dict[str, np.ndarray]:
    """{name: array}: StoredTensor values read (their shapes were checked by the caller), arrays kept."""
    return {name: value.read() if isinstance(value, StoredTensor) else value for name, value in values.items()}
