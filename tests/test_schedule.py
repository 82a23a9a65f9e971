"""Schedule semantics of an automatic image policy, with an injected clock (no sleeping)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

from imagebak.schedule import MIN_GAP, ScheduleSpec, ScheduleState, after_run, describe, is_due, reconcile

UTC = timezone.utc
CST = timezone(timedelta(hours=8))
H = timedelta(hours=1)
D = timedelta(days=1)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def spec(start: str = "2026-12-01T02:00:00+08:00", every: timedelta = D, enabled: bool = True) -> ScheduleSpec:
    return ScheduleSpec(t(start), every, enabled)


def simulate(
    states: dict[str, ScheduleState | None],
    specs: list[tuple[datetime, ScheduleSpec]],
    begin: datetime,
    end: datetime,
    tick: timedelta = timedelta(minutes=10),
) -> list[datetime]:
    """Cron every ``tick``: reconcile with the spec in force, run when due. Returns execution times."""
    runs = []
    now = begin
    while now <= end:
        current = [s for since, s in specs if since <= now][-1]
        state = reconcile(states["p"], current, now)
        if is_due(state, now):
            runs.append(now)
            state = after_run(state, current, now, scheduled=True)
        states["p"] = state
        now += tick
    return runs


def test_first_run_is_at_start_when_start_is_far_enough_ahead():
    state = reconcile(None, spec(), t("2026-11-30T00:00:00+08:00"))
    assert state.next_run == t("2026-12-01T02:00:00+08:00")
    assert not is_due(state, t("2026-12-01T01:59:59+08:00"))
    assert is_due(state, t("2026-12-01T02:00:00+08:00"))


def test_never_earlier_than_thirty_minutes_after_first_seen():
    seen = t("2026-12-01T01:40:00+08:00")  # start is only 20 minutes away
    state = reconcile(None, spec(), seen)
    assert state.next_run == t("2026-12-02T02:00:00+08:00")
    exactly = reconcile(None, spec(), t("2026-12-01T01:30:00+08:00"))  # 30 minutes: allowed
    assert exactly.next_run == t("2026-12-01T02:00:00+08:00")


def test_a_start_in_the_past_keeps_the_grid():
    state = reconcile(None, spec(every=12 * H), t("2026-12-10T09:00:00+08:00"))
    assert state.next_run == t("2026-12-10T14:00:00+08:00")


def test_missed_runs_run_once_and_the_grid_does_not_drift():
    states: dict[str, ScheduleState | None] = {"p": None}
    simulate(
        states,
        [(t("2026-11-01T00:00:00Z"), spec())],
        t("2026-11-30T00:00:00+08:00"),
        t("2026-12-01T03:00:00+08:00"),
    )
    host_back = t("2026-12-04T09:17:00+08:00")  # down for three days, 3 slots missed
    state = reconcile(states["p"], spec(), host_back)
    assert is_due(state, host_back)
    assert "missed" in describe(state, host_back)
    state = after_run(state, spec(), host_back, scheduled=True)
    assert state.next_run == t("2026-12-05T02:00:00+08:00")  # same time of day as start: no drift
    assert not is_due(state, host_back + H)


def test_changing_start_moves_the_next_run():
    state = reconcile(None, spec(), t("2026-11-30T00:00:00+08:00"))
    moved = reconcile(state, spec(start="2026-12-03T05:00:00+08:00"), t("2026-11-30T12:00:00+08:00"))
    assert moved.next_run == t("2026-12-03T05:00:00+08:00")
    # a new start within 30 minutes of the change is pushed to the next slot of the new grid
    soon = reconcile(state, spec(start="2026-11-30T12:10:00+08:00"), t("2026-11-30T12:00:00+08:00"))
    assert soon.next_run == t("2026-12-01T12:10:00+08:00")


def test_changing_every_keeps_the_next_run_and_applies_after_it():
    state = reconcile(None, spec(), t("2026-11-30T00:00:00+08:00"))
    weekly = spec(every=timedelta(weeks=1))
    changed = reconcile(state, weekly, t("2026-11-30T12:00:00+08:00"))
    assert changed.next_run == t("2026-12-01T02:00:00+08:00")
    ran = after_run(changed, weekly, t("2026-12-01T02:00:00+08:00"), scheduled=True)
    assert ran.next_run == t("2026-12-08T02:00:00+08:00")


def test_twelve_hour_floor_whatever_the_edits():
    state = reconcile(None, spec(), t("2026-11-30T00:00:00+08:00"))
    ran = after_run(state, spec(), t("2026-12-01T02:00:00+08:00"), scheduled=True)
    # the user moves start so the next slot is 2 hours after the last run
    edited = reconcile(ran, spec(start="2026-12-01T04:00:00+08:00", every=12 * H), t("2026-12-01T03:00:00+08:00"))
    assert edited.due_at - ran.last_run >= MIN_GAP
    # the floor ends at 14:00; the first slot of the new grid after it is 16:00
    assert edited.next_run == t("2026-12-01T16:00:00+08:00")
    assert not is_due(edited, t("2026-12-01T15:59:00+08:00"))
    assert is_due(edited, t("2026-12-01T16:00:00+08:00"))


def test_manual_run_pushes_the_scheduled_one_past_the_floor():
    state = reconcile(None, spec(), t("2026-11-30T00:00:00+08:00"))
    manual = after_run(state, spec(), t("2026-11-30T23:00:00+08:00"), scheduled=False)
    assert manual.next_run == state.next_run
    assert not is_due(manual, t("2026-12-01T02:00:00+08:00"))
    assert "12-hour gap" in describe(manual, t("2026-12-01T02:00:00+08:00"))
    assert is_due(manual, t("2026-12-01T11:00:00+08:00"))


def test_executions_in_a_long_simulation_are_never_closer_than_twelve_hours():
    states: dict[str, ScheduleState | None] = {"p": None}
    edits = [
        (t("2026-11-01T00:00:00Z"), spec(every=12 * H)),
        (t("2026-12-03T07:00:00+08:00"), spec(start="2026-12-03T09:00:00+08:00", every=12 * H)),
        (t("2026-12-05T00:00:00+08:00"), spec(start="2026-12-05T01:00:00+08:00", every=3 * D)),
        (t("2026-12-06T00:00:00+08:00"), spec(start="2026-12-06T01:00:00+08:00", every=12 * H)),
    ]
    runs = simulate(states, edits, t("2026-12-01T00:00:00+08:00"), t("2026-12-12T00:00:00+08:00"))
    assert len(runs) > 10
    assert min(b - a for a, b in pairwise(runs)) >= MIN_GAP


def test_disabled_policies_never_run_and_do_not_catch_up():
    states: dict[str, ScheduleState | None] = {"p": None}
    begin = t("2026-11-30T00:00:00+08:00")
    runs = simulate(states, [(begin, spec(enabled=False))], begin, t("2026-12-05T00:00:00+08:00"))
    assert runs == []
    assert describe(states["p"], t("2026-12-05T00:00:00+08:00")) == "disabled"
    enabled = reconcile(states["p"], spec(), t("2026-12-05T00:00:00+08:00"))
    assert enabled.next_run == t("2026-12-05T02:00:00+08:00")


def test_dst_change_never_doubles_or_skips_a_run():
    # US Eastern: DST starts 2026-03-08 and ends 2026-11-01; start written in EST (-05:00)
    states: dict[str, ScheduleState | None] = {"p": None}
    begin = t("2026-10-25T00:00:00-04:00")
    runs = simulate(
        states,
        [(begin, spec(start="2026-01-01T01:30:00-05:00"))],
        begin,
        t("2026-11-06T00:00:00-05:00"),
        tick=timedelta(minutes=15),
    )
    assert len(runs) == 12  # 25 Oct .. 5 Nov, across the 1 Nov change
    assert {b - a for a, b in pairwise(runs)} == {D}
    assert {r.astimezone(UTC).strftime("%H:%M") for r in runs} == {"06:30"}


def test_a_catch_up_run_of_a_12h_policy_does_not_drag_later_runs_off_the_grid():
    twelve = spec(every=12 * H)
    state = reconcile(None, twelve, t("2026-11-30T00:00:00+08:00"))  # grid 02:00 / 14:00 China time
    late = t("2026-12-01T13:00:00+08:00")  # the host was down: the 02:00 slot runs at 13:00
    assert is_due(state, late)
    state = after_run(state, twelve, late, scheduled=True)
    runs = [late]
    moment = late
    while len(runs) < 6:
        moment += timedelta(minutes=10)
        if is_due(state, moment):
            runs.append(moment)
            state = after_run(state, twelve, moment, scheduled=True)
    assert [r.astimezone(t("2026-12-01T00:00:00+08:00").tzinfo).strftime("%d %H:%M") for r in runs[1:]] == [
        "02 02:00",
        "02 14:00",
        "03 02:00",
        "03 14:00",
        "04 02:00",
    ]
    assert all(b - a >= MIN_GAP for a, b in pairwise(runs))
