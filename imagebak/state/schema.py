"""The schema every state file and every history-log line read from disk must match.

Strict pydantic models with no unknown keys: a file that does not match is reported (exit 4, naming
the place in it) and never overwritten. The execution records themselves are the schema of
executions in flight.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator


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


class _PointId(_Record):
    instance: str
    region: str
    run: str


class _Point(_PointId):
    """A recovery point the journal recorded: one execution's images of one instance in one region."""

    created_at: _Time
    image_ids: list[str] = Field(min_length=1)


class _PolicyEntry(_Record):
    schedule: _Schedule | None = None
    executions: dict[str, dict[str, Any]] = Field(default_factory=dict)  # each checked by _check_execution
    history: list[_HistoryEntry] = Field(default_factory=list)  # version 1 only: read, moved to the log
    points: list[_Point] = Field(default_factory=list)  # version 1 only


class _StateFile(_Record):
    format: str
    version: int
    policies: dict[str, _PolicyEntry]


class _Entries(_Record):
    history: list[_HistoryEntry] = Field(default_factory=list)
    points: list[_Point] = Field(default_factory=list)


class _Dropped(_Record):
    history: list[str] = Field(default_factory=list)  # run ids
    points: list[_PointId] = Field(default_factory=list)


class _HistoryLine(_Record):
    """One line of the history log after its header: a policy's entries replaced, or some added and dropped."""

    key: str
    replace: _Entries | None = None
    add: _Entries | None = None
    drop: _Dropped | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _HistoryLine:
        if (self.replace is None) == (self.add is None and self.drop is None):
            raise ValueError('a line has either "replace", or "add" and/or "drop"')
        return self


@cache
def _execution_schema() -> TypeAdapter[Any]:
    """The execution records themselves are the schema of executions in flight (built only when some exist)."""
    from imagebak.execution.records import Execution

    return TypeAdapter(Execution)


def check_state(raw: bytes, data: dict[str, Any]) -> tuple[str, str] | None:
    """Where the decoded state file breaks the schema, and how; None if it does not."""
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


def check_history_line(raw: bytes) -> tuple[str, str] | None:
    """Where one decoded history-log line breaks the schema, and how; None if it does not."""
    try:
        _HistoryLine.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        return _first_error(exc, ())
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
