"""File primitives the state file, the emulator's state and the policy locks share.

``atomic_write``: temp file in the same folder, fsync, rename, fsync of the folder, so a crash
leaves either the old file or the new one, never half of one. ``try_flock``: a non-blocking
exclusive ``flock`` that the kernel releases when the process dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path


def atomic_write(path: Path, payload: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``payload`` atomically; raises OSError (the temp file is removed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def try_flock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting: False if another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True
