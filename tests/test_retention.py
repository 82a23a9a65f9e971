"""Retention rules: which recovery points survive (pure; the pruning against the clouds is tested elsewhere)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from imagebak.retention import Candidate, Retain, decide

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 31, 23, 0, tzinfo=CST)


def year_of_dailies() -> list[Candidate]:
    """A year of nightly images at 02:00 China time, newest last."""
    first = datetime(2026, 1, 1, 2, 0, tzinfo=CST)
    return [Candidate(f"img-{n:03d}", first + timedelta(days=n)) for n in range(365)]


def kept(candidates: list[Candidate], rule: Retain) -> set[str]:
    return {d.image_id for d in decide(candidates, rule, NOW, CST) if d.keep}


def test_last_n_keeps_exactly_the_newest_n() -> None:
    images = year_of_dailies()
    assert kept(images, Retain(last=5)) == {f"img-{n:03d}" for n in range(360, 365)}


def test_within_keeps_everything_younger_than_the_span() -> None:
    images = year_of_dailies()
    assert kept(images, Retain(within=timedelta(days=3))) == {"img-362", "img-363", "img-364"}


def test_grandfather_father_son_over_a_year() -> None:
    images = year_of_dailies()
    survivors = kept(images, Retain(daily=7, weekly=4, monthly=12, yearly=2))
    dailies = {f"img-{n:03d}" for n in range(358, 365)}  # Dec 25..31
    # newest of each ISO week: Sundays Dec 27 and 20 and 13 (the week of Dec 28-31 is covered by Dec 31)
    weeklies = {"img-364", "img-360", "img-353", "img-346"}
    monthlies = {
        f"img-{(datetime(2026, m, 1, tzinfo=CST) - datetime(2026, 1, 1, tzinfo=CST)).days - 1:03d}"
        for m in range(2, 13)
    } | {"img-364"}  # the last day of each month
    assert survivors == dailies | weeklies | monthlies  # yearly 2: 2026 only has one year, its newest


def test_periods_are_counted_in_the_policy_time_zone() -> None:
    # 23:30 UTC on Jan 1 is Jan 2 in China: two images on two China days, one UTC day
    a = Candidate("a", datetime(2026, 1, 1, 1, 0, tzinfo=timezone.utc))
    b = Candidate("b", datetime(2026, 1, 1, 23, 30, tzinfo=timezone.utc))
    assert kept([a, b], Retain(daily=2, last=1)) == {"a", "b"}
    in_utc = {d.image_id for d in decide([a, b], Retain(daily=2, last=1), NOW, timezone.utc) if d.keep}
    assert in_utc == {"b"}


def test_the_newest_available_image_is_never_deleted_and_protected_ones_stay() -> None:
    old = Candidate("old", NOW - timedelta(days=400))
    copying = Candidate("copying", NOW - timedelta(days=300), protected="source of a copy in progress")
    creating = Candidate("creating", NOW - timedelta(hours=1), available=False)
    decisions = {d.image_id: d for d in decide([old, copying, creating], Retain(within=timedelta(days=1)), NOW, CST)}
    assert decisions["old"].reasons == ("newest recovery point",)
    assert decisions["copying"].reasons == ("source of a copy in progress",)
    assert decisions["creating"].reasons == ("not available yet",)


def test_no_rule_keeps_everything() -> None:
    assert kept(year_of_dailies()[:10], Retain()) == {f"img-{n:03d}" for n in range(10)}


@settings(max_examples=200, deadline=None)
@given(
    ages=st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=40, unique=True),
    last=st.none() | st.integers(min_value=1, max_value=10),
    within=st.none() | st.integers(min_value=1, max_value=400),
    daily=st.none() | st.integers(min_value=1, max_value=10),
    monthly=st.none() | st.integers(min_value=1, max_value=24),
)
def test_any_rule_combination_keeps_the_union_and_never_the_last_one(
    ages: list[int], last: int | None, within: int | None, daily: int | None, monthly: int | None
) -> None:
    images = [Candidate(f"i{age}", NOW - timedelta(hours=age * 7)) for age in ages]
    rule = Retain(last=last, within=timedelta(days=within) if within else None, daily=daily, monthly=monthly)
    decisions = decide(images, rule, NOW, CST)
    survivors = {d.image_id for d in decisions if d.keep}
    newest = min(images, key=lambda c: NOW - c.created_at)
    assert newest.image_id in survivors
    for part in (Retain(last=last), Retain(within=rule.within), Retain(daily=daily), Retain(monthly=monthly)):
        if not part.empty:
            assert kept(images, part) <= survivors  # each rule's survivors survive the combination
    assert all(d.reasons for d in decisions if d.keep) and not any(d.reasons for d in decisions if not d.keep)
