"""The small JSON state file: schedules per policy, and room for in-flight work.

Writes are atomic (temp file, fsync, rename, fsync of the folder) and happen under an
exclusive lock on a sibling ``.lock`` file, so two cron invocations never interleave a
read-modify-write. A file that is not ours, or not JSON, is reported and never overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from imagebak.errors import StateError
from imagebak.schedule import ScheduleState

STATE_FORMAT = "imagebak-state"
STATE_VERSION = 1
STATE_ENV = "IMAGEBAK_STATE"


def policy_key(account: str, region: str, name: str) -> str:
    """Policies are identified by account, region and name (names are unique per account and region)."""
    return f"{account}/{region}/{name}"


def _dump_time(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def _load_time(text: Any, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise StateError(f"{where}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise StateError(f"{where}: {text!r} has no time zone")
    return moment.astimezone(timezone.utc)


class State:
    """The decoded state file. Policy entries are plain dicts so other modules can keep their records there."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data = data or {"format": STATE_FORMAT, "version": STATE_VERSION, "policies": {}}

    @property
    def policies(self) -> dict[str, dict[str, Any]]:
        return self.data["policies"]

    def entry(self, key: str) -> dict[str, Any]:
        """The record of one policy, created empty if needed."""
        return self.policies.setdefault(key, {})

    def schedule(self, key: str) -> ScheduleState | None:
        raw = self.policies.get(key, {}).get("schedule")
        if raw is None:
            return None
        where = f"{self.path}: policies.{key}.schedule"
        try:
            return ScheduleState(
                first_seen=_load_time(raw["first_seen"], where),
                start=_load_time(raw["start"], where),
                every=timedelta(seconds=int(raw["every_seconds"])),
                enabled=bool(raw["enabled"]),
                next_run=_load_time(raw["next_run"], where),
                last_run=_load_time(raw["last_run"], where) if raw.get("last_run") else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"{where}: missing or invalid field ({exc}); fix or remove this entry") from None

    def set_schedule(self, key: str, schedule: ScheduleState) -> None:
        self.entry(key)["schedule"] = {
            "first_seen": _dump_time(schedule.first_seen),
            "start": _dump_time(schedule.start),
            "every_seconds": int(schedule.every.total_seconds()),
            "enabled": schedule.enabled,
            "next_run": _dump_time(schedule.next_run),
            "last_run": _dump_time(schedule.last_run),
        }


class StateStore:
    """Reads and atomically rewrites one state file under an exclusive lock."""

    def __init__(self, path: Path, *, lock_timeout: float = 30.0) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.lock_timeout = lock_timeout
        # What this process last wrote, and the file identity it got: if the file still has that
        # identity (every writer renames, so another writer changes the inode), skip re-reading it.
        self._written: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    def read(self) -> State:
        """The current state (empty if no file yet). Renames are atomic, so no lock is needed to read."""
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return State(self.path)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read state file: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise StateError(
                f"{self.path}: state file is not UTF-8 text; imagebak will not overwrite it. "
                "Move it away to start afresh"
            ) from None
        return State(self.path, self._decode(raw))

    @contextlib.contextmanager
    def update(self) -> Iterator[State]:
        """Lock, read, let the caller change the state, then write it back atomically."""
        with self._locked():
            state = self._read_locked()
            yield state
            self._write(state.data)
            self._written = (self._identity(), state.data)

    def _read_locked(self) -> State:
        if self._written is not None and self._written[0] == self._identity():
            return State(self.path, self._written[1])
        return self.read()

    def _identity(self) -> tuple[int, int, int]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return (0, 0, 0)
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _decode(self, raw: str) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise StateError(
                f"{self.path}:{exc.lineno}:{exc.colno}: state file is not valid JSON ({exc.msg}); imagebak will "
                "not overwrite it. Restore it from a backup or move it away to start afresh"
            ) from None
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise StateError(
                f'{self.path}: not an imagebak state file (no "format": "{STATE_FORMAT}"); point --state '
                "at another path or move the file away"
            )
        version = data.get("version")
        if not isinstance(version, int) or version > STATE_VERSION or version < 1:
            raise StateError(
                f"{self.path}: state version {version!r} is not supported (this imagebak writes "
                f"version {STATE_VERSION}); upgrade imagebak"
            )
        if not isinstance(data.get("policies"), dict):
            raise StateError(f'{self.path}: "policies" must be an object; fix it or move the file away')
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_folder()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                        raise StateError(
                            f"{self.lock_path}: could not lock the state file within {self.lock_timeout:.0f}s"
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _ensure_folder(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"{self.path.parent}: cannot create the state folder: {exc.strerror}") from None

    def _write(self, data: dict[str, Any]) -> None:
        # compact: indented output takes the pure-Python encoder, 5-6 times slower on a large state
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            folder = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StateError(f"{self.path}: cannot write the state file: {exc.strerror}") from None
