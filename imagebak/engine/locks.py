"""Per-policy locks, so two overlapping invocations never work on the same policy.

Each policy has a lock file beside the state file; ``flock`` is released by the kernel when
the process dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from imagebak.errors import StateError
from imagebak.fsutil import try_flock


class PolicyLocks:
    """Non-blocking locks held until ``release_all`` (or process exit)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: dict[str, int] = {}

    def acquire(self, policy_key: str) -> bool:
        """True if this process now holds the policy's lock; False if another process does."""
        if policy_key in self._held:
            return True
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            digest = hashlib.sha256(policy_key.encode("utf-8")).hexdigest()[:24]
            fd = os.open(self.folder / f"{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"{self.folder}: cannot create policy lock: {exc.strerror}") from None
        try:
            locked = try_flock(fd)
        except OSError as exc:
            os.close(fd)
            raise StateError(f"{self.folder}: cannot lock policy {policy_key}: {exc.strerror}") from None
        if not locked:
            os.close(fd)
            return False
        self._held[policy_key] = fd
        return True

    def release_all(self) -> None:
        for fd in self._held.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held.clear()
