"""Resolve checkpoint files from a local directory or a model-hub id through huggingface_hub.

Offline use goes through the real hub code path: a populated huggingface_hub cache plus
``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) resolves ``org/name`` without a network.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath, PureWindowsPath


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint directory or hub id does not provide a requested file."""


@dataclass(frozen=True, eq=False)
class HubOptions:
    """The hub options of one from_pretrained call; every file it resolves (config, weights, shards,
    tokenizer files) is requested with all of them (error.loader.keyword)."""

    revision: str | None = None
    cache_dir: str | os.PathLike | None = None
    local_files_only: bool = False
    token: str | bool | None = None
    proxies: dict | None = None
    force_download: bool = False
    subfolder: str | None = None

    def __post_init__(self) -> None:
        check_subfolder(self.subfolder)


HUB_OPTION_NAMES = tuple(f.name for f in fields(HubOptions))


def check_subfolder(subfolder: str | None) -> None:
    """``subfolder`` must be a relative path that stays inside the checkpoint folder or repo."""
    if subfolder is None or subfolder == "":
        return
    if not isinstance(subfolder, str):
        raise TypeError(f"subfolder must be a str, got {type(subfolder).__name__} {subfolder!r}")
    posix, windows = PurePosixPath(subfolder), PureWindowsPath(subfolder)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or subfolder.startswith(("/", "\\")):
        raise ValueError(f"subfolder {subfolder!r} is an absolute path; expected a relative path inside the "
                         f"checkpoint folder or repo")
    if ".." in posix.parts or ".." in windows.parts or "\x00" in subfolder:
        raise ValueError(f"subfolder {subfolder!r} leaves the checkpoint folder ('..'); expected a relative path "
                         f"inside the checkpoint folder or repo")


def _local_file(folder: Path, subfolder: str | None, filename: str) -> Path:
    """``folder/subfolder/filename``, which must resolve inside ``folder`` (no escape through links)."""
    candidate = folder / subfolder / filename if subfolder else folder / filename
    root = folder.resolve()
    if subfolder and root not in candidate.resolve().parents:
        raise ValueError(f"subfolder {subfolder!r} of {str(folder)!r} resolves outside the checkpoint folder")
    return candidate


def resolve_file(name_or_path: str | os.PathLike, filename: str, *, hub: HubOptions = HubOptions(),
                 required: bool = True) -> Path | None:
    """Return the local path of ``filename`` in a directory (its ``hub.subfolder``) or hub repo, requested
    with the call's hub options; None if absent and not required."""
    path = Path(name_or_path)
    if path.is_dir():
        candidate = _local_file(path, hub.subfolder, filename)
        if candidate.is_file():
            return candidate
        if required:
            where = f"{str(path)!r}" + (f" (subfolder {hub.subfolder!r})" if hub.subfolder else "")
            raise CheckpointNotFoundError(f"{filename} not found in directory {where}")
        return None
    if path.exists():
        raise CheckpointNotFoundError(f"{str(path)!r} is a file, expected a checkpoint directory or a hub id")
    return _download(str(name_or_path), filename, hub, required)


def _download(repo_id: str, filename: str, opts: HubOptions, required: bool) -> Path | None:
    import huggingface_hub
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return Path(
            huggingface_hub.hf_hub_download(
                repo_id,
                filename,
                subfolder=opts.subfolder or None,
                revision=opts.revision,
                cache_dir=opts.cache_dir,
                local_files_only=opts.local_files_only,
                token=opts.token,
                proxies=opts.proxies,
                force_download=opts.force_download,
            )
        )
    except HFValidationError as e:
        raise CheckpointNotFoundError(
            f"{repo_id!r} is neither a directory nor a valid hub id (looked for {filename}): {e}"
        ) from e
    except (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError) as e:
        if required:
            raise CheckpointNotFoundError(
                f"could not resolve {filename} for {repo_id!r} (revision={opts.revision!r}, "
                f"local_files_only={opts.local_files_only}): {type(e).__name__}: {e}"
            ) from e
        return None
