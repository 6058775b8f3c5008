"""Errors raised while reading, matching and writing checkpoints."""
from __future__ import annotations

from electra_core.hub import CheckpointNotFoundError  # noqa: F401  (re-exported: a file is missing)


class CheckpointError(ValueError):
    """A checkpoint file is corrupt, truncated, or does not hold what it should; the message names the file."""


class CheckpointShapeError(CheckpointError):
    """Parameters of a checkpoint do not have the shapes the model expects; the message lists
    every such name with the expected and the stored shape."""


class CheckpointSaveError(OSError):
    """Writing a checkpoint failed part-way; the existing files at the destination were left unchanged."""
