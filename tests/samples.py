"""Valid inputs the tests start from: a small policy file, and a state file as imagebak writes it; and a counter
of the bytes the state store writes."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from imagebak.engine.journal import EXECUTIONS, Journal
from imagebak.execution.records import Execution
from imagebak.schedule import ScheduleState
from imagebak.state import StateStore
from imagebak.state.history import HistoryLog

ONE_POLICY = """\
version: 1
accounts:
  sh: {provider: aliyun}
policies:
  - name: web
    account: sh
    region: cn-shanghai
    start: 2026-12-01T02:00:00+08:00
    every: 1d
    instances: [i-1, i-2]
    copy_to: [cn-qingdao]
"""
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
KEY = "acc/cn-shanghai/web"
# An execution record as the engine stores it (Execution.to_dict), in the middle of copying.
EXECUTION: dict[str, Any] = {
    "policy_key": KEY,
    "run_id": "20261201T000000Z",
    "manual": False,
    "started_at": "2026-12-01T00:00:00.000000Z",
    "finished_at": None,
    "policy": {
        "name": "web",
        "account": "acc",
        "region": "cn-shanghai",
        "disks": ["vda", "vdb"],
        "copy_to": [["cn-qingdao", None], ["cn-beijing", None]],
        "image_name": "{policy}-{instance}-{time}",
        "description": "",
        "retry_failed": 1,
        "vault": None,
    },
    "instances": {
        "i-1": {
            "instance_id": "i-1",
            "status": "copying",
            "reason": "",
            "devices": ["vda", "vdb"],
            "error": None,
            "leftovers": [],
            "image": {
                "key": "k-image",
                "name": "web-i-1-20261201T0000Z",
                "region": "cn-shanghai",
                "source_image_id": None,
                "state": "available",
                "ref": "m-1",
                "image_id": "m-1",
                "progress": 100,
                "size_gb": 140,
                "attempt": 1,
                "submitted_at": "2026-12-01T00:00:01.000000Z",
                "finished_at": "2026-12-01T00:09:00.000000Z",
                "detail": "",
                "extra_image_ids": [],
                "tagged": True,
                "encrypted": False,
                "attempted_at": "2026-12-01T00:00:00.500000Z",
                "outcome": None,
            },
            "copies": {
                "cn-qingdao/m-1": {
                    "key": "k-copy",
                    "name": "web-i-1-20261201T0000Z",
                    "region": "cn-qingdao",
                    "source_image_id": "m-1",
                    "state": "submitting",
                    "ref": None,
                    "image_id": None,
                    "progress": None,
                    "size_gb": None,
                    "attempt": 1,
                    "submitted_at": None,
                    "finished_at": None,
                    "detail": "",
                    "extra_image_ids": [],
                    "tagged": False,
                    "encrypted": False,
                    "attempted_at": "2026-12-01T00:09:01.000000Z",
                    "outcome": None,
                }
            },
        }
    },
}


def sample() -> ScheduleState:
    return ScheduleState(
        first_seen=NOW,
        start=NOW,
        every=timedelta(days=1),
        enabled=True,
        next_run=NOW + timedelta(days=1),
        last_run=NOW,
    )


def full_state(path: Path) -> Path:
    """A state file written by imagebak's own writers: a schedule, an execution in flight, a history, a point."""
    store = StateStore(path)
    finished = Execution.from_dict({**copy.deepcopy(EXECUTION), "run_id": "20261130T000000Z"})
    running = Execution.from_dict(copy.deepcopy(EXECUTION))
    with store.update() as state:  # as the engine's selection starts executions
        state.set_schedule(KEY, sample())
        for execution in (finished, running):
            state.entry(KEY).setdefault(EXECUTIONS, {})[execution.run_id] = execution.to_dict()
    journal = Journal(store)
    finished.finished_at = "2026-11-30T01:00:00.000000Z"
    journal.save_instance(finished, finished.instances["i-1"])
    journal.finish(finished)
    journal.save_instance(running, running.instances["i-1"])
    journal.close()  # compacted into the state file
    return store.path


def finish(store: StateStore, day: int) -> str:
    """Start and finish one more execution (``day`` days after the first) through the journal; its run id."""
    run = (NOW + timedelta(days=day)).strftime("%Y%m%dT%H%M%SZ")
    execution = Execution.from_dict({**copy.deepcopy(EXECUTION), "run_id": run})
    with store.update() as state:
        state.entry(KEY).setdefault(EXECUTIONS, {})[run] = execution.to_dict()
    journal = Journal(store)
    execution.finished_at = "2026-12-01T01:00:00.000000Z"
    journal.finish(execution)
    journal.close()
    return run


class Writes:
    """Every byte the state store puts on disk, by file, counted where it is written."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.appended: list[int] = []
        self.rewritten: list[int] = []  # the history log's
        self.state: list[int] = []  # state.json's
        put, write = HistoryLog._put, StateStore._write

        def counted_put(log: HistoryLog, payload: bytes, *, append: bool) -> None:
            put(log, payload, append=append)
            (self.appended if append else self.rewritten).append(len(payload))

        def counted_write(store: StateStore, data: dict[str, Any]) -> None:
            write(store, data)
            self.state.append(store.path.stat().st_size)

        monkeypatch.setattr(HistoryLog, "_put", counted_put)
        monkeypatch.setattr(StateStore, "_write", counted_write)

    def total(self) -> int:
        return sum(self.appended) + sum(self.rewritten) + sum(self.state)
