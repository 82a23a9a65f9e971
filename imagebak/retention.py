"""Which recovery points to keep: the retention rules of a policy, as pure functions.

Rules (any combination; an image survives if any rule keeps it):

- ``last: N``: the N newest available images;
- ``within: D``: every image younger than D;
- grandfather-father-son: ``daily``, ``weekly``, ``monthly``, ``yearly`` counts keep the newest
  image of each of that many most recent days / ISO weeks / months / years that have one,
  with periods counted in the policy's own time zone (the offset of its ``start``).

Whatever the rules say, the newest available image is never deleted (a policy must always leave
a recovery point), and an image that is not available (still being made or copied, or needed by
an execution in flight) is never a candidate. Applied separately per instance and region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo


@dataclass(frozen=True)
class Retain:
    last: int | None = None
    within: timedelta | None = None
    daily: int | None = None
    weekly: int | None = None
    monthly: int | None = None
    yearly: int | None = None

    @property
    def empty(self) -> bool:
        """No rule at all: keep everything (retention is opt-in)."""
        return all(getattr(self, name) is None for name in ("last", "within", *PERIODS))


@dataclass(frozen=True)
class Candidate:
    image_id: str
    created_at: datetime  # aware
    available: bool = True
    protected: str | None = None  # why it must stay whatever the rules say (e.g. "source of a copy in progress")


@dataclass(frozen=True)
class Decision:
    image_id: str
    keep: bool
    reasons: tuple[str, ...]  # the rules that keep it (empty for a deletion)


PERIODS: dict[str, Callable[[datetime], tuple[int, ...]]] = {
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
    "yearly": lambda t: (t.year,),
}


def decide(candidates: Sequence[Candidate], rule: Retain, now: datetime, zone: tzinfo) -> list[Decision]:
    """Keep or delete each image of one instance in one region, newest first, with the reasons."""
    ordered = sorted(candidates, key=lambda c: c.created_at, reverse=True)
    reasons: dict[str, list[str]] = {c.image_id: [] for c in ordered}
    for candidate in ordered:
        if candidate.protected:
            reasons[candidate.image_id].append(candidate.protected)
        elif not candidate.available:
            reasons[candidate.image_id].append("not available yet")
    usable = [c for c in ordered if c.available and not c.protected]
    if usable:
        reasons[usable[0].image_id].append("newest recovery point")
    if rule.empty:
        for candidate in usable:
            reasons[candidate.image_id].append("no retention rule")
    if rule.last is not None:
        for candidate in usable[: rule.last]:
            reasons[candidate.image_id].append(f"last {rule.last}")
    if rule.within is not None:
        for candidate in usable:
            if now - candidate.created_at < rule.within:
                reasons[candidate.image_id].append(f"within {_span(rule.within)}")
    for name, period in PERIODS.items():
        count = getattr(rule, name)
        if count:
            for candidate in _newest_per_period(usable, period, count, zone):
                reasons[candidate.image_id].append(f"{name} {count}")
    return [Decision(c.image_id, bool(reasons[c.image_id]), tuple(reasons[c.image_id])) for c in ordered]


def _newest_per_period(
    newest_first: Sequence[Candidate], period: Callable[[datetime], tuple[int, ...]], count: int, zone: tzinfo
) -> list[Candidate]:
    """The newest image of each of the ``count`` most recent periods that have one."""
    kept: list[Candidate] = []
    seen: set[tuple[int, ...]] = set()
    for candidate in newest_first:
        bucket = period(candidate.created_at.astimezone(zone))
        if bucket not in seen:
            seen.add(bucket)
            kept.append(candidate)
            if len(kept) == count:
                break
    return kept


def _span(delta: timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    if seconds == 0 and days % 7 == 0 and days:
        return f"{days // 7}w"
    if seconds == 0:
        return f"{days}d"
    return f"{int(delta.total_seconds() // 3600)}h"
