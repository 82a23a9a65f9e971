"""The state file: atomic, locked, 0600, and never silently overwritten when it is not ours."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from imagebak.errors import StateError
from imagebak.schedule import ScheduleState
from imagebak.state import StateStore

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def sample() -> ScheduleState:
    return ScheduleState(
        first_seen=NOW,
        start=NOW,
        every=timedelta(days=1),
        enabled=True,
        next_run=NOW + timedelta(days=1),
        last_run=NOW,
    )


def test_round_trip_mode_and_no_leftovers(tmp_path: Path):
    store = StateStore(tmp_path / "sub" / "state.json")
    with store.update() as state:
        state.set_schedule("acc/cn-shanghai/web", sample())
    assert store.read().schedule("acc/cn-shanghai/web") == sample()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["state.json", "state.json.lock"]
    assert json.loads(store.path.read_text())["format"] == "imagebak-state"


def test_missing_file_reads_as_empty(tmp_path: Path):
    assert StateStore(tmp_path / "none.json").read().policies == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "imagebak-state", "version": 1, "policies": {', "state.json:1:"),
        ('{"hello": "world"}', "not an imagebak state file"),
        ('{"format": "imagebak-state", "version": 9, "policies": {}}', "state version 9 is not supported"),
        ('{"format": "imagebak-state", "version": 1, "policies": []}', '"policies" must be an object'),
    ],
)
def test_corrupt_or_foreign_files_are_reported_and_left_alone(tmp_path: Path, content: str, message: str):
    path = tmp_path / "state.json"
    path.write_text(content)
    store = StateStore(path)
    with pytest.raises(StateError, match=message):
        store.read()
    with pytest.raises(StateError), store.update() as state:
        state.policies["x"] = {}
    assert path.read_text() == content


def test_a_bad_schedule_entry_names_its_key(tmp_path: Path):
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps(
            {
                "format": "imagebak-state",
                "version": 1,
                "policies": {"a/r/p": {"schedule": {"first_seen": "yesterday"}}},
            }
        )
    )
    with pytest.raises(StateError, match=r"policies\.a/r/p\.schedule"):
        StateStore(path).read().schedule("a/r/p")


def _increment(path: str, times: int) -> None:
    store = StateStore(Path(path))
    for _ in range(times):
        with store.update() as state:
            entry = state.entry("counter")
            entry["n"] = entry.get("n", 0) + 1


def test_concurrent_writers_never_lose_an_update(tmp_path: Path):
    path = tmp_path / "state.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_increment, args=(str(path), 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert StateStore(path).read().policies["counter"]["n"] == 100


def test_a_write_by_another_process_is_never_lost_to_the_cache(tmp_path: Path):
    path = tmp_path / "state.json"
    mine, theirs = StateStore(path), StateStore(path)
    with mine.update() as state:
        state.entry("a")["n"] = 1
    with theirs.update() as state:  # another process (another store object) writes in between
        state.entry("b")["n"] = 2
    with mine.update() as state:
        state.entry("a")["n"] = 3
    assert StateStore(path).read().policies == {"a": {"n": 3}, "b": {"n": 2}}
