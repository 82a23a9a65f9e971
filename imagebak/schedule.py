"""When each policy runs: the product rules of an automatic image policy, as pure functions.

A policy runs at ``start`` and then on the grid ``start + k * every`` (UTC; days and weeks are
fixed 24h/168h spans, so DST never doubles or skips a run). The state keeps, per policy,
the next grid slot and the last execution; from them:

- a missed slot runs once when imagebak next runs, and the grid does not drift;
- a policy first seen runs no earlier than 30 minutes after it was first seen;
- a changed ``start`` moves the next run onto the new grid (again not within 30 minutes);
- a changed ``every`` leaves the scheduled next run alone and applies after it;
- two executions are never less than 12 hours apart, whatever the edits;
- disabled policies never run; on re-enabling, slots missed meanwhile are not caught up.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

FIRST_RUN_DELAY = timedelta(minutes=30)
MIN_GAP = timedelta(hours=12)


class ScheduleSpec(NamedTuple):
    """The schedule fields of a policy as configured."""

    start: datetime  # aware
    every: timedelta
    enabled: bool


class ScheduleState(NamedTuple):
    """What the state file remembers about one policy's schedule (all datetimes aware UTC)."""

    first_seen: datetime
    start: datetime  # the start in force when next_run was computed
    every: timedelta  # the interval in force
    enabled: bool
    next_run: datetime  # next grid slot
    last_run: datetime | None = None  # actual time of the last execution (scheduled or manual)

    @property
    def not_before(self) -> datetime | None:
        """The 12-hour floor after the last execution."""
        return self.last_run + MIN_GAP if self.last_run else None

    @property
    def due_at(self) -> datetime:
        """When the policy actually becomes due: the slot, pushed back by the 12-hour floor."""
        floor = self.not_before
        return max(self.next_run, floor) if floor else self.next_run


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: imagebak only works with explicit time zones")
    return moment.astimezone(timezone.utc)


def first_slot(anchor: datetime, every: timedelta, not_before: datetime) -> datetime:
    """The first grid slot ``anchor + k*every`` (k >= 0) at or after ``not_before``."""
    if not_before <= anchor:
        return anchor
    steps = math.ceil((not_before - anchor) / every)
    return anchor + steps * every


def reconcile(state: ScheduleState | None, spec: ScheduleSpec, now: datetime) -> ScheduleState:
    """Bring the remembered schedule in line with the configured one, as observed at ``now``."""
    now, start = utc(now), utc(spec.start)
    if state is None:
        return ScheduleState(
            first_seen=now,
            start=start,
            every=spec.every,
            enabled=spec.enabled,
            next_run=first_slot(start, spec.every, now + FIRST_RUN_DELAY),
        )
    if start != state.start:
        earliest = now + FIRST_RUN_DELAY
        if state.not_before:
            earliest = max(earliest, state.not_before)
        state = state._replace(start=start, every=spec.every, next_run=first_slot(start, spec.every, earliest))
    if spec.enabled and not state.enabled and state.next_run < now:
        state = state._replace(next_run=first_slot(state.next_run, state.every, now))
    return state._replace(enabled=spec.enabled)


def is_due(state: ScheduleState, now: datetime) -> bool:
    return state.enabled and utc(now) >= state.due_at


def manual_floor(state: ScheduleState, now: datetime) -> datetime | None:
    """When a manual run may start, if ``now`` is still within the 12-hour floor after the last run."""
    floor = state.not_before
    return floor if floor is not None and utc(now) < floor else None


def after_run(state: ScheduleState, spec: ScheduleSpec, ran_at: datetime, *, scheduled: bool) -> ScheduleState:
    """Record an execution. A scheduled one moves to the next slot, on the (possibly new) interval:
    the first slot the 12-hour floor does not delay, so a late run (a catch-up) never drags the
    later ones off the grid."""
    ran_at = utc(ran_at)
    if not scheduled:
        return state._replace(last_run=ran_at)
    slot = state.next_run
    next_run = first_slot(slot, spec.every, ran_at + MIN_GAP)
    if next_run == slot:
        next_run = slot + spec.every
    return state._replace(every=spec.every, next_run=next_run, last_run=ran_at)


def describe(state: ScheduleState, now: datetime) -> str:
    """Why the policy is or is not due at ``now``, in a few words."""
    now = utc(now)
    if not state.enabled:
        return "disabled"
    if now >= state.due_at:
        late = now - state.next_run
        return "due" + (f" (slot {_iso(state.next_run)} missed by {_span(late)})" if late > MIN_GAP else "")
    floor = state.not_before
    if floor and floor > state.next_run and now >= state.next_run:
        return f"waiting for the 12-hour gap after the last run until {_iso(floor)}"
    which = "first" if state.last_run is None else "next"
    return f"{which} run in {_span(state.due_at - now)}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours:
        parts.append(f"{hours}h")
    if minutes or not parts:
        parts.append(f"{minutes}m")
    return " ".join(parts)
