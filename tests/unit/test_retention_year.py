"""A year of nightly runs with retention: exactly the rules' survivors, in the source and the copy region.

Runs the real engine (run + the pruning at its end) on the fake cloud and a manual clock. The
expected survivors are worked out here from the calendar, not with imagebak's retention code.
"""

from __future__ import annotations

from datetime import date, timedelta, timezone

from harness import ACCOUNT, DESTS, KEY, SOURCE, START, WEB, Harness

from imagebak.errors import ExitCode
from imagebak.ownership import TAG_INSTANCE, TAG_POLICY, TAG_RUN

DAYS = 365
CST = timezone(timedelta(hours=8))  # the harness policy's start offset: periods count in its days


def newest_per_period(days: list[date], key, count: int) -> set[date]:  # type: ignore[no-untyped-def]
    """The newest day of each of the ``count`` most recent periods (by ``key``) that have one."""
    chosen: dict[object, date] = {}
    for day in sorted(days, reverse=True):
        chosen.setdefault(key(day), day)
    return set(sorted(chosen.values(), reverse=True)[:count])


def test_a_year_of_nightly_runs_keeps_exactly_what_the_rules_say(h: Harness) -> None:
    h.write_policies(
        h.policy(
            copy_to=[{"region": DESTS[0], "retain": {"last": 2, "monthly": 12}}],
            retain={"daily": 7, "weekly": 4, "monthly": 3},
        )
    )
    h.model.set_quota(ACCOUNT, SOURCE, "image", 20)  # a policy without pruning would exhaust it in 20 nights
    hand_made = h.model.create_image(ACCOUNT, SOURCE, WEB, name="made-by-hand").image_id
    stray = h.model.create_image(ACCOUNT, SOURCE, WEB, name="stray", tags={TAG_POLICY: "nightly",
                                                                          TAG_INSTANCE: WEB}).image_id  # fmt: skip
    run_days: dict[str, date] = {}
    for day in range(DAYS):
        h.clock.set(START + timedelta(days=day))
        report = h.run("nightly")
        assert report.exit_code() is ExitCode.OK, (day, report.notes)
        (execution,) = report.executions
        run_days[execution.run_id] = h.clock.now().astimezone(CST).date()

    days = sorted(run_days.values())
    iso_week, month = (lambda d: d.isocalendar()[:2]), (lambda d: (d.year, d.month))
    source_kept = set(days[-7:]) | newest_per_period(days, iso_week, 4) | newest_per_period(days, month, 3)
    copy_kept = set(days[-2:]) | newest_per_period(days, month, 12)

    def surviving(region: str) -> set[date]:
        return {run_days[i.tags[TAG_RUN]] for i in h.images(region) if i.tags.get(TAG_RUN) in run_days}

    assert surviving(SOURCE) == source_kept
    assert surviving(DESTS[0]) == copy_kept
    ids = {i.image_id for i in h.images(SOURCE)}
    assert {hand_made, stray} <= ids  # never what imagebak cannot prove it made
    assert len(h.images(SOURCE)) == len(source_kept) + 2
    # the chain goes too: each surviving image keeps its two disk snapshots, nothing else is left
    assert len([s for s in h.model.list_snapshots(ACCOUNT, SOURCE)]) == 2 * len(h.images(SOURCE))
    points = h.state()["policies"][KEY]["points"]
    assert {(p["region"], run_days[p["run"]]) for p in points} == {(SOURCE, d) for d in source_kept} | {
        (DESTS[0], d) for d in copy_kept
    }


def test_prune_dry_run_lists_and_never_deletes(h: Harness) -> None:
    h.write_policies(h.policy(copy_to=[], retain={"last": 1}))
    for day in range(3):
        h.clock.set(START + timedelta(days=day))
        h.write_policies(h.policy(copy_to=[]))  # no retention while the points accumulate
        h.run("nightly")
    h.write_policies(h.policy(copy_to=[], retain={"last": 1}))
    verdicts, left = h.prune(dry_run=True)
    assert left == [] and [v.keep for v in verdicts] == [True, False, False]
    assert verdicts[0].reasons == ("newest recovery point", "last 1")
    assert len(h.images(SOURCE)) == 3
    verdicts, _ = h.prune()
    assert [v.deleted for v in verdicts] == [False, True, True] and len(h.images(SOURCE)) == 1
