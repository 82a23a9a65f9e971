"""A run killed at any journal point is finished by the next run, without duplicates or strays.

For each variant, a baseline run counts the journal points (every ``save_instance`` and the final
``finish``). Then for every k the run is killed just before, and just after, the k-th point;
a new process (fresh provider and StateStore, same cloud and state file) runs as the next cron
tick, and the outcome is checked against the cloud.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from harness import DESTS, KEY, MIXED, WEB, Harness, Killed

from imagebak.errors import ExitCode
from imagebak.ownership import TAG_INSTANCE, TAG_RUN

Setup = Callable[[Harness], None]


def plain(h: Harness) -> None:
    pass


def image_fails_once(h: Harness) -> None:
    h.model.fail_next_creations(1)


def copy_fails_once(h: Harness) -> None:
    h.provider.before("copy_images", lambda: h.model.fail_next_creations(1))


def two_instances(h: Harness) -> None:
    h.write_policies(h.policy(instances=[WEB, MIXED], copy_to=[DESTS[0]]))  # two lanes: a kill strikes one


VARIANTS: dict[str, tuple[Setup, int]] = {  # setup, create calls a run makes without a kill
    "plain": (plain, 1),
    "two-instances": (two_instances, 2),
    "image-fails-once": (image_fails_once, 2),
    "copy-fails-once": (copy_fails_once, 1),
}


def problems_after_resume(h: Harness, creates: int) -> list[str]:
    """What is wrong with the cloud and the state once the resumed run has ended (empty: nothing)."""
    found: list[str] = []
    entry = h.state()["policies"][KEY]
    if entry.get("executions"):
        found.append(f"still in flight: {list(entry['executions'])}")
    history = entry.get("history", [])
    if len(history) != 1:
        return [*found, f"{len(history)} finished executions"]
    run_id = history[0]["run_id"]
    for instance, work in history[0]["instances"].items():
        if work["status"] != "done":
            found.append(f"{instance} {work['status']}: {work['reason']}")
        made = [i for i in h.images() if i.tags.get(TAG_INSTANCE) == instance and i.tags.get(TAG_RUN) == run_id]
        if [(i.image_id, i.status) for i in made] != [(work["image_id"], "available")]:
            found.append(f"{instance} images {[(i.image_id, i.status) for i in made]}, state: {work['image_id']}")
        for region in [target.region for target in h.loaded.model.policies[0].copy_to]:
            copies = [(i.image_id, i.status) for i in h.images(region) if i.source_image_id == work["image_id"]]
            if len(copies) != 1 or copies[0][1] != "available":
                found.append(f"{instance} copies in {region}: {copies}")
    stray = {i.image_id for i in h.owned_images()} - h.tracked_ids()
    if stray:
        found.append(f"untracked images with ownership tags: {sorted(stray)}")
    if h.calls("create_image") > creates:
        found.append(f"{h.calls('create_image')} create calls (at most {creates})")
    return found


def journal_points(folder: Path, setup: Setup, creates: int) -> int:
    """How many journal points a run of this variant passes when nothing kills it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        (folder / "baseline").mkdir()
        h = Harness(folder / "baseline", monkeypatch)
        setup(h)
        h.run("nightly")
        assert problems_after_resume(h, creates) == []
        return h.journal_points


# "before k": the cloud calls since point k-1 happened, point k was not written (e.g. created, not
# recorded). "after k": point k was written, nothing since (e.g. recorded `submitting`, never sent).
# The variants take the first, where their own windows lie (a retry made but not recorded, a lane
# killed while the other works); the second is the same for them as for the plain run.
CASES = [("plain", "before"), ("plain", "after")] + [(v, "before") for v in sorted(VARIANTS) if v != "plain"]


@pytest.mark.parametrize(("variant", "when"), CASES)
def test_killed_at_every_journal_point_resumes_cleanly(folder: Path, variant: str, when: str) -> None:
    setup, creates = VARIANTS[variant]
    points = journal_points(folder, setup, creates)
    assert points >= 10
    failures: dict[int, list[str]] = {}
    for k in range(1, points + 1):
        with pytest.MonkeyPatch.context() as monkeypatch:
            (folder / f"k{k}").mkdir()
            h = Harness(folder / f"k{k}", monkeypatch)
            setup(h)
            setattr(h, f"kill_{when}", k)
            with pytest.raises(Killed):
                h.run("nightly")
            h.restart()
            h.clock.advance(60)
            h.run()  # the next cron tick
            problems = problems_after_resume(h, creates)
            if problems:
                failures[k] = problems
    assert not failures, f"killed {when} journal point k of {points}: {failures}"


def test_work_in_flight_finishes_after_its_policy_is_deleted(h: Harness) -> None:
    h.run("nightly", wait=False)
    h.write_policies(h.policy(name="other", instances=[MIXED]))  # nightly is gone from the file
    report = h.run()
    assert [e.policy.name for e in report.executions] == ["nightly"]
    assert report.exit_code() is ExitCode.OK
    assert problems_after_resume(h, 1) == []
