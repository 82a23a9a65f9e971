"""The state file: atomic, locked, 0600, checked against its schema, never overwritten when it is not ours."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from samples import EXECUTION, KEY, full_state, sample

from imagebak.engine.journal import in_flight
from imagebak.errors import StateError
from imagebak.state import StateStore


def test_round_trip_mode_and_no_leftovers(tmp_path: Path):
    store = StateStore(tmp_path / "sub" / "state.json")
    with store.update() as state:
        state.set_schedule(KEY, sample())
    assert store.read().schedule(KEY) == sample()
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["state.json", "state.json.lock"]
    assert json.loads(store.path.read_text())["format"] == "imagebak-state"


def test_missing_file_reads_as_empty(tmp_path: Path):
    assert StateStore(tmp_path / "none.json").read().policies == {}


def test_what_imagebak_writes_validates_and_keeps_its_shape(tmp_path: Path):
    path = full_state(tmp_path / "state.json")
    data = json.loads(path.read_bytes())
    assert data["version"] == 2 and sorted(data["policies"][KEY]) == ["executions", "schedule"]
    header, line = [json.loads(line) for line in (tmp_path / "state.json.history.jsonl").read_bytes().splitlines()]
    assert header == {"format": "imagebak-history", "version": 1}
    assert line["key"] == KEY and sorted(line["replace"]) == ["history", "points"]
    entry = StateStore(path).read().policies[KEY]  # the history log replayed onto state.json
    assert sorted(entry) == ["executions", "history", "points", "schedule"]
    assert entry["points"] == line["replace"]["points"]
    assert entry["points"] == [
        {
            "instance": "i-1",
            "region": "cn-shanghai",
            "run": "20261130T000000Z",
            "created_at": "2026-12-01T00:09:00.000000Z",
            "image_ids": ["m-1"],
        }
    ]
    assert entry["executions"]["20261201T000000Z"] == EXECUTION
    assert [h["run_id"] for h in entry["history"]] == ["20261130T000000Z"]
    state = StateStore(path).read()  # a fresh store: validated on read
    assert state.schedule(KEY) == sample()
    assert [e.run_id for e in in_flight(state)] == ["20261201T000000Z"]
    log = tmp_path / "state.json.history.jsonl"
    before = (path.read_bytes(), log.read_bytes(), log.stat().st_mtime_ns)
    with StateStore(path).update():
        pass
    assert (path.read_bytes(), log.read_bytes(), log.stat().st_mtime_ns) == before  # read + write back: no change


def _broken(mutate) -> dict[str, Any]:
    data: dict[str, Any] = {
        "format": "imagebak-state",
        "version": 1,
        "policies": {
            KEY: {
                "schedule": {
                    "first_seen": "2026-12-01T00:00:00.000000Z",
                    "start": "2026-12-01T00:00:00.000000Z",
                    "every_seconds": 86400,
                    "enabled": True,
                    "next_run": "2026-12-02T00:00:00.000000Z",
                    "last_run": None,
                },
                "executions": {EXECUTION["run_id"]: copy.deepcopy(EXECUTION)},
            }
        },
    }
    mutate(data)
    return data


def _set(*path: Any, value: Any):
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for part in path[:-1]:
            node = node[part]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value

    return mutate


RUN = ("policies", KEY, "executions", EXECUTION["run_id"])
IMAGE = (*RUN, "instances", "i-1", "image")
NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "imagebak-state", "version": 1, "policies": {', "state.json:1:"),
        ('{"hello": "world"}', "not an imagebak state file"),
        ('{"format": "imagebak-state", "version": 9, "policies": {}}', "state version 9 is not supported"),
        ('{"format": "imagebak-state", "version": true, "policies": {}}', "state version True is not supported"),
        ('{"format": "imagebak-state", "version": 1, "policies": []}', '"policies" must be an object'),
        ('{"format": "imagebak-state", "version": 1, "policies": {"k": 5}}', "policies.k: "),
        (
            '{"format": "imagebak-state", "version": 1, "policies": {"k": {"history": ' + NESTED + "}}}",
            "nested too deeply",
        ),
        (
            '{"format": "imagebak-state", "version": 1, "policies": {"k": {"n": 1' + "0" * 5000 + "}}}",
            "a number is too long",
        ),
        (b'{"format": "imagebak-state", "version": 1, "policies": {"\xff": {}}}', "not UTF-8"),
        (_broken(_set("policies", KEY, "schedulE", value={})), f"policies.{KEY}.schedulE: unknown key"),
        (_broken(_set("policies", KEY, "schedule", "bogus", value=1)), "schedule.bogus: unknown key"),
        (_broken(_set("policies", KEY, "schedule", "next_run", value="soon")), "schedule.next_run: "),
        (
            _broken(_set("policies", KEY, "schedule", "next_run", value="9999-12-31T00:00:00.000000Z")),
            "schedule.next_run: 9999-12-31T00:00:00.000000Z is out of range",
        ),
        (_broken(_set("policies", KEY, "schedule", "every_seconds", value=10**30)), "schedule.every_seconds"),
        (_broken(_set("policies", KEY, "schedule", "every_seconds", value="86400")), "schedule.every_seconds"),
        (_broken(_set("policies", KEY, "schedule", "enabled", value="yes")), "schedule.enabled"),
        (_broken(_set(*RUN, "instances", value=KeyError)), ".executions.20261201T000000Z.instances: "),
        (_broken(_set(*RUN, "instances", "i-1", value=[])), "instances.i-1: "),
        (_broken(_set(*IMAGE, "attempt", value="1")), "i-1.image.attempt: "),
        (_broken(_set(*IMAGE, "bogus", value=1)), ".image.bogus: unknown key 'bogus'"),
        (_broken(_set(*RUN, "policy", "copy_to", value=[["a", None, "b"]])), "policy.copy_to.0"),
        (_broken(_set("policies", KEY, "history", value=[{"run_id": "x"}])), f"policies.{KEY}.history.0."),
    ],
)
def test_corrupt_or_foreign_files_are_reported_and_left_alone(tmp_path: Path, content: Any, message: str):
    path = tmp_path / "state.json"
    raw = content if isinstance(content, bytes) else (content if isinstance(content, str) else json.dumps(content))
    path.write_bytes(raw.encode() if isinstance(raw, str) else raw)
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    store = StateStore(path)
    with pytest.raises(StateError) as read_error:
        store.read()
    assert message in str(read_error.value) and str(read_error.value).startswith(str(path))
    assert "\n" not in str(read_error.value)
    with pytest.raises(StateError), store.update() as state:
        state.policies["x"] = {}
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_a_bad_schedule_set_in_this_process_names_its_key(tmp_path: Path):
    store = StateStore(tmp_path / "state.json")
    state = store.read()
    state.entry("a/r/p")["schedule"] = {"first_seen": "yesterday"}
    with pytest.raises(StateError, match=r"policies\.a/r/p\.schedule"):
        state.schedule("a/r/p")


@pytest.mark.parametrize("what", ["lock is a folder", "folder is a file", "file is a folder", "write fails"])
def test_an_unusable_state_location_is_a_state_error(tmp_path: Path, monkeypatch, what: str):
    path = tmp_path / "state" / "state.json"
    path.parent.mkdir()
    if what == "lock is a folder":
        (path.parent / "state.json.lock").mkdir()
    elif what == "folder is a file":
        path.parent.rmdir()
        path.parent.write_text("not a folder")
    elif what == "file is a folder":
        path.mkdir()
    else:

        def refuse(target: Path, payload: bytes, **_: Any) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("imagebak.state.atomic_write", refuse)
    with pytest.raises(StateError) as error, StateStore(path).update() as state:
        state.set_schedule(KEY, sample())
    assert str(error.value).startswith(str(tmp_path)) and "\n" not in str(error.value)


def _add_history(path: str, times: int) -> None:
    store = StateStore(Path(path))
    for _ in range(times):
        with store.update() as state:
            history = state.entry("counter").setdefault("history", [])
            history.append({**HISTORY, "run_id": str(len(history))})


HISTORY = {"run_id": "", "manual": True, "started_at": "", "finished_at": None, "instances": {}}


def test_concurrent_writers_never_lose_an_update(tmp_path: Path):
    path = tmp_path / "state.json"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_add_history, args=(str(path), 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert len(StateStore(path).read().policies["counter"]["history"]) == 100


def test_a_write_by_another_process_is_never_lost_to_the_cache(tmp_path: Path):
    path = tmp_path / "state.json"
    mine, theirs = StateStore(path), StateStore(path)
    with mine.update() as state:
        state.entry("a")["history"] = [HISTORY]
    with theirs.update() as state:  # another process (another store object) writes in between
        state.entry("b")["history"] = [HISTORY]
    with mine.update() as state:
        state.entry("a")["history"] = []
    assert StateStore(path).read().policies == {"a": {"history": []}, "b": {"history": [HISTORY]}}


def test_a_policy_key_of_another_shape_is_not_taken_for_a_renamed_policy(tmp_path: Path):
    """Found by the state fuzzer: a key without account/region/name made the rename look-up crash (exit 70)."""
    from click.testing import CliRunner
    from samples import ONE_POLICY

    from imagebak.cli import cli

    path = full_state(tmp_path / ".imagebak" / "state.json")
    data = json.loads(path.read_bytes())
    data["policies"] = {"cn-shanghai/web": data["policies"][KEY]}
    path.write_text(json.dumps(data), encoding="utf-8")
    config = tmp_path / "policies.yaml"
    config.write_text(ONE_POLICY, encoding="utf-8")
    for command in (["plan"], ["policy", "list"], ["run", "--dry-run"]):
        result = CliRunner().invoke(cli, ["-c", str(config), *command])
        assert result.exit_code == 0, (command, result.output)
