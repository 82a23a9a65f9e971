"""The history log: finished executions' summaries and recovery points, appended, not rewritten by each run.

``state.json`` holds what a run changes (schedules, executions in flight). What accumulates, each
policy's ``history`` (the journal keeps its last 20 summaries) and ``points`` (recovery points, until
retention prunes them), lives beside it in ``<state>.history.jsonl``: a header line, then JSON
lines that each say what one write changed in one policy: ``add`` (summaries, points), ``drop`` (run
ids gone from the history, pruned points: the tombstones), or ``replace`` (both lists whole). A
write appends only what changed since the log was read, in one fsync'ed append, so a run writes as
many bytes with a year of history as with none.

Reading replays the lines onto the policies of ``state.json``, in order. Replaying is idempotent: an
entry already there is not added again, dropping an absent one does nothing, and an execution whose
summary is in the history is no longer in flight (a reader that caught ``state.json`` just before
the write that finished it sees it finished). A torn last line (a crash during an append) is
ignored, and the next write rewrites the log without it; any other line that does not validate is
an error naming ``file:line`` (exit 4), and nothing is written while it is there.

Compaction rewrites the log atomically (temp file, fsync, rename; under the state lock, like every
write) as one ``replace`` line per policy, once the bytes of what was dropped reach the bytes still
live (and ``COMPACT_FLOOR``): it rewrites no more than was appended since the last one, so its cost
is amortised over the runs that appended it. Entries are immutable once recorded (the journal
drops and adds, it never edits one); a list changed other than by dropping entries and appending
new ones is written as a ``replace`` line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from imagebak.errors import StateError
from imagebak.fsutil import atomic_write
from imagebak.state.schema import check_history_line

HISTORY_FORMAT = "imagebak-history"
HISTORY_VERSION = 1
EXECUTIONS, HISTORY, POINTS = "executions", "history", "points"
COMPACT_FLOOR = 64 * 1024  # dead bytes below which a log is not worth rewriting
_KEEP = "imagebak will not overwrite it"
_PLACE = ("instance", "region", "run")

Entry = dict[str, Any]


def _place(point: Entry) -> tuple[str, ...]:
    return tuple(point[part] for part in _PLACE)


class _Kind(NamedTuple):
    """One list of a policy's entry that the log holds."""

    name: str
    identity: Callable[[Entry], Hashable]  # of an entry
    tombstone: Callable[[Any], Any]  # identity -> what a ``drop`` line names
    dropped: Callable[[Any], Hashable]  # what a ``drop`` line names -> identity


_KINDS = (
    _Kind(HISTORY, lambda summary: summary["run_id"], lambda run: run, lambda run: run),
    _Kind(POINTS, _place, lambda place: dict(zip(_PLACE, place, strict=True)), _place),
)

Kept = dict[str, dict[Hashable, float]]  # per list: its entries' identities, in order, and the bytes each costs


@dataclass
class Stored:
    """What the log holds, as last read or written: what a write compares with, and the log's dead share."""

    policies: dict[str, Kept] = field(default_factory=dict)
    size: int = 0  # bytes of its whole record lines (the header and a torn tail excluded)
    exists: bool = False
    rewrite: bool = False  # a torn last line, or entries ``state.json`` (version 1) still holds

    def live(self) -> float:
        return sum(sum(kept.values()) for lists in self.policies.values() for kept in lists.values())


class HistoryLog:
    """``<state>.history.jsonl``. ``save`` runs under the state lock; ``replay`` needs none."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def replay(self, policies: dict[str, Entry]) -> Stored:
        """Apply the log onto ``policies`` (from ``state.json``); returns what it holds, for ``save``."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Stored()
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the history log: {exc.strerror or exc}") from None
        *lines, torn = raw.split(b"\n")  # no newline after the last line: that append never finished
        if not lines:
            raise self._not_ours()
        self._check_header(lines[0])
        stored = Stored(exists=True, rewrite=bool(torn))
        present: dict[str, dict[str, set[Hashable]]] = {}  # per policy and list: the identities in it
        for number, line in enumerate(lines[1:], start=2):
            record = self._decode(line, number)
            _apply(policies.setdefault(record["key"], {}), record, present.setdefault(record["key"], {}))
            _account(stored, record, len(line) + 1)
        return stored

    def save(self, policies: dict[str, Entry], stored: Stored) -> Stored:
        """Bring the log to ``policies``: append what changed since ``stored``, or rewrite it when that is due."""
        lines = []
        for key in {**stored.policies, **policies}:
            record = _change(key, policies.get(key, {}), stored.policies.get(key, {}))
            if record is not None:
                lines.append(_encode(record))
                _account(stored, record, len(lines[-1]))
        live = stored.live()
        if stored.rewrite or (lines and not stored.exists) or stored.size - live >= max(live, COMPACT_FLOOR):
            return self._compact(policies)
        if lines:
            self._put(b"".join(lines), append=True)
        return stored

    def _compact(self, policies: dict[str, Entry]) -> Stored:
        stored = Stored(exists=True)
        lines = [_encode({"format": HISTORY_FORMAT, "version": HISTORY_VERSION})]
        for key, entry in policies.items():
            lists = {kind.name: entry[kind.name] for kind in _KINDS if entry.get(kind.name)}
            if lists:
                record = {"key": key, "replace": lists}
                lines.append(_encode(record))
                _account(stored, record, len(lines[-1]))
        self._put(b"".join(lines), append=False)
        return stored

    def _put(self, payload: bytes, *, append: bool) -> None:
        """The one place the log is written: an fsync'ed append to it, or an atomic rewrite of it."""
        try:
            if append:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
                try:
                    view = memoryview(payload)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                atomic_write(self.path, payload)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write the history log: {exc.strerror or exc}") from None

    def _check_header(self, line: bytes) -> None:
        try:
            header = json.loads(line)
        except (ValueError, RecursionError):
            header = None
        if not isinstance(header, dict) or header.get("format") != HISTORY_FORMAT or len(header) != 2:
            raise self._not_ours()
        version = header.get("version")
        if type(version) is not int or not 1 <= version <= HISTORY_VERSION:
            raise StateError(
                f"{self.path}:1: history log version {version!r} is not supported (this imagebak writes "
                f"version {HISTORY_VERSION}); upgrade imagebak"
            )

    def _not_ours(self) -> StateError:
        return StateError(
            f'{self.path}:1: not an imagebak history log (its first line is not {{"format": "{HISTORY_FORMAT}", '
            f'"version": {HISTORY_VERSION}}}); {_KEEP}. Move it away (the history and recovery points it holds '
            "are then forgotten)"
        )

    def _decode(self, line: bytes, number: int) -> Entry:
        where = f"{self.path}:{number}"
        fix = f"{_KEEP}. Remove that line (what it records is then forgotten) or restore the file from a backup"
        try:
            record: Entry = json.loads(line)
        except RecursionError:
            raise StateError(f"{where}: history line nested too deeply; {fix}") from None
        except ValueError as exc:  # not JSON, not UTF-8, a number too long to read
            raise StateError(f"{where}: history line is not valid JSON ({exc}); {fix}") from None
        problem = check_history_line(record)
        if problem is not None:
            path, message = problem
            raise StateError(f"{where}: {path}: {message}; {fix}")
        return record


def _apply(entry: Entry, record: Entry, present: dict[str, set[Hashable]]) -> None:
    """Replay one line onto one policy's entry (idempotent). ``present``: the identities in each of its lists,
    kept up to date here, so that a line costs what it names, not what the lists hold (but for a drop)."""
    for kind in _KINDS:
        if "replace" in record:
            items = list(record["replace"].get(kind.name, []))
            if items or kind.name in entry:
                entry[kind.name] = items
            present[kind.name] = {kind.identity(item) for item in items}
            continue
        if kind.name not in present:
            present[kind.name] = {kind.identity(item) for item in entry.get(kind.name, [])}
        seen = present[kind.name]
        gone = {kind.dropped(value) for value in record.get("drop", {}).get(kind.name, [])} & seen
        if gone:
            entry[kind.name] = [item for item in entry[kind.name] if kind.identity(item) not in gone]
            seen -= gone
        for item in record.get("add", {}).get(kind.name, []):
            if kind.identity(item) not in seen:
                seen.add(kind.identity(item))
                entry.setdefault(kind.name, []).append(item)
    listed = record.get("replace") or record.get("add") or {}
    for summary in listed.get(HISTORY, []):
        entry.get(EXECUTIONS, {}).pop(summary["run_id"], None)


def _account(stored: Stored, record: Entry, size: int) -> None:
    """A line's bytes, shared among the entries it names: what it adds is live until dropped, the rest is dead."""
    kept = stored.policies.setdefault(record["key"], {kind.name: {} for kind in _KINDS})
    listed, dropped = record.get("replace") or record.get("add") or {}, record.get("drop") or {}
    count = sum(len(listed.get(kind.name, [])) + len(dropped.get(kind.name, [])) for kind in _KINDS)
    share = size / count if count else 0.0
    stored.size += size
    for kind in _KINDS:
        live = kept[kind.name]
        if "replace" in record:
            live.clear()
        for value in dropped.get(kind.name, []):
            live.pop(kind.dropped(value), None)
        for item in listed.get(kind.name, []):
            live.setdefault(kind.identity(item), share)


def _change(key: str, entry: Entry, kept: Kept) -> Entry | None:
    """The line that brings the log's lists of one policy to ``entry``'s; None if they are the same."""
    add: dict[str, list[Entry]] = {}
    drop: dict[str, list[Any]] = {}
    for kind in _KINDS:
        items = entry.get(kind.name) or []
        before = kept.get(kind.name, {})
        ids = [kind.identity(item) for item in items]
        now = set(ids)
        stay = [identity for identity in before if identity in now]
        if len(now) != len(ids) or ids[: len(stay)] != stay:  # not "oldest dropped, newest appended"
            return {"key": key, "replace": {k.name: entry[k.name] for k in _KINDS if entry.get(k.name)}}
        if len(ids) > len(stay):
            add[kind.name] = items[len(stay) :]
        if len(stay) < len(before):
            drop[kind.name] = [kind.tombstone(identity) for identity in before if identity not in now]
    if not add and not drop:
        return None
    return {"key": key, **({"add": add} if add else {}), **({"drop": drop} if drop else {})}


def _encode(record: Entry) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n").encode("utf-8")
