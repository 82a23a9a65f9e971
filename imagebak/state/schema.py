"""The schema every state file and every history-log line read from disk must match.

Records with no unknown keys and no type conversions: a file that does not match is reported (exit 4,
naming the place in it) and never overwritten. The execution records themselves are the schema of
executions in flight.
"""

# No `from __future__ import annotations`: the records' field types are read at run time, and
# evaluated annotations spare ``typing.get_type_hints`` compiling each one from text.

from datetime import datetime, timezone
from typing import Any

from imagebak.records import Problem, check, record, spec


def load_time(text: str) -> datetime:
    """A stored time (ISO 8601 with a zone) in UTC; ValueError if it is not one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(timezone.utc)


# Stored times: from a start (1970 to 8999, as the policy file allows) plus intervals of at most a
# year, so a slot or the 12-hour floor computed from them never leaves datetime's range.
_EARLIEST, _LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9900, 1, 1, tzinfo=timezone.utc)
_LONGEST_EVERY = 10 * 366 * 86400


def _stored_time(text: str) -> str:
    if not _EARLIEST <= load_time(text) < _LATEST:
        raise ValueError(f"{text} is out of range ({_EARLIEST.year} to {_LATEST.year - 1})")
    return text


@record
class _Schedule:
    """``State.set_schedule`` writes these."""

    first_seen: str = spec(check=_stored_time)
    start: str = spec(check=_stored_time)
    every_seconds: int = spec(ge=1, le=_LONGEST_EVERY)
    enabled: bool
    next_run: str = spec(check=_stored_time)
    last_run: str | None = spec(None, check=_stored_time)


@record
class _HistoryInstance:
    status: str
    reason: str
    image_id: str | None
    extra_image_ids: list[str] = spec(default_factory=list)  # Huawei data-disk images of the same backup
    leftovers: list[str] = spec(default_factory=list)  # failed images the cloud would not delete
    copies: dict[str, str]


@record
class _HistoryEntry:
    """A finished execution, summarised by the journal."""

    run_id: str
    manual: bool
    started_at: str
    finished_at: str | None
    instances: dict[str, _HistoryInstance]


@record
class _Point:
    """A recovery point the journal recorded: one execution's images of one instance in one region."""

    instance: str
    region: str
    run: str
    created_at: str = spec(check=_stored_time)
    image_ids: list[str] = spec(min_length=1)


@record
class _PolicyEntry:
    schedule: _Schedule | None = None
    executions: dict[str, Any] = spec(default_factory=dict)  # each checked by _check_execution
    history: list[_HistoryEntry] = spec(default_factory=list)  # version 1 only: read, moved to the log
    points: list[_Point] = spec(default_factory=list)  # version 1 only


@record
class _StateFile:
    format: str
    version: int
    policies: dict[str, _PolicyEntry]


@record
class _Entries:
    history: list[_HistoryEntry] = spec(default_factory=list)
    points: list[_Point] = spec(default_factory=list)


@record
class _PointId:
    instance: str
    region: str
    run: str


@record
class _Dropped:
    history: list[str] = spec(default_factory=list)  # run ids
    points: list[_PointId] = spec(default_factory=list)


@record
class _HistoryLine:
    """One line of the history log after its header: a policy's entries replaced, or some added and dropped."""

    key: str
    replace: _Entries | None = None
    add: _Entries | None = None
    drop: _Dropped | None = None


def check_state(data: Any) -> tuple[str, str] | None:
    """Where the decoded state file breaks the schema, and how; None if it does not."""
    state, problems = check(_StateFile, data)
    if problems or state is None:
        return _first(problems)
    for key, entry in state.policies.items():
        for run_id, execution in entry.executions.items():
            problem = _check_execution(execution, ("policies", key, "executions", run_id))
            if problem is not None:
                return problem
    return None


def check_history_line(data: Any) -> tuple[str, str] | None:
    """Where one decoded history-log line breaks the schema, and how; None if it does not."""
    line, problems = check(_HistoryLine, data)
    if problems or line is None:
        return _first(problems)
    if (line.replace is None) == (line.add is None and line.drop is None):
        return "(root)", 'a line has either "replace", or "add" and/or "drop"'
    return None


def _check_execution(record: Any, where: tuple[str, ...]) -> tuple[str, str] | None:
    """The execution records themselves are the schema of executions in flight: every key known, every
    required one there, every value of its type, so ``Execution.from_dict`` cannot fail on what passes."""
    from imagebak.execution.records import Execution

    _, problems = check(Execution, record)
    return _first(problems, where) if problems else None


def _first(problems: list[Problem], where: tuple[str, ...] = ()) -> tuple[str, str]:
    problem = problems[0]
    path = ".".join(str(part) for part in (*where, *problem.path)) or "(root)"
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return path, problem.message + more
