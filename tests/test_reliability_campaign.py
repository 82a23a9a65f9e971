"""The reliability campaign's own code (``reliability/``), kept honest in CI.

A few Aliyun trials (~20 s) through the same ``run_trial`` and checker the campaign uses: real
``imagebak`` subprocesses killed mid-run against an emulator subprocess. The asserts make sure the
trials did what they claim (kills landed while an execution was in flight, images and copies were
made, the overlapping run was refused) before trusting that "no anomaly" means something; the
checker itself is shown to detect each kind of anomaly on planted data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` puts tests/ on the path, not the checkout
    sys.path.insert(0, str(ROOT))

from reliability.checker import Checker, Known, duplicates, owned_images, read_known  # noqa: E402
from reliability.trials import TrialPlan, run_trial  # noqa: E402
from reliability.world import World  # noqa: E402

STORM = {"vendor": "aliyun", "throttle_rate": 0.3, "error_rate": 0.1, "slow_rate": 0.1, "slow_seconds": 0.2}
PLANS = [
    TrialPlan(1, "aliyun", "kill", "SIGKILL", early=False, kill_after=0.3),
    TrialPlan(2, "aliyun", "storm", "SIGTERM", early=False, kill_after=0.4, storm=STORM),
    TrialPlan(
        3,
        "aliyun",
        "overlap",
        "SIGINT",
        early=False,
        kill_after=0.3,
        storm={"vendor": "aliyun", "slow_rate": 1.0, "slow_seconds": 0.2},
    ),
    TrialPlan(4, "aliyun", "nowait", "SIGKILL", early=False, kill_after=0.05),
]


def test_trials_kill_runs_mid_execution_and_the_checker_finds_nothing(tmp_path: Path) -> None:
    checker = Checker()
    with World(tmp_path / "world", "aliyun", seed=7, time_scale=2500) as world:
        results = [run_trial(world, checker, plan) for plan in PLANS]
        journals_left = world.journals()
    for result in results:
        assert result.anomalies == [], (result.plan, result.anomalies)
        assert not result.report.in_flight and not result.stuck
        assert result.seconds < 60
    # Not vacuous: the kills struck live processes that left executions in flight (the overlap trial's
    # first run may finish before its kill on a loaded machine: it is there for the lock) ...
    killed = [r for r in results if r.plan.variant != "overlap"]
    assert all(r.landed for r in killed), [(r.plan.number, dict(r.exit_codes)) for r in results]
    assert sum(r.interrupted for r in killed) >= 2
    assert all(r.followups >= 1 for r in results if r.interrupted)
    # ... images and copies were made (two instances, two copy regions per execution) ...
    assert sum(r.report.new_images for r in results) >= 2 * len(PLANS)
    assert sum(r.report.new_copies for r in results) >= 4 * len(PLANS)
    # ... the second of two overlapping runs was refused with exit 5, and every journal was folded in.
    assert results[2].lock == "locked" and results[2].exit_codes["second"] == [5]
    assert journals_left == []


# ---- the checker detects what it must, on planted data -------------------------------------------


def image(
    image_id: str,
    region: str = "cn-shanghai",
    *,
    run: str = "r1",
    source: str | None = None,
    status: str = "available",
    **extra: Any,
) -> dict[str, Any]:
    tags = {"imagebak-policy": "p", "imagebak-instance": "i-1", "imagebak-run": run, "imagebak-key": f"k-{image_id}"}
    return {
        "image_id": image_id,
        "region": region,
        "status": status,
        "tags": tags,
        "description": "",
        "source_image_id": source,
        "kind": "system",
        "disks": [{"device": "vda"}],
        **extra,
    }


def test_owned_images_read_tags_the_jd_marker_and_a_huawei_copy_key() -> None:
    cloud = {
        "images": [
            image("m-1"),
            {
                "image_id": "img-2",
                "region": "cn-north-1",
                "status": "available",
                "tags": {},
                "description": "x [imagebak key=ib-2 imagebak-run=r9 imagebak-instance=i-9]",
            },
            {
                "image_id": "hw-3",
                "region": "cn-east-3",
                "status": "available",
                "tags": {},
                "source_image_id": "hw-0",
                "description": "imagebak copy of hw-0 from cn-north-4 [ib-0123456789abcdef0123456789abcdef]",
            },
            {"image_id": "iso", "region": "cn-north-4", "status": "available", "tags": {}, "description": "ISO"},
        ]
    }
    owned = {i.image_id: i for i in owned_images(cloud)}
    assert set(owned) == {"m-1", "img-2", "hw-3"}
    assert (owned["img-2"].key, owned["img-2"].run, owned["img-2"].instance) == ("ib-2", "r9", "i-9")
    assert owned["hw-3"].key == "ib-0123456789abcdef0123456789abcdef" and owned["hw-3"].run is None


def test_checker_reports_duplicates_untracked_missing_unreadable_once() -> None:
    cloud = {
        "images": [
            image("m-1"),
            image("m-2"),  # same policy, instance, run and role as m-1: a duplicate
            image("m-3", status="failed"),  # failed: re-made on purpose, not a duplicate
            image("c-1", "cn-qingdao", source="m-1"),
            image("c-2", "cn-qingdao", source="m-1"),  # a second copy on the same route
            image("m-9", run="r2"),  # nobody knows it
        ]
    }
    assert len(duplicates(owned_images(cloud))) == 2
    known = Known(
        image_ids={"m-1", "m-2", "m-3", "c-1", "c-2"}, done=[{"image_id": "m-1", "copies": {"cn-beijing": "c-gone"}}]
    )
    checker = Checker()
    report = checker.check(cloud, known, {"policy list": 0, "run --dry-run": 4})
    assert len(report.duplicates) == 2 and not report.clean
    assert report.untracked == ["untracked m-9 (cn-shanghai, available, run r2, key k-m-9)"]
    assert report.missing == ["missing c-gone (cloud status absent)"]
    assert report.unreadable == ["run --dry-run exited 4"]
    assert (report.new_images, report.new_copies, report.owned) == (4, 2, 6)
    again = checker.check(cloud, known, {"policy list": 0, "run --dry-run": 0})
    assert again.clean and again.new_images == 0  # each finding counts once, in the trial that showed it


def test_an_in_flight_key_tracks_an_image_whose_answer_was_lost(tmp_path: Path) -> None:
    """Submitted, then killed before the answer was journaled: the next run adopts it by key."""
    state = tmp_path / "state.json"
    work = {"instance_id": "i-1", "image": {"key": "k-m-1", "state": "submitting"}, "copies": {}}
    execution = {"instances": {"i-1": work}}
    state.write_text(json.dumps({"policies": {"a/r/p": {"executions": {"r1": execution}}}}), encoding="utf-8")
    known = read_known(state, [])
    assert known.keys == {"k-m-1"} and known.in_flight == ["a/r/p r1"]
    assert Checker().check({"images": [image("m-1")]}, known, {}).untracked == []


@pytest.mark.parametrize("vendor", ["gcp", ""])
def test_world_refuses_unknown_vendors(tmp_path: Path, vendor: str) -> None:
    with pytest.raises(ValueError, match="unknown vendor"):
        World(tmp_path, vendor, seed=1, time_scale=1)
