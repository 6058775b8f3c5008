"""Locks on a checkpoint folder (files.save.concurrent): a folder changes as a unit.

save_state holds an exclusive lock for the whole save (recovery of a half-save included); a load of a
local folder holds a shared lock over everything it reads (from_pretrained: config.json and the weights),
so it sees one whole checkpoint: the one in place when it took the lock. Saves of one folder run one
after the other; loads run side by side and wait for a save in progress.

The lock is ``fcntl.flock`` on the checkpoint folder itself (its directory descriptor), so no lock file
is created: a read-only folder is locked like any other and a checkpoint folder holds only its files.
Where flock is unavailable (Windows, a file system without locks) nothing is locked: saves and loads of
one folder must then not run at the same time. Programs that read the folder without this lock (e.g.
transformers) may see a save half-applied. Hub ids and hub cache paths are never locked.

Entering either lock also recovers the folder (journal.recover): a half-save left by a save that was
killed is completed or discarded first. A reader that cannot write to the folder leaves the half-save
where it is and reads the checkpoint if it is whole (the old one when the killed save never touched the
checkpoint files, the new one when it had moved every file), else raises CheckpointError naming the folder.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator

from electra_core.checkpoint import journal
from electra_core.checkpoint.errors import CheckpointError, CheckpointSaveError

try:
    import fcntl
except ImportError:  # Windows: no locks (see the module docstring)
    fcntl = None



class _Held(threading.local):
    """The locks this thread holds: realpath of a folder -> "shared" | "exclusive"."""

    def __init__(self) -> None:
        self.modes: dict[str, str] = {}


_held = _Held()


def local_checkpoint_folder(name_or_path, subfolder: str | None = None) -> Path | None:
    """The local folder whose files a load of ``name_or_path`` (and ``subfolder``) reads, or None for a hub id."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        return None
    folder = folder / subfolder if subfolder else folder
    return folder if folder.is_dir() else None


@contextlib.contextmanager
def checkpoint_lock(folder: str | os.PathLike, *, shared: bool, create: bool = False) -> Iterator[bool]:
    """Hold the shared (a load) or exclusive (a save) lock of checkpoint ``folder``, after recovering any
    half-save in it. ``create``: make the folder (and its parents) first. Yields whether this call
    created the folder. A thread that already holds a lock on the folder re-enters without locking again
    (an exclusive request inside a shared hold raises RuntimeError instead of waiting forever)."""
    folder = Path(folder).absolute()
    key = os.path.realpath(folder)
    held = _held.modes
    if key in held:
        if held[key] == "shared" and not shared:
            raise RuntimeError(f"cannot save to {str(folder)!r} while this thread is loading from it")
        yield False
        return
    enter = _enter_shared if shared else _enter_exclusive
    fd, created = enter(folder, create)
    held[key] = "shared" if shared else "exclusive"
    try:
        yield created
    finally:
        del held[key]
        _release(fd)


def _enter_exclusive(folder: Path, create: bool) -> tuple[int | None, bool]:
    """The exclusive lock, with every half-save in the folder completed or discarded."""
    fd, created = _acquire(folder, exclusive=True, create=create)
    try:
        journal.recover(folder)
    except OSError as e:
        _release(fd)
        raise CheckpointSaveError(f"{str(folder)!r} holds an interrupted save that could not be completed: "
                                  f"{type(e).__name__}: {e}") from e
    except BaseException:
        _release(fd)
        raise
    return fd, created


def _enter_shared(folder: Path, create: bool) -> tuple[int | None, bool]:
    """The shared lock over a whole checkpoint. Half-saves are recovered under the exclusive lock first;
    no save can start one while the shared lock is held."""
    fd, created = _acquire(folder, exclusive=False, create=create)
    if not journal.leftovers(folder):
        return fd, created
    _release(fd)
    fd, _ = _acquire(folder, exclusive=True, create=False)
    try:
        journal.recover(folder)
    except OSError as e:
        if not journal.cannot_write(e):
            raise CheckpointError(f"{str(folder)!r} holds an interrupted save that could not be completed: "
                                  f"{type(e).__name__}: {e}") from e
    finally:
        _release(fd)
    fd, _ = _acquire(folder, exclusive=False, create=False)
    try:
        _check_whole(folder)
    except BaseException:
        _release(fd)
        raise
    return fd, created


def _check_whole(folder: Path) -> None:
    """Raise CheckpointError naming the folder when a half-save left in it (one this process could not
    recover: no write permission) leaves neither the old nor the new checkpoint in place."""
    for staging in journal.leftovers(folder):
        if journal.whole_checkpoint(folder, staging) is None:
            raise CheckpointError(
                f"{str(folder)!r} holds a save that was interrupted while moving files ({staging.name}) and "
                f"cannot be completed without write permission; load or save it once with write access")


def _acquire(folder: Path, *, exclusive: bool, create: bool) -> tuple[int | None, bool]:
    """Open and flock ``folder``, retrying if it was removed or replaced meanwhile (a failed first save
    removes the folder it created). Returns (descriptor or None when nothing could be locked, created)."""
    while True:
        created = _make(folder) if create else False
        if fcntl is None:
            return None, created
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            if create:
                continue
            return None, False
        except NotADirectoryError as e:
            if create:
                raise CheckpointSaveError(f"cannot save to {str(folder)!r}: it is a file, not a folder") from e
            return None, False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:  # a file system without locks (see the module docstring)
            return fd, created
        except BaseException:
            os.close(fd)
            raise
        if _same_folder(fd, folder):
            return fd, created
        os.close(fd)


def _make(folder: Path) -> bool:
    """Create ``folder`` (and its parents); whether this call created it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        journal.step(f"create the folder {folder.name}")
        folder.mkdir()
        return True
    except FileExistsError:
        return False


def _same_folder(fd: int, folder: Path) -> bool:
    """Whether the locked descriptor is still the folder at that path."""
    try:
        now = os.stat(folder)
    except OSError:
        return False
    locked = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (locked.st_dev, locked.st_ino)


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the only descriptor of the open file drops its flock
