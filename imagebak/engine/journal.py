"""The journal: every change to an execution record, on disk before the cloud call it precedes.

A save appends one JSON line (the one instance record that changed) to this process's
write-ahead log beside the state file, ``<state>.wal.<pid>-<token>``, and fsyncs it: its cost does
not grow with the number of instances or the size of the history. A record of what the cloud
answered (a submission accepted, a status polled: ``durable=False``) is not flushed on its own: it
is written at once and made durable by the next flush, because losing it costs a look-up, never a
duplicate: the record before the call says ``submitting`` with its idempotency key, and a resumed
run adopts what that submission made (``actions.adoption``). Under SIGKILL the page cache keeps it
anyway; only a power loss can drop it. Threads that flush at once share one fsync (group commit).

``compact`` folds the log into the state (one write under the state lock: finished executions'
summaries and recovery points are appended to the state's history log, the rest rewrites
``state.json``) and empties it.

Each process holds an ``flock`` on its own log while it lives. A log whose lock can be taken
belongs to a process that died: ``recover`` folds it into the state (inside the selection
transaction, before unfinished executions are read) and removes it. Replaying a line twice is
harmless: a line replaces one instance record, or moves one execution into the history.
A torn last line (a crash during the append, or a power loss before an answer's line was flushed)
is ignored: a record before a call is flushed before the call, and a lost answer is learnt again
(adopted by its key, or polled).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagebak.errors import StateError
from imagebak.execution.records import Execution, InstanceWork
from imagebak.execution.states import ArtifactState
from imagebak.fsutil import try_flock
from imagebak.state import EXECUTIONS, HISTORY, POINTS, State, StateStore

HISTORY_LENGTH = 20  # finished-execution summaries kept per policy (POINTS stay until retention prunes them)
COMPACT_AFTER_ENTRIES, COMPACT_AFTER_SECONDS = 2000, 30.0  # how long the log may grow between two folds

Entry = dict[str, Any]
Point = dict[str, Any]  # {instance, region, run, created_at, image_ids}


class Journal:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path = store.path.with_name(f"{store.path.name}.wal.{os.getpid()}-{secrets.token_hex(4)}")
        self._pending: list[Entry] = []  # appended since the last compaction, in order
        self._written = 0  # lines written to the log by this process
        self._flushed = 0  # of which an fsync has made durable
        self._flush_lock = threading.Lock()  # one fsync at a time: the others wait for it, then need none
        self._compacted = time.monotonic()
        self._closed = False

    def save_instance(self, execution: Execution, work: InstanceWork, *, durable: bool = True) -> None:
        """Persist one instance's record (the unit that changes with each cloud call).

        The record is read under the journal's lock: two lanes working on copies of one instance
        then append their snapshots in the order they took them, so the last line is the latest.
        ``durable=False``: a record of a cloud answer, which a resumed run can learn again from the
        cloud; it is on disk with the next flush (the next durable record, or a compaction).
        """
        self._append(lambda: {"key": execution.policy_key, "run": execution.run_id, "work": work.to_dict()})
        if durable:
            self._flush()

    def finish(self, execution: Execution) -> None:
        """Move a finished execution into the history; its available images become recovery points."""
        self._append(
            lambda: {
                "key": execution.policy_key,
                "run": execution.run_id,
                "finished": _summary(execution),
                "points": recovery_points(execution),
            }
        )
        self._flush()

    def pruned(self, policy_key: str, point: Point) -> None:
        """A recovery point's images are deleted: it is no longer tracked."""
        self._append(lambda: {"key": policy_key, "run": point["run"], "pruned": _point_id(point)})
        self._flush()

    def compact(self, *, unless_small: bool = False) -> None:
        """Fold what this process logged into the state file, then empty its log.

        ``unless_small``: skip it while the log is short and young; the log alone is durable, so folding
        is only about keeping it short (and the state file a plain read for other commands).
        """
        with self._lock:
            if not self._pending:
                return
            young = time.monotonic() - self._compacted < COMPACT_AFTER_SECONDS
            if unless_small and young and len(self._pending) < COMPACT_AFTER_ENTRIES:
                return
            self._compacted = time.monotonic()
            with self.store.update() as state:
                for entry in self._pending:
                    apply(state, entry)
            self._pending.clear()
            if self._fd is not None:
                _checked(lambda fd=self._fd: os.ftruncate(fd, 0), self._path, "empty the journal")

    def close(self) -> None:
        """Stop journaling, compact, remove this process's log and release its lock."""
        with self._lock:
            self._closed = True
        self.compact()
        with self._flush_lock, self._lock:  # not under an fsync still running
            if self._fd is not None:
                self._path.unlink(missing_ok=True)
                os.close(self._fd)
                self._fd = None

    def _append(self, build: Callable[[], Entry]) -> None:
        """Build and write under the lock, so lines stay whole and in the order of what they record.

        After ``close`` (the run has ended or was interrupted) nothing more is written: a lane still in
        a cloud call then leaves its artifact ``submitting``, which the next run adopts.
        """
        with self._lock:
            if self._closed:
                return
            entry = build()
            line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            fd = self._open()
            _checked(lambda: os.write(fd, line), self._path, "append to the journal")
            self._pending.append(entry)
            self._written += 1

    def _flush(self) -> None:
        """Make every line written so far durable (before the cloud call it precedes), outside the append
        lock. Group commit: one fsync covers every line written before it began, so a thread whose line
        another thread's fsync already covered returns at once instead of queueing for the disk again.
        """
        with self._lock:
            wanted = self._written
        with self._flush_lock:
            if self._flushed >= wanted:
                return
            with self._lock:
                fd, covered = self._fd, self._written
            if fd is not None:  # None: closed meanwhile, after compacting into the state file
                _checked(lambda: os.fsync(fd), self._path, "flush the journal")
            self._flushed = covered

    def _open(self) -> int:
        if self._fd is None:
            fd = _checked(
                lambda: os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
                self._path,
                "create the journal",
            )
            try_flock(fd)  # a fresh, uniquely named file: nobody else holds it
            self._fd = fd
        return self._fd


def replay_all(state: State) -> None:
    """Read-only views (status, history, check): apply every log, live ones too, without locking or removing."""
    for path in sorted(state.path.parent.glob(f"{state.path.name}.wal.*")):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue  # compacted and removed meanwhile
        except OSError as exc:
            raise StateError(f"{path}: cannot read the journal: {exc.strerror}") from None
        for entry in _entries(raw, path):
            apply(state, entry)


def recover(state: State) -> list[Path]:
    """Fold the logs of dead processes into ``state``; returns them, to remove once the state is written.

    Logs of live processes are left alone: their executions are locked by them.
    """
    folded = []
    for path in sorted(state.path.parent.glob(f"{state.path.name}.wal.*")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # compacted and removed by its owner meanwhile
        except OSError as exc:
            raise StateError(f"{path}: cannot read the journal: {exc.strerror}") from None
        try:
            if not try_flock(fd):
                continue
            with os.fdopen(os.dup(fd), "rb") as handle:
                for entry in _entries(handle.read(), path):
                    apply(state, entry)
            folded.append(path)
        finally:
            os.close(fd)
    return folded


def apply(state: State, entry: Entry) -> None:
    """Replay one journal line onto the state (idempotent)."""
    entry_of_policy = state.entry(entry["key"])
    executions = entry_of_policy.setdefault(EXECUTIONS, {})
    if "pruned" in entry:
        points = entry_of_policy.get(POINTS, [])
        entry_of_policy[POINTS] = [p for p in points if _point_id(p) != entry["pruned"]]
        return
    if "finished" in entry:
        executions.pop(entry["run"], None)
        history = entry_of_policy.setdefault(HISTORY, [])
        if all(h.get("run_id") != entry["run"] for h in history):
            history.append(entry["finished"])
        del history[:-HISTORY_LENGTH]
        points = entry_of_policy.setdefault(POINTS, [])
        known = [_point_id(p) for p in points]
        points += [p for p in entry.get("points", []) if _point_id(p) not in known]
        return
    record = executions.get(entry["run"])
    if record is not None:  # absent: the execution already finished (a replayed, older line)
        record["instances"][entry["work"]["instance_id"]] = entry["work"]


def in_flight(state: State) -> list[Execution]:
    """Every unfinished execution in the state, whatever the policy file says now."""
    found = []
    for key, entry in state.policies.items():
        for run_id, raw in entry.get(EXECUTIONS, {}).items():
            try:
                found.append(Execution.from_dict(raw))
            except (KeyError, TypeError, ValueError) as exc:
                raise StateError(
                    f"{state.path}: policies.{key}.{EXECUTIONS}.{run_id}: unreadable record ({exc}); fix or remove it"
                ) from None
    return found


def _entries(raw: bytes, path: Path) -> list[Entry]:
    """The complete lines of a log; a torn last line is dropped, a corrupt middle line is an error."""
    *complete, _torn = raw.split(b"\n")  # no newline yet: that append never finished
    entries = []
    for number, line in enumerate(complete, start=1):
        try:
            entry = json.loads(line)
            if not _well_formed(entry):
                raise ValueError("not a journal entry")
        except ValueError as exc:
            raise StateError(f"{path}:{number}: corrupt journal line ({exc}); move the file away to go on") from None
        entries.append(entry)
    return entries


def _well_formed(entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not isinstance(entry.get("run"), str):
        return False
    if "pruned" in entry:
        return isinstance(entry["pruned"], dict)
    if "finished" in entry:
        return isinstance(entry["finished"], dict) and isinstance(entry.get("points", []), list)
    work = entry.get("work")
    return isinstance(work, dict) and isinstance(work.get("instance_id"), str)


def recovery_points(execution: Execution) -> list[Point]:
    """One point per instance and region where this execution left available images (source and copies)."""
    points: list[Point] = []
    for work in execution.instances.values():
        image = work.image
        if image is None or image.state is not ArtifactState.AVAILABLE or image.image_id is None:
            continue
        made = image.finished_at or execution.started_at
        base = {"instance": work.instance_id, "run": execution.run_id, "created_at": made}
        points.append({**base, "region": image.region, "image_ids": [image.image_id, *image.extra_image_ids]})
        copies: dict[str, list[str]] = {}
        for copy in work.copies.values():
            if copy.state is ArtifactState.AVAILABLE and copy.image_id:
                copies.setdefault(copy.region, []).append(copy.image_id)
        points += [{**base, "region": region, "image_ids": ids} for region, ids in copies.items()]
    return points


def _point_id(point: Point) -> dict[str, str]:
    return {"instance": point["instance"], "region": point["region"], "run": point["run"]}


def _checked(call: Any, path: Path, what: str) -> Any:
    try:
        return call()
    except OSError as exc:
        raise StateError(f"{path}: cannot {what}: {exc.strerror}") from None


def _summary(execution: Execution) -> dict[str, Any]:
    return {
        "run_id": execution.run_id,
        "manual": execution.manual,
        "started_at": execution.started_at,
        "finished_at": execution.finished_at,
        "instances": {
            iid: {
                "status": w.status.value,
                "reason": w.reason,
                "image_id": w.image.image_id if w.image else None,
                "extra_image_ids": list(w.image.extra_image_ids) if w.image else [],
                "leftovers": list(w.leftovers),
                "copies": {k: c.image_id for k, c in w.copies.items() if c.image_id},
            }
            for iid, w in execution.instances.items()
        },
    }
