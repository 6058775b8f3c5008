"""Errors raised while reading, matching and writing checkpoints."""
from __future__ import annotations

from electra_core.hub import CheckpointNotFoundError  # noqa: F401  (re-exported: a file is missing)


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or does not hold what it should; the message names the file."""


class CheckpointShapeError(CheckpointError):
    """Parameters of a checkpoint do not have the shapes the model expects; the message lists
    every such name with the expected and the stored shape."""


class CheckpointSaveError(OSError):
    """Writing a checkpoint failed part-way. The existing checkpoint is left as it was; where even the
    rollback failed (the message says so), a committed half-save is kept for the next load or save to
    complete (files.save.crash_safe)."""


class CheckpointStorageError(CheckpointError):
    """error.checkpoint.external_storage: a weight of the file is not stored in the file itself (HDF5
    external storage, a virtual dataset, a soft or external link); the message names file and dataset."""


class CheckpointPathError(CheckpointError):
    """error.checkpoint.path_outside: a shard index names a file outside the checkpoint folder; the
    message names the index and the entry."""


class CheckpointSizeError(CheckpointError):
    """error.checkpoint.oversized: a stored tensor declares a size its data cannot back (or, with no
    expected shape, more bytes than its file); the message names the file and the tensor."""


class NonFiniteWeightsWarning(UserWarning):
    """files.load.non_finite: loaded parameters hold NaN or infinite values; the message names the file and
    each parameter. ``warnings.simplefilter("error", NonFiniteWeightsWarning)`` refuses such checkpoints."""
