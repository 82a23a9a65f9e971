"""The small JSON state file: schedules per policy, executions in flight, and a short history.

Writes are atomic (``fsutil.atomic_write``) and happen under an exclusive lock on a sibling
``.lock`` file, so two cron invocations never interleave a read-modify-write. Every read from
disk is checked against the schema at the end of this module; a file that is not ours, not JSON,
or not valid is reported (exit 4, naming the file and the place in it) and never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from imagebak.errors import StateError
from imagebak.fsutil import atomic_write, try_flock
from imagebak.schedule import ScheduleState

STATE_FORMAT = "imagebak-state"
STATE_VERSION = 1
STATE_ENV = "IMAGEBAK_STATE"
_KEEP = "imagebak will not overwrite it"


def policy_key(account: str, region: str, name: str) -> str:
    """Policies are identified by account, region and name (names are unique per account and region)."""
    return f"{account}/{region}/{name}"


def dump_time(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def load_time(text: str) -> datetime:
    """A stored time (ISO 8601 with a zone) in UTC; ValueError if it is not one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
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
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return State(self.path)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state file: {exc.strerror or exc}") from None
        return State(self.path, self._decode(raw))

    @contextlib.contextmanager
    def update(self) -> Iterator[State]:
        """Lock, read, let the caller change the state, then write it back atomically.

        Nothing is written if the file on disk did not validate, or if the caller raises.
        """
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
        except OSError:
            return (0, 0, 0)  # missing or unreadable: read() says which
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

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
        problem = _check_schema(raw, data)
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
        # compact: indented output takes the pure-Python encoder, 5-6 times slower on a large state
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        try:
            atomic_write(self.path, payload)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write the state file: {exc.strerror or exc}") from None


# -- the schema every state file read from disk must match ------------------------------------------

# Stored times: from a start (1970 to 8999, as the policy file allows) plus intervals of at most a
# year, so a slot or the 12-hour floor computed from them never leaves datetime's range.
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9900, 1, 1, tzinfo=timezone.utc)
_LONGEST_EVERY = 10 * 366 * 86400


def _stored_time(text: str) -> str:
    if not _EARLIEST <= load_time(text) < _LATEST:
        raise ValueError(f"{text} is out of range ({_EARLIEST.year} to {_LATEST.year - 1})")
    return text


_Time = Annotated[str, AfterValidator(_stored_time)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)  # built when a file is read


class _Schedule(_Record):
    """``State.set_schedule`` writes these."""

    first_seen: _Time
    start: _Time
    every_seconds: int = Field(ge=1, le=_LONGEST_EVERY)
    enabled: bool
    next_run: _Time
    last_run: _Time | None = None


class _HistoryInstance(_Record):
    status: str
    reason: str
    image_id: str | None
    extra_image_ids: list[str] = Field(default_factory=list)  # Huawei data-disk images of the same backup
    leftovers: list[str] = Field(default_factory=list)  # failed images the cloud would not delete
    copies: dict[str, str]


class _HistoryEntry(_Record):
    """A finished execution, summarised by the journal."""

    run_id: str
    manual: bool
    started_at: str
    finished_at: str | None
    instances: dict[str, _HistoryInstance]


class _Point(_Record):
    """A recovery point the journal recorded: one execution's images of one instance in one region."""

    instance: str
    region: str
    run: str
    created_at: _Time
    image_ids: list[str] = Field(min_length=1)


class _PolicyEntry(_Record):
    schedule: _Schedule | None = None
    executions: dict[str, dict[str, Any]] = Field(default_factory=dict)  # each checked by _check_execution
    history: list[_HistoryEntry] = Field(default_factory=list)
    points: list[_Point] = Field(default_factory=list)


class _StateFile(_Record):
    format: str
    version: int
    policies: dict[str, _PolicyEntry]


@cache
def _execution_schema() -> TypeAdapter[Any]:
    """The execution records themselves are the schema of executions in flight (built only when some exist)."""
    from imagebak.execution.records import Execution

    return TypeAdapter(Execution)


def _check_schema(raw: bytes, data: dict[str, Any]) -> tuple[str, str] | None:
    """Where the decoded file breaks the schema, and how; None if it does not."""
    try:
        _StateFile.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        return _first_error(exc, ())
    for key, entry in data["policies"].items():
        for run_id, record in entry.get("executions", {}).items():
            problem = _check_execution(record, ("policies", key, "executions", run_id))
            if problem is not None:
                return problem
    return None


def _check_execution(record: dict[str, Any], where: tuple[str, ...]) -> tuple[str, str] | None:
    from imagebak.execution.records import Execution

    try:  # JSON, so that the snapshot's (region, vault) pairs may be arrays, as they are stored
        _execution_schema().validate_json(json.dumps(record), strict=True)
    except ValidationError as exc:
        return _first_error(exc, where)
    try:  # what the engine will do with it: also refuses keys the records do not have
        Execution.from_dict(record)
    except (KeyError, TypeError, ValueError) as exc:
        return ".".join(where), f"unreadable execution record ({exc})"
    return None


def _first_error(exc: ValidationError, where: tuple[str, ...]) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    path = ".".join(str(part) for part in (*where, *error["loc"])) or "(root)"
    message = "unknown key" if error["type"] == "extra_forbidden" else str(error["msg"])
    count = exc.error_count()
    return path, message.removeprefix("Value error, ") + (f" (and {count - 1} more problems)" if count > 1 else "")
