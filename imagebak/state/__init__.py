"""The state: a small JSON file (schedules per policy, executions in flight) and its history log.

``state.json`` is rewritten whole, so it holds only what a run changes. Each policy's finished-run
summaries (``history``) and recovery points (``points``) accumulate: they live in the append-only
``<state>.history.jsonl`` (``history.py``), replayed on read, so that in memory a policy's entry has
all four keys, as it always had. A write appends to the log what changed there, then rewrites
``state.json`` without those two lists; a version 1 state file (which held them inline) is read as
it is and migrated by its first write.

Writes are atomic (``fsutil.atomic_write``) and happen under an exclusive lock on a sibling
``.lock`` file, so two cron invocations never interleave a read-modify-write. Every read from
disk is checked against the schema (``schema.py``); a file that is not ours, not JSON, or not valid
is reported (exit 4, naming the file and the place in it) and nothing is written while it is there.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from imagebak.errors import StateError
from imagebak.fsutil import atomic_write, try_flock
from imagebak.schedule import ScheduleState
from imagebak.state.history import EXECUTIONS, HISTORY, POINTS, HistoryLog, Stored
from imagebak.state.schema import check_state, load_time

__all__ = [
    "EXECUTIONS",
    "HISTORY",
    "POINTS",
    "STATE_ENV",
    "STATE_FORMAT",
    "STATE_VERSION",
    "State",
    "StateStore",
    "dump_time",
    "load_time",
    "policy_key",
]

STATE_FORMAT = "imagebak-state"
STATE_VERSION = 2  # 1: history and points inline (read, and migrated to the history log by the first write)
STATE_ENV = "IMAGEBAK_STATE"
_KEEP = "imagebak will not overwrite it"


def policy_key(account: str, region: str, name: str) -> str:
    """Policies are identified by account, region and name (names are unique per account and region)."""
    return f"{account}/{region}/{name}"


def dump_time(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


class State:
    """The decoded state, history log replayed. Policy entries are plain dicts so other modules can keep their
    records there; ``stored`` is what the history log held when read (the store appends the difference)."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None, stored: Stored | None = None) -> None:
        self.path = path
        self.data = data or {"format": STATE_FORMAT, "version": STATE_VERSION, "policies": {}}
        self.stored = stored or Stored()

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
        try:  # checked on read (state_schema.ScheduleRecord); this guards entries set in this process
            return ScheduleState(
                first_seen=load_time(raw["first_seen"]),
                start=load_time(raw["start"]),
                every=timedelta(seconds=int(raw["every_seconds"])),
                enabled=bool(raw["enabled"]),
                next_run=load_time(raw["next_run"]),
                last_run=load_time(raw["last_run"]) if raw.get("last_run") else None,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise StateError(
                f"{self.path}: policies.{key}.schedule: missing or invalid field ({exc}); fix or remove this entry"
            ) from None

    def set_schedule(self, key: str, schedule: ScheduleState) -> None:
        self.entry(key)["schedule"] = {
            "first_seen": dump_time(schedule.first_seen),
            "start": dump_time(schedule.start),
            "every_seconds": int(schedule.every.total_seconds()),
            "enabled": schedule.enabled,
            "next_run": dump_time(schedule.next_run),
            "last_run": dump_time(schedule.last_run),
        }


Identity = tuple[tuple[int, int, int], ...]


class StateStore:
    """Reads and writes one state file and its history log, under an exclusive lock."""

    def __init__(self, path: Path, *, lock_timeout: float = 30.0) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.history = HistoryLog(path.with_name(path.name + ".history.jsonl"))
        self.lock_timeout = lock_timeout
        # What this process last wrote, and the files' identities it got: if they still have them (a
        # rewrite renames, an append grows the log), skip re-reading them.
        self._written: tuple[Identity, State] | None = None

    def read(self) -> State:
        """The current state (empty if no file yet), history log replayed. No lock is needed: ``state.json`` is
        read first and is replaced atomically; the log is written before it, so it is at least as new."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file: {exc.strerror or exc}") from None
        else:
            data = self._decode(raw)
        state = State(self.path, data)
        inline = any(HISTORY in entry or POINTS in entry for entry in state.policies.values())
        state.stored = self.history.replay(state.policies)
        state.stored.rewrite |= inline  # version 1: the first write moves them to the log
        return state

    @contextlib.contextmanager
    def update(self) -> Iterator[State]:
        """Lock, read, let the caller change the state, then write it back: the history log's changes first
        (appended, or the log rewritten atomically), then ``state.json`` (atomically).

        Nothing is written if a file on disk did not validate, or if the caller raises.
        """
        with self._locked():
            state = self._read_locked()
            try:
                yield state
                state.stored = self.history.save(state.policies, state.stored)
                self._write(state.data)
            except BaseException:
                self._written = None  # the state in memory may hold changes that are not on disk
                raise
            self._written = (self._identity(), state)

    def _read_locked(self) -> State:
        if self._written is not None and self._written[0] == self._identity():
            return self._written[1]
        return self.read()

    def _identity(self) -> Identity:
        return tuple(_identity(path) for path in (self.path, self.history.path))

    def _decode(self, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise StateError(
                f"{self.path}: state file is not UTF-8 text; {_KEEP}. Move it away to start afresh"
            ) from None
        except json.JSONDecodeError as exc:
            raise StateError(
                f"{self.path}:{exc.lineno}:{exc.colno}: state file is not valid JSON ({exc.msg}); {_KEEP}. "
                "Restore it from a backup or move it away to start afresh"
            ) from None
        except (ValueError, RecursionError) as exc:  # a number too long to read, nesting too deep
            reason = "nested too deeply" if isinstance(exc, RecursionError) else "a number is too long"
            raise StateError(f"{self.path}: state file is not usable JSON ({reason}); {_KEEP}") from None
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise StateError(
                f'{self.path}: not an imagebak state file (no "format": "{STATE_FORMAT}"); point --state '
                "at another path or move the file away"
            )
        version = data.get("version")
        if type(version) is not int or version > STATE_VERSION or version < 1:
            raise StateError(
                f"{self.path}: state version {version!r} is not supported (this imagebak writes "
                f"version {STATE_VERSION}); upgrade imagebak"
            )
        if not isinstance(data.get("policies"), dict):
            raise StateError(f'{self.path}: "policies" must be an object; fix it or move the file away')
        problem = check_state(data)
        if problem is not None:
            where, message = problem
            raise StateError(
                f"{self.path}: {where}: {message}; {_KEEP}. Fix or remove that entry, or move the file away"
            )
        return data

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_folder()
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"{self.lock_path}: cannot open the state file's lock: {exc.strerror or exc}") from None
        try:
            deadline = time.monotonic() + self.lock_timeout
            while not self._try_lock(fd):
                if time.monotonic() > deadline:
                    raise StateError(f"{self.lock_path}: could not lock the state file within {self.lock_timeout:.0f}s")
                time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _try_lock(self, fd: int) -> bool:
        try:
            return try_flock(fd)
        except OSError as exc:
            raise StateError(f"{self.lock_path}: cannot lock the state file: {exc.strerror or exc}") from None

    def _ensure_folder(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StateError(f"{self.path.parent}: cannot create the state folder: {exc.strerror or exc}") from None

    def _write(self, data: dict[str, Any]) -> None:
        """Rewrite ``state.json`` with what the history log does not hold."""
        small = {
            key: {k: v for k, v in entry.items() if k not in (HISTORY, POINTS)}
            for key, entry in data["policies"].items()
        }
        hot = {**data, "version": STATE_VERSION, "policies": {key: entry for key, entry in small.items() if entry}}
        # compact: indented output takes the pure-Python encoder, 5-6 times slower on a large state
        payload = json.dumps(hot, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        try:
            atomic_write(self.path, payload)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write the state file: {exc.strerror or exc}") from None


def _identity(path: Path) -> tuple[int, int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (0, 0, 0)  # missing or unreadable: read() says which
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
