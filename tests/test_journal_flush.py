"""When the journal's log reaches the disk: before a cloud call always, a cloud's answer with the next flush."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import pytest
from samples import EXECUTION

from imagebak.engine import journal as journal_module
from imagebak.engine.journal import Journal
from imagebak.execution.records import Execution
from imagebak.state import StateStore


def wal_lines(state: Path) -> int:
    return sum(path.read_bytes().count(b"\n") for path in state.parent.glob(f"{state.name}.wal.*"))


@pytest.fixture
def flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every fsync of the journal of ``tmp_path/state.json``, as the number of lines its log held then."""
    seen: list[int] = []
    fsync = journal_module.os.fsync

    def counting(fd: int) -> None:
        seen.append(wal_lines(tmp_path / "state.json"))
        fsync(fd)

    monkeypatch.setattr(journal_module.os, "fsync", counting)
    return seen


def test_a_cloud_answer_is_written_at_once_and_durable_with_the_next_flush(tmp_path: Path, flushes: list[int]):
    store = StateStore(tmp_path / "state.json")
    execution = Execution.from_dict(copy.deepcopy(EXECUTION))
    work = execution.instances["i-1"]
    journal = Journal(store)

    journal.save_instance(execution, work, durable=False)
    assert (wal_lines(store.path), flushes) == (1, [])  # written (a crash of the process keeps it), not flushed
    journal.save_instance(execution, work)  # a record before a cloud call: both lines flushed by one fsync
    assert flushes == [2]
    journal.close()


def test_threads_flushing_at_once_share_an_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The first flush is held until two more lines are written; one more fsync covers both of them."""
    store = StateStore(tmp_path / "state.json")
    execution = Execution.from_dict(copy.deepcopy(EXECUTION))
    work = execution.instances["i-1"]
    journal = Journal(store)
    fsync, calls = journal_module.os.fsync, []
    all_written = threading.Event()

    def held(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            assert all_written.wait(10)
        fsync(fd)

    monkeypatch.setattr(journal_module.os, "fsync", held)
    first = threading.Thread(target=journal.save_instance, args=(execution, work))
    first.start()
    while not calls:
        threading.Event().wait(0.001)
    others = [threading.Thread(target=journal.save_instance, args=(execution, work)) for _ in range(2)]
    for thread in others:
        thread.start()
    while wal_lines(store.path) < 3:
        threading.Event().wait(0.001)
    all_written.set()
    for thread in (first, *others):
        thread.join(10)
    assert len(calls) == 2
    journal.close()
