"""The state's history log: appended per run, replayed on read, compacted when mostly dead, never rewritten invalid."""

from __future__ import annotations

import copy
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from samples import EXECUTION, KEY, ONE_POLICY, Writes, finish, full_state

from imagebak.cli import cli
from imagebak.engine.journal import HISTORY_LENGTH, Journal
from imagebak.errors import StateError
from imagebak.execution.records import Execution
from imagebak.state import StateStore
from imagebak.state import history as history_log


def log_of(state: Path) -> Path:
    return state.with_name(state.name + ".history.jsonl")


def lines(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_of(state).read_bytes().splitlines()]


def snapshot(*paths: Path) -> list[tuple[bytes, int]]:
    return [(p.read_bytes(), p.stat().st_mtime_ns) for p in paths]


def test_a_finished_execution_is_one_appended_line_and_state_json_keeps_none_of_it(tmp_path: Path):
    path = full_state(tmp_path / "state.json")
    before, inode = log_of(path).read_bytes(), log_of(path).stat().st_ino
    run = finish(StateStore(path), 2)
    after = log_of(path).read_bytes()
    assert after.startswith(before) and log_of(path).stat().st_ino == inode  # appended, not rewritten
    (line,) = [json.loads(raw) for raw in after[len(before) :].splitlines()]
    assert line["key"] == KEY and sorted(line) == ["add", "key"]
    assert [s["run_id"] for s in line["add"]["history"]] == [run]
    assert [(p["run"], p["region"], p["image_ids"]) for p in line["add"]["points"]] == [(run, "cn-shanghai", ["m-1"])]
    raw = path.read_text(encoding="utf-8")
    assert '"history"' not in raw and '"points"' not in raw and run not in raw  # finished: gone from state.json
    entry = StateStore(path).read().policies[KEY]
    assert [s["run_id"] for s in entry["history"]] == ["20261130T000000Z", run]
    assert run not in entry["executions"]


def test_a_pruned_point_is_a_tombstone_line(tmp_path: Path):
    path = full_state(tmp_path / "state.json")
    store = StateStore(path)
    (point,) = store.read().policies[KEY]["points"]
    journal = Journal(store)
    journal.pruned(KEY, point)
    journal.close()
    tombstone = {"instance": "i-1", "region": "cn-shanghai", "run": point["run"]}
    assert lines(path)[-1] == {"key": KEY, "drop": {"points": [tombstone]}}
    assert StateStore(path).read().policies[KEY]["points"] == []


def test_replaying_twice_is_harmless(tmp_path: Path):
    path = full_state(tmp_path / "state.json")
    store = StateStore(path)
    for day in (2, 3):
        finish(store, day)
    (point, *_) = store.read().policies[KEY]["points"]
    journal = Journal(store)
    journal.pruned(KEY, point)
    journal.close()
    expected = StateStore(path).read().policies
    header, *records = log_of(path).read_bytes().splitlines(keepends=True)
    log_of(path).write_bytes(header + b"".join(records) + b"".join(records))  # every line replayed again
    assert StateStore(path).read().policies == expected
    state = StateStore(path).read()
    StateStore(path).history.replay(state.policies)  # and the whole log onto what it already made
    assert state.policies == expected


def test_the_log_is_compacted_once_its_dead_bytes_reach_its_live_ones(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(history_log, "COMPACT_FLOOR", 4096)
    writes = Writes(monkeypatch)
    store = StateStore(tmp_path / "state.json")
    compactions = []  # (day, bytes appended before it, bytes it wrote)
    for day in range(1, 4 * HISTORY_LENGTH):  # past the history's length, each finish drops the oldest summary
        before = log_of(store.path).stat() if day > 1 else None
        rewrites = len(writes.rewritten)
        finish(store, day)
        view = StateStore(store.path).read().policies
        assert len(view[KEY]["history"]) == min(day, HISTORY_LENGTH) and len(view[KEY]["points"]) == day
        if len(writes.rewritten) == rewrites:
            assert before is not None and log_of(store.path).stat().st_size == before.st_size + writes.appended[-1]
            continue
        compactions.append((day, sum(writes.appended), writes.rewritten[-1]))
        assert before is None or log_of(store.path).stat().st_ino != before.st_ino  # replaced, not appended to
        assert [sorted(r) for r in lines(store.path)[1:]] == [["key", "replace"]]
    assert compactions[0][0] == 1 and len(compactions) >= 2  # the first write creates the log
    for (_, appended_before, _), (_, appended_then, rewritten) in itertools.pairwise(compactions):
        assert rewritten <= appended_then - appended_before  # no more than was appended since the last one


def test_a_torn_last_line_is_ignored_and_the_next_write_drops_it(tmp_path: Path):
    path = full_state(tmp_path / "state.json")
    expected = StateStore(path).read().policies
    torn = b'{"key":"' + KEY.encode() + b'","add":{"history":[{"run_id":"2026'
    with log_of(path).open("ab") as handle:
        handle.write(torn)  # a crash in the middle of an append
    assert StateStore(path).read().policies == expected
    run = finish(StateStore(path), 2)
    raw = log_of(path).read_bytes()
    assert torn not in raw and raw.endswith(b"\n")
    assert lines(path)[0] == {"format": "imagebak-history", "version": 1}
    assert [s["run_id"] for s in StateStore(path).read().policies[KEY]["history"]] == ["20261130T000000Z", run]


def _in_folder(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "policies.yaml"
    config.write_text(ONE_POLICY, encoding="utf-8")
    return config, full_state(tmp_path / ".imagebak" / "state.json")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{not json", "history line is not valid JSON"),
        (
            b'{"key": "a/r/p", "add": {"points": [{"instance": "i-1"}]}}',
            "add.points.0.region: required key 'region' is missing",
        ),
        (b'{"key": "a/r/p", "replace": {}, "drop": {}}', 'either "replace", or "add" and/or "drop"'),
        (b'{"key": "a/r/p", "add": {}, "bogus": 1}', "bogus: unknown key"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_a_corrupt_line_is_exit_4_naming_file_and_line_and_nothing_is_written(tmp_path: Path, line: bytes, message):
    config, path = _in_folder(tmp_path)
    finish(StateStore(path), 2)
    header, _, last = log_of(path).read_bytes().splitlines(keepends=True)
    log_of(path).write_bytes(header + line + b"\n" + last)  # the corrupt line in the middle: line 2
    before = snapshot(path, log_of(path))
    for command in (["history"], ["status"], ["check"], ["run", "--all", "--dry-run"], ["run", "--all"]):
        result = CliRunner().invoke(cli, ["-c", str(config), *command], env={"IMAGEBAK_NOW": "2026-12-05T00:00:00Z"})
        output = result.output.strip().removeprefix("IMAGEBAK UNKNOWN - ")
        assert result.exit_code == (3 if command == ["check"] else 4), (command, result.output)
        assert f"{log_of(path)}:2: " in output and message in output and "\n" not in output, output
        assert "Remove that line" in output
    assert snapshot(path, log_of(path)) == before


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b'{"format": "imagebak-history", "version": 9}', "history log version 9 is not supported"),
        (b'{"format": "something else", "version": 1}', "not an imagebak history log"),
        (b"", "not an imagebak history log"),
    ],
)
def test_a_log_that_is_not_ours_is_refused(tmp_path: Path, header: bytes, message: str):
    path = full_state(tmp_path / "state.json")
    _, *records = log_of(path).read_bytes().splitlines(keepends=True)
    log_of(path).write_bytes(header + b"\n" + b"".join(records) if header else b"")
    before = snapshot(path, log_of(path))
    with pytest.raises(StateError, match=message) as error, StateStore(path).update() as state:
        state.entry("x")
    assert str(error.value).startswith(f"{log_of(path)}:1: ")
    assert snapshot(path, log_of(path)) == before


def test_a_version_1_state_file_is_read_as_it_is_and_migrated_by_its_first_write(tmp_path: Path):
    config, path = _in_folder(tmp_path)
    merged = StateStore(path).read().data
    old = {**merged, "version": 1}  # what imagebak wrote before the log: history and points inline
    path.write_text(json.dumps(old), encoding="utf-8")
    log_of(path).unlink()
    assert StateStore(path).read().policies == merged["policies"]
    result = CliRunner().invoke(cli, ["-c", str(config), "history", "--format", "json"])
    assert result.exit_code == 0 and [e["run_id"] for e in json.loads(result.output)["executions"]] == [
        "20261130T000000Z"
    ]
    with StateStore(path).update():  # any write: here an empty one
        pass
    data = json.loads(path.read_bytes())
    assert data["version"] == 2 and sorted(data["policies"][KEY]) == ["executions", "schedule"]
    assert [sorted(r) for r in lines(path)[1:]] == [["key", "replace"]]
    assert StateStore(path).read().policies == merged["policies"]
    # a crash between the two files of the migration (log written, state.json still version 1): read the same
    migrated = log_of(path).read_bytes()
    path.write_text(json.dumps(old), encoding="utf-8")
    assert StateStore(path).read().policies == merged["policies"]
    with StateStore(path).update():
        pass
    assert log_of(path).read_bytes() == migrated and json.loads(path.read_bytes())["version"] == 2


def test_a_reader_that_caught_state_json_before_a_finish_sees_the_execution_finished(tmp_path: Path):
    """The log is written first: state.json from just before the write that finished an execution, with the log
    from just after it (a lock-free reader between the two, or a crash between them), shows it finished."""
    path = full_state(tmp_path / "state.json")
    earlier = path.read_bytes()
    store = StateStore(path)
    execution = Execution.from_dict(copy.deepcopy(EXECUTION))  # the one full_state left in flight
    journal = Journal(store)
    journal.finish(execution)
    journal.close()
    path.write_bytes(earlier)
    entry = StateStore(path).read().policies[KEY]
    assert entry["executions"] == {}
    assert [s["run_id"] for s in entry["history"]] == ["20261130T000000Z", EXECUTION["run_id"]]


def test_nothing_but_the_lock_is_left_beside_the_files(tmp_path: Path):
    path = full_state(tmp_path / "state.json")
    for day in (2, 3):
        finish(StateStore(path), day)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["state.json", "state.json.history.jsonl", "state.json.lock"]
    assert all(os.stat(tmp_path / name).st_mode & 0o777 == 0o600 for name in names)
