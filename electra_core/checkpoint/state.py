"""load_state / save_state: whole checkpoints (config.json + weight files) in any supported format."""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from electra_core.checkpoint import h5_io, journal, msgpack_io, safetensors_io
from electra_core.checkpoint.errors import CheckpointError, CheckpointNotFoundError, CheckpointSaveError
from electra_core.checkpoint.lock import checkpoint_lock, local_checkpoint_folder
from electra_core.checkpoint.matching import MatchResult, match_state
from electra_core.checkpoint.names import flax_to_pt, pt_to_flax, pt_to_tf, tf_to_pt
from electra_core.checkpoint.non_finite import warn_non_finite
from electra_core.checkpoint.param_spec import expected_shapes, params_data
from electra_core.checkpoint.shards import check_inside, check_shard_name, previous_shards
from electra_core.checkpoint.stored import materialize, read_all
from electra_core.hub import HubOptions, resolve_file

FORMATS = ("safetensors", "msgpack", "h5")


@dataclass
class LoadedState:
    """``state``: canonical (PyTorch) names -> arrays in PyTorch layout; ``path``: the file read (the
    index for a sharded checkpoint); ``format``: "safetensors" | "msgpack" | "h5"; ``metadata``: the
    file's metadata (safetensors header metadata; {"format": "flax"|"tf"} otherwise); ``match``: with
    ``expected`` shapes given to load_state, the MatchResult whose arrays ``state`` holds."""

    state: dict[str, np.ndarray]
    path: Path
    format: str
    metadata: dict = field(default_factory=dict)
    match: MatchResult | None = None


@dataclass(frozen=True)
class Expectation:
    """What the model takes: canonical names -> shapes, the base-model prefix, and whether tensors of
    another shape are skipped (ignore_mismatched_sizes) instead of raising."""

    shapes: Mapping[str, tuple]
    base_prefix: str = "electra."
    ignore_mismatched_sizes: bool = False


def _files() -> dict:
    return params_data()["files"]


def _finish(state: dict, path: Path, fmt: str, metadata: dict, expected: Expectation | None) -> LoadedState:
    """Read the data of ``state`` (StoredTensors): with ``expected``, only the tensors the model takes,
    after their shapes and dtypes were matched (files.load.shapes_first); otherwise every tensor,
    bounded by its file's size (error.checkpoint.oversized)."""
    if expected is None:
        return LoadedState(read_all(state), path, fmt, metadata)
    match = match_state(expected.shapes, state, base_prefix=expected.base_prefix,
                        ignore_mismatched_sizes=expected.ignore_mismatched_sizes)
    match.state = materialize(match.state)
    warn_non_finite(match.state, path)
    return LoadedState(match.state, path, fmt, metadata, match)


def _from_safetensors_names(arrays: dict, metadata: dict, path: Path) -> dict:
    kind = metadata.get("format", "pt")
    try:
        if kind == "pt":
            return arrays
        if kind == "flax":
            tree: dict = {}
            for name, value in arrays.items():
                node = tree
                *parents, leaf = name.split(".")
                for p in parents:
                    node = node.setdefault(p, {})
                node[leaf] = value
            return flax_to_pt(tree)
        if kind == "tf":
            return tf_to_pt(arrays)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from e
    raise CheckpointError(f"{path}: unknown safetensors metadata format {kind!r}; expected pt, flax or tf")


def _load_safetensors(path: Path, expected: Expectation | None) -> LoadedState:
    with safetensors_io.open_safetensors(path) as (tensors, metadata):
        return _finish(_from_safetensors_names(tensors, metadata, path), path, "safetensors", metadata, expected)


def _shard_path(index_path: Path, entry: str, resolve, local_folder: Path | None) -> Path:
    """The shard file of a weight_map entry, inside the checkpoint folder (error.checkpoint.path_outside)."""
    check_shard_name(index_path, entry)
    shard = resolve(entry, True)
    if local_folder is not None:
        check_inside(local_folder, shard, index_path, entry)
    return shard


def _load_sharded(index_path: Path, resolve, local_folder: Path | None, expected: Expectation | None) -> LoadedState:
    weight_map = safetensors_io.read_index(index_path)
    entries = sorted(set(weight_map.values()))
    shards = [_shard_path(index_path, entry, resolve, local_folder) for entry in entries]
    state: dict = {}
    metadata: dict = {}
    with contextlib.ExitStack() as stack:
        for shard in shards:
            tensors, metadata = stack.enter_context(safetensors_io.open_safetensors(shard))
            state.update(_from_safetensors_names(tensors, metadata, index_path))
        missing = sorted(set(weight_map) - set(state)) if metadata.get("format", "pt") == "pt" else []
        if missing:
            raise CheckpointError(f"{index_path}: shards lack {len(missing)} indexed weight(s), e.g. {missing[:3]}")
        return _finish(state, index_path, "safetensors", metadata, expected)


def _load_msgpack(path: Path, expected: Expectation | None) -> LoadedState:
    tree = msgpack_io.describe_msgpack(path)
    try:
        state = flax_to_pt(tree)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from e
    return _finish(state, path, "msgpack", {"format": "flax"}, expected)


def _load_h5(path: Path, expected: Expectation | None) -> LoadedState:
    with h5_io.open_h5(path) as weights:
        try:
            state = tf_to_pt(weights)
        except ValueError as e:
            raise CheckpointError(f"{path}: {e}") from e
        return _finish(state, path, "h5", {"format": "tf"}, expected)


def _local_folder(name_or_path, index_path: Path) -> Path | None:
    """The folder of the index when ``name_or_path`` is a local directory (None for a hub id, whose
    snapshot files the hub cache itself links to its blobs)."""
    return index_path.parent if Path(name_or_path).is_dir() else None


def load_state(name_or_path: str | os.PathLike, *, hub: HubOptions = HubOptions(), formats: Sequence[str] = FORMATS,
               expected: Mapping[str, tuple] | None = None, base_prefix: str = "electra.",
               ignore_mismatched_sizes: bool = False) -> LoadedState:
    """Read the first checkpoint file present, trying ``formats`` in order, from a directory or hub id.

    ``expected``: the model's canonical names -> shapes. Given, every stored shape and dtype is matched
    against them (match_state with ``base_prefix`` and ``ignore_mismatched_sizes``) before any data is
    read, only the tensors the model takes are read, ``match`` holds the MatchResult, and parameters
    with NaN or inf values are warned about (files.load.non_finite). Without it every tensor is read,
    each bounded by its file's size (error.checkpoint.oversized).

    Raises CheckpointNotFoundError naming every file looked for when none is present, and
    CheckpointError naming the file when a file is corrupt or holds unexpected content.

    A local folder is read under its shared lock (files.save.concurrent), after any half-save left in it
    was completed or discarded (files.save.crash_safe): the state is that of one whole checkpoint.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty sequence of {FORMATS}, got {tuple(formats)}")
    folder = local_checkpoint_folder(name_or_path, hub.subfolder)
    with checkpoint_lock(folder, shared=True) if folder is not None else contextlib.nullcontext():
        return _load(name_or_path, hub, formats, expected, base_prefix, ignore_mismatched_sizes)


def _load(name_or_path, hub: HubOptions, formats, expected, base_prefix, ignore_mismatched_sizes) -> LoadedState:
    """load_state without the lock."""
    files = _files()
    expectation = None if expected is None else Expectation(expected, base_prefix, ignore_mismatched_sizes)

    def resolve(filename: str, required: bool = False) -> Path | None:
        return resolve_file(name_or_path, filename, hub=hub, required=required)

    looked_for = []
    for fmt in formats:
        if fmt == "safetensors":
            looked_for += [files["safetensors"], files["safetensors_index"]]
            path = resolve(files["safetensors"])
            if path is not None:
                return _load_safetensors(path, expectation)
            index = resolve(files["safetensors_index"])
            if index is not None:
                return _load_sharded(index, resolve, _local_folder(name_or_path, index), expectation)
        elif fmt == "msgpack":
            looked_for.append(files["msgpack"])
            path = resolve(files["msgpack"])
            if path is not None:
                return _load_msgpack(path, expectation)
        else:
            looked_for.append(files["h5"])
            path = resolve(files["h5"])
            if path is not None:
                return _load_h5(path, expectation)
    raise CheckpointNotFoundError(
        f"no checkpoint file in {str(name_or_path)!r} (revision={hub.revision!r}): looked for {looked_for}")


# -- saving -------------------------------------------------------------------------------------
def _canonical_arrays(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, value in state.items():
        array = np.asarray(value)
        if array.dtype.kind not in "fc" and array.dtype.name != "bfloat16":
            raise TypeError(f"parameter {name!r} has dtype {array.dtype}; checkpoints hold float arrays")
        arrays[name] = np.ascontiguousarray(array)
    return arrays


def _default_tf_scope(state: Mapping, config: Any) -> str:
    """Model scope of the TF class whose parameters are exactly those of ``state``."""
    data = params_data()
    tied = data["tied"]["name"]
    names = {n for n in state if not n.endswith(tied)}
    scopes = data["naming"]["tf_model_scopes"]
    for class_name, scope in scopes.items():
        if {n for n in expected_shapes(class_name, config) if not n.endswith(tied)} == names:
            return scope
    return next(iter(scopes.values()))


def _config_json(config: Any) -> bytes:
    if hasattr(config, "to_json_string"):
        return config.to_json_string().encode("utf-8")
    return (json.dumps(dict(config), indent=2, sort_keys=True) + "\n").encode("utf-8")


def _write_file(path: Path, data: bytes) -> None:
    journal.step(f"write {path.name}")
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _write_all(tmp: Path, state: dict, config: Any, formats: Sequence[str], tf_model_scope: str | None) -> None:
    files = _files()
    _write_file(tmp / files["config"], _config_json(config))
    if "safetensors" in formats:
        _write_file(tmp / files["safetensors"], safetensors_io.safetensors_bytes(state, {"format": "pt"}))
    if "msgpack" in formats:
        _write_file(tmp / files["msgpack"], msgpack_io.msgpack_bytes(pt_to_flax(state)))
    if "h5" in formats:
        scope = tf_model_scope or _default_tf_scope(state, config)
        journal.step(f"write {files['h5']}")
        h5_io.write_h5(tmp / files["h5"], pt_to_tf(state, scope))
        _sync_file(tmp / files["h5"])


def save_state(directory: str | os.PathLike, state: Mapping[str, Any], config: Any, *,
               formats: Sequence[str] = ("safetensors",), tf_model_scope: str | None = None) -> list[Path]:
    """Write config.json and the weight files of ``formats`` into ``directory``; return their paths.

    ``state``: canonical names -> float arrays in PyTorch layout. ``tf_model_scope``: first component of
    the TF names in tf_model.h5 (default: the scope of the TF class whose parameters ``state`` holds).

    The folder changes as a unit (electra_core.checkpoint.journal, .lock): every file is first written
    and synced in a staging folder inside ``directory``, a journal then commits the save, and only then
    are the files moved into place and the previous checkpoint's other weight files removed
    (files.save.replaces_checkpoint). A save that fails or is interrupted leaves the previous checkpoint
    (files.save.atomic); one killed at any instant leaves a half-save that the next load or save
    completes or discards (files.save.crash_safe). The whole save holds the folder's exclusive lock
    (files.save.concurrent). A first save that fails removes the folder it created.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty sequence of {FORMATS}, got {tuple(formats)}")
    if not state:
        raise ValueError("refusing to save an empty state dict")
    arrays = _canonical_arrays(state)
    target = Path(directory).absolute()
    journal.reset_steps()
    with checkpoint_lock(target, shared=False, create=True) as created:
        try:
            return _save_locked(target, arrays, config, formats, tf_model_scope)
        except BaseException:
            _remove_if_empty(target, created)
            raise


def _save_locked(target: Path, arrays: dict, config: Any, formats: Sequence[str],
                 tf_model_scope: str | None) -> list[Path]:
    """Stage, commit and apply one save (the caller holds the exclusive lock of ``target``)."""
    try:
        staging = journal.new_staging(target)
    except OSError as e:
        raise CheckpointSaveError(f"saving the checkpoint to {str(target)!r} failed, existing files left "
                                  f"unchanged: {type(e).__name__}: {e}") from e
    try:
        try:
            _write_all(staging, arrays, config, formats, tf_model_scope)
            names = sorted(p.name for p in staging.iterdir())
            _check_nothing_in_the_way(target, names)
            stale = [p.relative_to(target).as_posix() for p in _stale_weight_files(target, set(names))]
            committed = journal.commit(target, staging, names, stale)
        except CheckpointSaveError:
            raise
        except Exception as e:
            raise CheckpointSaveError(f"saving the checkpoint to {str(target)!r} failed, existing files left "
                                      f"unchanged: {type(e).__name__}: {e}") from e
    except BaseException:
        journal.discard(staging)  # not committed: the checkpoint files were not touched
        raise
    journal.apply(target, staging, committed)
    return [target / name for name in names]


def _remove_if_empty(target: Path, created: bool) -> None:
    """After a failed first save: remove the folder it created, if nothing else was put into it."""
    if created:
        with contextlib.suppress(OSError):
            target.rmdir()


def _check_nothing_in_the_way(target: Path, names: Sequence[str]) -> None:
    for name in names:
        dest = target / name
        if dest.is_dir() and not dest.is_symlink():
            raise CheckpointSaveError(f"cannot write {str(dest)!r}: a directory of that name is in the way; "
                                      f"existing files left unchanged")


def _stale_weight_files(target: Path, written: set[str]) -> list[Path]:
    """Weight files of the checkpoint already in ``target`` that this save does not overwrite: the
    single-file formats, the safetensors index and the shards it lists (files.save.replaces_checkpoint)."""
    files = _files()
    names = [files["safetensors"], files["msgpack"], files["h5"], files["safetensors_index"]]
    found = [target / n for n in names if (target / n).is_file() or (target / n).is_symlink()]
    found += previous_shards(target, files["safetensors_index"])
    return [p for p in dict.fromkeys(found) if p.name not in written and p.parent == target]
