"""Lanes: per-account width, and no new job after the pass's budget or the run's deadline."""

from __future__ import annotations

import pytest

from imagebak.engine import lanes
from imagebak.engine.lanes import run_in_lanes


class FakeClock:
    """Each job takes one second of this clock; lanes read it instead of the monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(lanes.time, "monotonic", fake.monotonic)
    return fake


def jobs(clock: FakeClock, done: list[str], names: list[str]) -> list[lanes.Job]:
    def job(name: str) -> lanes.Job:
        def run() -> None:
            done.append(name)
            clock.now += 1.0

        return run

    return [job(name) for name in names]


def test_a_lane_takes_no_new_job_after_stop_taking(clock: FakeClock) -> None:
    done: list[str] = []
    result = run_in_lanes({"acc": jobs(clock, done, list("abcdef"))}, lambda _: 1, 1e9, stop_taking=102.5)
    assert (done, result) == (list("abc"), lanes.Lanes(finished=True, left=3))


def test_every_job_is_taken_without_a_stop(clock: FakeClock) -> None:
    done: list[str] = []
    work = {"a": jobs(clock, done, ["a1", "a2", "a3"]), "b": jobs(clock, done, ["b1"])}
    result = run_in_lanes(work, lambda account: 2 if account == "a" else 1, 1e9)
    assert (sorted(done), result) == (["a1", "a2", "a3", "b1"], lanes.Lanes(finished=True, left=0))


def test_nothing_is_taken_after_the_deadline(clock: FakeClock) -> None:
    done: list[str] = []
    result = run_in_lanes({"acc": jobs(clock, done, list("ab"))}, lambda _: 2, deadline=50.0)
    assert (done, result.left) == ([], 2)
