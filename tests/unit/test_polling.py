"""The poll schedule: every interval, or at the expected end of what a group waits for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from imagebak.engine.polling import MAX_INTERVALS, PollSchedule
from imagebak.execution.records import Artifact, Execution, InstanceWork, PolicySnapshot, WorkItem
from imagebak.execution.states import ArtifactState

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
GROUP = ("copy", "acc", "cn-east-3")
POLICY = PolicySnapshot("nightly", "acc", "cn-north-4", "all", [("cn-east-3", None)], "{policy}", "", 1)


def item(key: str, submitted: float, *, state: ArtifactState = ArtifactState.PENDING, **fields) -> WorkItem:
    """An artifact submitted ``submitted`` seconds after T0."""
    artifact = Artifact(key=key, name=key, region="cn-east-3", state=state,
                        submitted_at=(T0 + timedelta(seconds=submitted)).isoformat(), **fields)  # fmt: skip
    work = InstanceWork(key, image=artifact)
    return WorkItem(Execution("k", "run", False, T0.isoformat(), POLICY, {key: work}), work, artifact)


def at(seconds: float) -> float:
    return (T0 + timedelta(seconds=seconds)).timestamp()


def test_a_new_group_waits_an_interval_after_its_oldest_submission_a_resumed_one_does_not() -> None:
    schedule = PollSchedule(interval=15)
    assert schedule.due("copy", {GROUP: [item("a", 0)]}, now=1000, wall=at(5)) == []
    assert schedule.wait(1000) == 10
    assert schedule.due("copy", {GROUP: [item("a", 0)]}, now=1010, wall=at(15)) == [GROUP]
    resumed = PollSchedule(interval=15)
    assert resumed.due("copy", {GROUP: [item("a", -3600)]}, now=1000, wall=at(0)) == [GROUP]


def test_without_an_estimate_a_group_is_polled_every_interval() -> None:
    schedule = PollSchedule(interval=15)
    schedule.polled(GROUP, [item("a", 0, progress=5)], now=1000, wall=at(30))  # 5 %: too little to go on
    assert schedule.wait(1000) == 15


def polled_at(schedule: PollSchedule, now: float, wall_seconds: float, items: list[WorkItem]) -> bool:
    return schedule.due("copy", {GROUP: items}, now=now, wall=at(wall_seconds)) == [GROUP]


def test_progress_sets_the_next_poll_within_bounds() -> None:
    schedule = PollSchedule(interval=15)
    a = item("a", 0, progress=25)
    schedule.polled(GROUP, [a], now=1000, wall=at(20))  # ends at 80 s, 60 s on: capped at two intervals
    assert not polled_at(schedule, 1000 + 15 * MAX_INTERVALS - 1, 49, [a])
    assert polled_at(schedule, 1000 + 15 * MAX_INTERVALS, 50, [a])
    schedule.polled(GROUP, [item("a", 0, progress=95)], now=2000, wall=at(38))  # ends at 40 s: 2 s on
    assert not polled_at(schedule, 2002.9, 40.9, [a])  # not sooner than a fifth of the interval
    assert polled_at(schedule, 2003, 41, [a])


def test_what_one_copy_took_says_when_the_next_can_end() -> None:
    schedule = PollSchedule(interval=15)
    done = item("a", 0, state=ArtifactState.AVAILABLE, finished_at=(T0 + timedelta(seconds=20)).isoformat())
    b, c = item("b", 10), item("c", 12)
    schedule.polled(GROUP, [done, b, c], now=1000, wall=at(20))  # a took 20 s: b ends at 30 s
    assert not polled_at(schedule, 1009.9, 29.9, [b, c])
    assert polled_at(schedule, 1010, 30, [b, c])  # sooner than the interval, when b can have ended
    unknown = item("d", 0)
    unknown.artifact.submitted_at = None  # adopted from a run that did not record it
    schedule.polled(GROUP, [c, unknown], now=2000, wall=at(31))
    assert not polled_at(schedule, 2014.9, 45.9, [c, unknown]) and polled_at(schedule, 2015, 46, [c, unknown])


def test_past_its_expected_end_a_group_is_polled_again_after_as_long_as_it_is_late() -> None:
    """At 500 copies the last one was seen 0.4-0.5 s after it was ready: its expected end came a few ms
    before it did, and the next poll waited a whole interval."""
    schedule = PollSchedule(interval=15)
    done = item("a", 0, state=ArtifactState.AVAILABLE, finished_at=(T0 + timedelta(seconds=20)).isoformat())
    b = item("b", 10)  # expected at 30 s
    schedule.polled(GROUP, [done, b], now=1000, wall=at(30.01))  # asked at 30.01 s: still pending
    assert not polled_at(schedule, 1002.9, 32.9, [b])
    assert polled_at(schedule, 1003, 33, [b])  # a fifth of an interval later, not a whole one
    schedule.polled(GROUP, [b], now=2000, wall=at(50))  # 20 s late: look again in 20 s
    assert not polled_at(schedule, 2019.9, 69.9, [b]) and polled_at(schedule, 2020, 70, [b])
    schedule.polled(GROUP, [b], now=3000, wall=at(500))  # very late: no longer than two intervals
    assert polled_at(schedule, 3000 + 15 * MAX_INTERVALS, 530, [b])


def test_once_a_duration_is_known_a_poll_asks_for_what_can_have_ended_and_what_was_not_asked_for_long() -> None:
    schedule = PollSchedule(interval=15)
    b, c = item("b", 10), item("c", 90)
    assert schedule.worth_asking(GROUP, [b, c], wall=at(100)) == [b, c]  # nothing learnt yet: ask for all
    done = item("a", 0, state=ArtifactState.AVAILABLE, finished_at=(T0 + timedelta(seconds=100)).isoformat())
    schedule.polled(GROUP, [done, b, c], now=1000, wall=at(100))  # a took 100 s: b ends at 110 s, c at 190 s
    assert schedule.worth_asking(GROUP, [b, c], wall=at(110)) == [b]
    assert schedule.worth_asking(GROUP, [c], wall=at(100 + 15 * MAX_INTERVALS - 1)) == []
    assert schedule.worth_asking(GROUP, [c], wall=at(100 + 15 * MAX_INTERVALS)) == [c]  # not asked for long
    assert schedule.worth_asking(GROUP, [c], wall=at(150)) == []  # asked at 130 s


def test_an_artifact_not_expected_yet_is_asked_for_again_after_a_tenth_of_its_duration() -> None:
    """500 images of 38 s were each described every other interval while nothing could have changed."""
    schedule = PollSchedule(interval=15)
    done = item("a", 0, state=ArtifactState.AVAILABLE, finished_at=(T0 + timedelta(seconds=1000)).isoformat())
    b = item("b", 100)  # a took 1000 s: b ends at 1100 s
    schedule.polled(GROUP, [done, b], now=1000, wall=at(1000))
    assert schedule.worth_asking(GROUP, [b], wall=at(1000)) == [b]  # never asked since its submission
    assert schedule.worth_asking(GROUP, [b], wall=at(1099)) == []  # asked 99 s ago, 1 s before its end
    assert schedule.worth_asking(GROUP, [b], wall=at(1100)) == [b]  # it can have ended


def test_a_progress_estimate_is_the_earliest_end_the_reported_percent_allows_and_does_not_recede() -> None:
    schedule = PollSchedule(interval=15)
    x = item("x", 0)
    assert schedule.worth_asking(GROUP, [x], wall=at(950)) == [x]  # no estimate: asked
    x.artifact.progress = 94  # 94-95 % at 950 s: it ends at 1000 s at the earliest
    schedule.polled(GROUP, [x], now=1000, wall=at(951))
    assert schedule.worth_asking(GROUP, [x], wall=at(999)) == []
    assert schedule.worth_asking(GROUP, [x], wall=at(1000)) == [x]  # not 950 s x 100 / 94, nor 1000 s x 100 / 94
    schedule.polled(GROUP, [x], now=1050, wall=at(1001))  # that call reported no new progress (Huawei's listing)
    assert schedule.worth_asking(GROUP, [x], wall=at(1001)) == [x]  # still 1000 s, not 1000 s x 100 / 95


def test_one_artifacts_progress_gives_the_others_of_its_step_an_expected_end() -> None:
    """Huawei's listing carries no progress: one job's progress, asked for now and then, does for the group."""
    schedule = PollSchedule(interval=15)
    a, b = item("a", 0), item("b", 10)
    assert schedule.worth_asking(GROUP, [a, b], wall=at(100)) == [a, b]
    a.artifact.progress = 19  # 19-20 % at 100 s: a takes 500 s at the least
    schedule.polled(GROUP, [a, b], now=1000, wall=at(101))
    assert not polled_at(schedule, 1000 + 15, 116, [a, b])  # an expected end for each: not every interval
    assert polled_at(schedule, 1000 + 15 * MAX_INTERVALS, 131, [a, b])
    assert schedule.worth_asking(GROUP, [b], wall=at(149)) == []  # b ends at 510 s: asked again after 50 s
    assert schedule.worth_asking(GROUP, [b], wall=at(150)) == [b]
    assert schedule.worth_asking(GROUP, [b], wall=at(509)) == [b]  # not asked for long
    assert schedule.worth_asking(GROUP, [b], wall=at(510)) == [b]  # it can have ended
    assert schedule.worth_asking(GROUP, [b], wall=at(511)) == [b]


def test_a_poll_due_within_a_millisecond_is_due_now() -> None:
    """Float round-off left a next poll 2.4e-7 s ahead: the engine slept that long on a clock that counts
    microseconds, which did not move it, and looped for ever."""
    schedule = PollSchedule(interval=300)
    x = item("x", 0, progress=37)
    schedule.polled(GROUP, [x], now=1000.0, wall=at(60))  # expected at 60 x 100 / 38 s
    soon = 1000.0 + schedule.wait(1000.0)
    assert schedule.wait(soon - 2.4e-7) == 0.0
    assert polled_at(schedule, soon - 2.4e-7, 60 + soon - 1000.0, [x])
