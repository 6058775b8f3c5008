"""Resolve checkpoint files from a local directory or a model-hub id through huggingface_hub.

Offline use goes through the real hub code path: a populated huggingface_hub cache plus
``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) resolves ``org/name`` without a network.
"""
from __future__ import annotations

import os
from pathlib import Path


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint directory or hub id does not provide a requested file."""


def resolve_file(
    name_or_path: str | os.PathLike,
    filename: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    required: bool = True,
) -> Path | None:
    """Return the local path of ``filename`` in a directory or hub repo, or None if absent and not required."""
    path = Path(name_or_path)
    if path.is_dir():
        candidate = path / filename
        if candidate.is_file():
            return candidate
        if required:
            raise CheckpointNotFoundError(f"{filename} not found in directory {str(path)!r}")
        return None
    if path.exists():
        raise CheckpointNotFoundError(f"{str(path)!r} is a file, expected a checkpoint directory or a hub id")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return Path(
            hf_hub_download(
                str(name_or_path),
                filename,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=local_files_only,
                token=token,
            )
        )
    except HFValidationError as e:
        raise CheckpointNotFoundError(
            f"{str(name_or_path)!r} is neither a directory nor a valid hub id (looked for {filename}): {e}"
        ) from e
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError) as e:
        if required:
            raise CheckpointNotFoundError(
                f"could not resolve {filename} for {str(name_or_path)!r} (revision={revision!r}, "
                f"local_files_only={local_files_only}): {type(e).__name__}: {e}"
            ) from e
        return None
