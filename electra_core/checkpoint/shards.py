"""Shard names of a model.safetensors.index.json: they come from the file, so each must name a file of
the checkpoint folder itself (error.checkpoint.path_outside), when loading and when a save removes
the shards of a previous checkpoint (files.save.replaces_checkpoint)."""
from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from electra_core.checkpoint.errors import CheckpointError, CheckpointPathError
from electra_core.checkpoint.safetensors_io import read_index


def check_shard_name(index_path: Path, entry: str) -> None:
    """A weight_map entry must be a relative path without '..' (in POSIX or Windows spelling)."""
    posix, windows = PurePosixPath(entry), PureWindowsPath(entry)
    if not entry or "\x00" in entry:
        raise CheckpointPathError(f"{index_path}: weight_map entry {entry!r} is not a file name")
    if posix.is_absolute() or windows.is_absolute() or windows.drive or entry.startswith(("/", "\\")):
        raise CheckpointPathError(f"{index_path}: weight_map entry {entry!r} is an absolute path; shards must be "
                                  f"files of the checkpoint folder {str(index_path.parent)!r}")
    if ".." in posix.parts or ".." in windows.parts:
        raise CheckpointPathError(f"{index_path}: weight_map entry {entry!r} leaves the checkpoint folder ('..'); "
                                  f"shards must be files of {str(index_path.parent)!r}")


def check_inside(folder: Path, shard: Path, index_path: Path, entry: str) -> None:
    """The resolved shard (symlinks followed) must lie inside the resolved checkpoint folder."""
    root, real = folder.resolve(), shard.resolve()
    if root not in real.parents:
        raise CheckpointPathError(f"{index_path}: weight_map entry {entry!r} resolves to {str(real)!r}, outside "
                                  f"the checkpoint folder {str(root)!r}")


def previous_shards(folder: Path, index_name: str) -> list[Path]:
    """The shard files inside ``folder`` that its existing index lists (empty when there is no index
    or it does not parse: unindexed shards are never read). Entries outside the folder are skipped."""
    index_path = folder / index_name
    if not index_path.is_file():
        return []
    try:
        entries = sorted(set(read_index(index_path).values()))
    except CheckpointError:
        return []
    shards = []
    for entry in entries:
        try:
            check_shard_name(index_path, entry)
            check_inside(folder, folder / entry, index_path, entry)
        except CheckpointPathError:
            continue
        if (folder / entry).is_file() or (folder / entry).is_symlink():
            shards.append(folder / entry)
    return shards
