"""The save journal (files.save.crash_safe): how save_state replaces the files of a checkpoint folder so
that a save stopped at any instant (an exception, a signal, kill -9, a power loss) leaves the old or the
new checkpoint, and how the next load or save completes or discards a half-save.

Everything lives inside the checkpoint folder F (a load never reads outside the folder it was given):

* ``F/.saving-<16 hex>/``: the staging folder of one save; only save_state creates such names.
* ``F/.saving-<hex>/<name>``: a new file (config.json, weight files) not yet moved into place.
* ``F/.saving-<hex>/COMMITTED``: the journal, JSON ``{"new": [names], "stale": [paths]}``, written
  atomically once every new file is written and synced. ``stale``: the files of the previous checkpoint
  the save removes (weight files of other formats, a shard index and its shards), relative to F.
* ``F/.saving-<hex>/.previous/``: the old files moved aside while the journal is applied.

Steps of a save and what recovery does when the save stops after each:

1. create the staging folder and write + fsync every new file into it. No journal yet, the checkpoint
   files were not touched: recovery deletes the staging folder (the old checkpoint remains).
2. write the journal (temporary file, fsync, os.replace, fsync of the staging folder). From now on the
   save is committed: recovery rolls it forward.
3. apply: for each new name, move the old file aside into .previous, then move the new file into place;
   then move each stale file aside. Every new name is at every instant either in place (the new file) or
   in the staging folder, so rolling forward (move the staged new files into place, delete the stale
   files, delete the staging folder) always yields the new checkpoint.
4. sync F, delete the journal, delete the staging folder: recovery of a staging folder without a journal
   deletes it (the new checkpoint is already in place).

An exception while applying (a full disk, a KeyboardInterrupt) rolls back in reverse order: each placed new
file goes back into the staging folder before the old file comes back, and the journal is deleted only
after the last old file is back. A rollback stopped half-way keeps the journal, so recovery rolls forward.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import re
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

from electra_core.checkpoint.errors import CheckpointError, CheckpointSaveError
from electra_core.files import atomic_write_bytes, fsync_directory

STAGING_PREFIX = ".saving-"
_STAGING_NAME = re.compile(r"^\.saving-[0-9a-f]{16}$")
JOURNAL_NAME = "COMMITTED"
ASIDE_NAME = ".previous"
_NOFOLLOW = 0 if os.name == "nt" else os.O_NOFOLLOW  # the journal is never read through a link

#: Test hook, never set in normal use: ``ELECTRA_SAVE_FAULT="<step>:<action>[,<step>:<action>...]"`` makes
#: the <step>-th change a save makes to the disk (counted from the start of each save_state call, see
#: step()) fail with ``oserror`` (OSError EIO), ``interrupt`` (KeyboardInterrupt) or ``kill`` (SIGKILL of
#: the process). ``ELECTRA_SAVE_FAULT=trace`` prints each step to stderr.
FAULT_ENV = "ELECTRA_SAVE_FAULT"
_steps = itertools.count(1)


def reset_steps() -> None:
    """Number the steps of the fault hook from 1 again (called at the start of every save_state)."""
    global _steps
    _steps = itertools.count(1)


def step(what: str) -> None:
    """Called before every change the save protocol makes to the disk; injects the fault that
    ELECTRA_SAVE_FAULT (a test hook) names for this step, if any."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    number = next(_steps)
    if spec == "trace":
        os.write(2, f"save step {number}: {what}\n".encode())
        return
    for item in spec.split(","):
        at, _, action = item.partition(":")
        if int(at) != number:
            continue
        if action == "oserror":
            raise OSError(errno.EIO, f"injected fault at save step {number} ({what})")
        if action == "interrupt":
            raise KeyboardInterrupt(f"injected at save step {number} ({what})")
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class Journal:
    """``new``: file names moved into the folder; ``stale``: paths (relative to the folder) removed."""

    new: tuple[str, ...]
    stale: tuple[str, ...]


# -- finding and reading half-saves ------------------------------------------------------------------------
def leftovers(folder: Path) -> list[Path]:
    """The staging folders inside ``folder``: real directories named by save_state (a symlink or any
    other name is never treated as one, so recovery never follows a link out of the folder)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(Path(e.path) for e in entries
                  if _STAGING_NAME.match(e.name) and e.is_dir(follow_symlinks=False))


def _plain_name(name: object) -> bool:
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\x00" not in name and not name.startswith(STAGING_PREFIX))


def _inside_path(folder: Path, path: object) -> bool:
    """A relative path without '..' whose parent resolves inside ``folder`` (links followed)."""
    if not isinstance(path, str) or not path or "\x00" in path or "\\" in path:
        return False
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or pure.parts[0].startswith(STAGING_PREFIX):
        return False
    root = folder.resolve()
    parent = (folder / pure).parent.resolve()
    return parent == root or root in parent.parents


def read_journal(folder: Path, staging: Path) -> Journal | None:
    """The journal of ``staging`` (None when the save was not committed). Entries that are not plain
    names inside ``folder`` are refused with a CheckpointError naming the journal."""
    path = staging / JOURNAL_NAME
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw)
        new, stale = data["new"], data["stale"]
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: the journal of an interrupted save of {str(folder)!r} is unreadable "
                              f"({type(e).__name__}: {e}); remove {str(staging)!r} by hand") from e
    bad = [n for n in new if not _plain_name(n)] + [s for s in stale if not _inside_path(folder, s)]
    if not isinstance(new, list) or not isinstance(stale, list) or bad:
        raise CheckpointError(f"{path}: the journal of an interrupted save of {str(folder)!r} names files "
                              f"outside the folder: {bad[:3]}; remove {str(staging)!r} by hand")
    return Journal(tuple(new), tuple(stale))


# -- saving ------------------------------------------------------------------------------------------------
def new_staging(folder: Path) -> Path:
    """Create an empty staging folder ``folder/.saving-<16 hex>``."""
    while True:
        staging = folder / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
        step(f"create {staging.name}")
        try:
            staging.mkdir()
            return staging
        except FileExistsError:
            continue


def commit(folder: Path, staging: Path, new: Sequence[str], stale: Sequence[str]) -> Journal:
    """Make the staged files and the staging folder durable, then write the journal atomically: from
    here on the save is committed (recovery rolls it forward)."""
    journal = Journal(tuple(new), tuple(stale))
    fsync_directory(staging)
    fsync_directory(folder)
    step("write the journal")
    data = json.dumps({"new": list(journal.new), "stale": list(journal.stale)}).encode()
    atomic_write_bytes(staging / JOURNAL_NAME, data)
    fsync_directory(staging)
    return journal


def apply(folder: Path, staging: Path, journal: Journal) -> None:
    """Move the new files into place and the stale ones aside, then delete the staging folder. Any
    exception rolls every change back (an OSError becomes CheckpointSaveError "existing files left
    unchanged"); a rollback that is itself stopped leaves the journal, and recovery rolls forward."""
    done: list[tuple[str, str]] = []
    try:
        step(f"create {ASIDE_NAME}")
        (staging / ASIDE_NAME).mkdir()
        _place(folder, staging, journal, done)
        fsync_directory(folder)
    except BaseException as error:
        _roll_back_or_explain(folder, staging, done, error)
        discard(staging)
        if isinstance(error, OSError):
            raise CheckpointSaveError(f"writing {str(folder)!r} failed, existing files left unchanged: "
                                      f"{type(error).__name__}: {error}") from error
        raise
    discard(staging)


def _place(folder: Path, staging: Path, journal: Journal, done: list[tuple[str, str]]) -> None:
    """The forward moves of apply(), each recorded in ``done`` once it happened."""
    aside = staging / ASIDE_NAME
    for name in journal.new:
        if os.path.lexists(folder / name):
            step(f"move the old {name} aside")
            os.replace(folder / name, aside / name)
            done.append(("aside", name))
        step(f"place the new {name}")
        os.replace(staging / name, folder / name)
        done.append(("placed", name))
    for path in journal.stale:
        target = aside / "removed" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        step(f"remove the stale {path}")
        os.replace(folder / path, target)
        done.append(("removed", path))


def _roll_back_or_explain(folder: Path, staging: Path, done: list[tuple[str, str]], error: BaseException) -> None:
    """Undo ``done`` in reverse order and delete the journal; if that fails, raise CheckpointSaveError
    saying the half-save stays for the next load or save to complete."""
    try:
        _roll_back(folder, staging, done)
    except OSError as second:
        raise CheckpointSaveError(
            f"writing {str(folder)!r} failed ({type(error).__name__}: {error}) and so did restoring the previous "
            f"files ({type(second).__name__}: {second}); the interrupted save kept in {str(staging)!r} is "
            f"completed by the next load or save of the folder") from error


def _roll_back(folder: Path, staging: Path, done: list[tuple[str, str]]) -> None:
    aside = staging / ASIDE_NAME
    for kind, name in reversed(done):
        step(f"roll back: {kind} {name}")
        if kind == "placed":
            os.replace(folder / name, staging / name)
        elif kind == "aside":
            os.replace(aside / name, folder / name)
        else:
            os.replace(aside / "removed" / name, folder / name)
    fsync_directory(folder)
    step("roll back: delete the journal")
    os.unlink(staging / JOURNAL_NAME)
    fsync_directory(staging)


def discard(staging: Path) -> None:
    """Delete the journal (if any), then the staging folder (symlinks inside are removed, never followed).
    Called once the folder holds a whole checkpoint; if the journal cannot be deleted the staging folder
    stays as it is, for the next recovery to finish (rolling forward a finished save changes nothing)."""
    try:
        step(f"delete {staging.name}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging / JOURNAL_NAME)
        fsync_directory(staging)
    except OSError:
        return
    shutil.rmtree(staging, ignore_errors=True)


# -- recovery ----------------------------------------------------------------------------------------------
def recover(folder: Path) -> None:
    """Complete or discard every half-save in ``folder`` (the caller holds the exclusive lock): with a
    journal, roll forward; without one, the checkpoint was never touched, so delete the staging folder."""
    for staging in leftovers(folder):
        journal = read_journal(folder, staging)
        if journal is not None:
            _roll_forward(folder, staging, journal)
        discard(staging)


def _roll_forward(folder: Path, staging: Path, journal: Journal) -> None:
    for name in journal.new:
        if os.path.lexists(staging / name):
            step(f"recover: place the new {name}")
            os.replace(staging / name, folder / name)
        elif not os.path.lexists(folder / name):
            raise CheckpointError(f"{str(folder)!r}: the interrupted save in {staging.name} lost {name} (in neither "
                                  f"the folder nor the staging folder); remove {str(staging)!r} by hand")
    for path in journal.stale:
        if os.path.lexists(folder / path) and not (folder / path).is_dir():
            step(f"recover: remove the stale {path}")
            os.unlink(folder / path)
    fsync_directory(folder)


def whole_checkpoint(folder: Path, staging: Path) -> str | None:
    """Which whole checkpoint ``folder`` shows while the half-save ``staging`` is left in it (for readers
    that cannot recover it, e.g. without write permission): "old" when the save never touched the
    checkpoint files, "new" when every new file is in place and every stale one gone, else None."""
    journal = read_journal(folder, staging)
    if journal is None:
        return "old"
    staged = [n for n in journal.new if os.path.lexists(staging / n)]
    aside = staging / ASIDE_NAME
    if len(staged) == len(journal.new) and not any(p.is_file() or p.is_symlink() for p in aside.rglob("*")):
        return "old"
    if not staged and not any(os.path.lexists(folder / s) for s in journal.stale):
        return "new"
    return None


def cannot_write(error: OSError) -> bool:
    """Whether ``error`` says the folder is not writable (read-only mount, no permission)."""
    return error.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
