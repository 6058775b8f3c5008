"""Atomic file and directory writes: a failed save never destroys an existing checkpoint."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def _new_temporary(path: Path) -> tuple[int, Path]:
    """A new, uniquely named file beside ``path``, opened for writing. Created with mode 0o666 so the
    kernel applies the umask (and any default ACL) exactly as open() does for the final file
    (files.save.mode); tempfile.mkstemp would make it 0600."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {str(path)!r}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = _new_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fsync_directory(path: str | os.PathLike) -> None:
    """Make the entries of directory ``path`` (names created, renamed or removed in it) durable. A no-op
    where directories cannot be opened (Windows) or synced (some network file systems)."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
