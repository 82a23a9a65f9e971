"""End-to-end `imagebak run` through the real vendor SDKs and the emulator, for each vendor."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time

from world import World

from imagebak.engine import inventory
from imagebak.engine.locks import PolicyLocks
from imagebak.ownership import TAG_KEY, TAG_POLICY
from imagebak.state import StateStore, policy_key


def only_work(report: dict) -> dict:
    (execution,) = report["executions"]
    (work,) = execution["instances"].values()
    return work


def test_full_run_creates_waits_and_copies_to_two_regions(world: World):
    world.write_policies(world.policy())
    code, report = world.run_json("--policy", "nightly")
    assert code == 0, report
    work = only_work(report)
    assert work["status"] == "done"
    image_id = work["image"]["image_id"]
    source = {i.image_id: i for i in world.images()}
    assert source[image_id].status == "available"
    assert source[image_id].source_instance_id == world.vendor.web
    copies = {c["region"]: c["image_id"] for c in work["copies"].values()}
    for target in world.vendor.copy_to:
        region = target["region"] if isinstance(target, dict) else target
        there = {i.image_id: i for i in world.images(region)}
        assert there[copies[region]].status == "available"
        assert there[copies[region]].source_image_id == image_id
    if world.vendor.name != "jdcloud":  # JD images carry no tags; ownership is in the description
        assert source[image_id].tags[TAG_POLICY] == "nightly"
    state = world.state()
    entry = state["policies"][policy_key(world.vendor.account, world.vendor.region, "nightly")]
    assert entry["executions"] == {}
    assert entry["history"][-1]["instances"][world.vendor.web]["image_id"] == image_id
    steps = [(e["step"], e["outcome"]) for e in world.log_events()]
    assert ("create", "submitted") in steps and ("done", "ok") in steps and ("execution", "finished") in steps
    assert gc.get_freeze_count() == 0  # the run froze what existed before it (gc.freeze), and unfroze it


def test_disk_subset_leaves_out_unlisted_disks_and_ignores_absent_devices(world: World):
    world.write_policies(world.policy(disks=["vda", "vdz"], copy_to=[]))
    code, report = world.run_json("--policy", "nightly")
    work = only_work(report)
    assert code == 0 and work["devices"] == ["vda"]
    image = next(i for i in world.images() if i.image_id == work["image"]["image_id"])
    assert [d.device for d in image.disks] == ["vda"]
    notes = [e["message"] for e in world.log_events() if e["step"] == "disks"]
    assert any("vdz: not attached" in n for n in notes)


def test_local_data_disks_are_never_imaged(world: World):
    world.write_policies(world.policy(instances=[world.vendor.local_data], copy_to=[]))
    code, report = world.run_json("--policy", "nightly")
    work = only_work(report)
    assert code == 0 and work["status"] == "done"
    image = next(i for i in world.images() if i.image_id == work["image"]["image_id"])
    assert [d.device for d in image.disks] == ["vda"]


def test_local_system_disk_instance_is_skipped_with_its_reason(world: World):
    world.write_policies(world.policy(instances=[world.vendor.local_system, world.vendor.web], copy_to=[]))
    code, report = world.run_json("--policy", "nightly")
    works = report["executions"][0]["instances"]
    assert code == 0
    assert works[world.vendor.local_system]["status"] == "skipped"
    assert "local system disk" in works[world.vendor.local_system]["reason"]
    assert works[world.vendor.web]["status"] == "done"
    assert world.calls(world.vendor.create_action) == 1


def test_missing_vda_is_rejected_before_any_cloud_call(world: World):
    world.write_policies(world.policy(disks=["vdb"]))
    result = world.run("--policy", "nightly")
    assert result.exit_code == 3
    assert "policies[0].disks: the system disk vda must be included" in result.output
    assert world.emulator.counters.get(world.vendor.name) == 0


def test_no_quota_left_means_no_image_and_exit_code_7(world: World):
    used, _ = world.emulator.model.quota(world.vendor.account, world.vendor.region, "image")
    world.emulator.model.set_quota(world.vendor.account, world.vendor.region, "image", used)
    world.write_policies(world.policy())
    code, report = world.run_json("--policy", "nightly")
    work = only_work(report)
    assert code == 7 and work["status"] == "skipped"
    assert "quota" in work["reason"].lower()
    assert [i for i in world.images() if i.source_instance_id == world.vendor.web] == []


def test_throttling_and_5xx_storms_are_retried_and_recovered(world: World):
    faults = world.emulator.faults
    faults.set({"vendor": world.vendor.name, "action": world.vendor.create_action, "throttle_next": 3})
    faults.set(
        {"vendor": world.vendor.name, "action": world.vendor.status_action, "error_next": 3, "error_status": 503}
    )
    world.write_policies(world.policy(copy_to=[]))
    code, report = world.run_json("--policy", "nightly")
    assert code == 0 and only_work(report)["status"] == "done"
    assert world.calls(world.vendor.create_action) == 4  # 3 throttled + 1 accepted
    assert len([i for i in world.images() if i.source_instance_id == world.vendor.web]) == 1


def test_a_failed_image_is_retried_then_reported(world: World):
    world.emulator.model.fail_next_creations(1, reason="disk snapshot error")
    world.write_policies(world.policy(copy_to=[]))
    code, report = world.run_json("--policy", "nightly")
    work = only_work(report)
    assert code == 0 and work["status"] == "done" and work["image"]["attempt"] == 2
    assert world.calls(world.vendor.create_action) == 2
    mine = [i for i in world.images() if i.source_instance_id == world.vendor.web]
    assert [i.status for i in mine] == ["available"]  # the failed one was cleaned up


def test_a_failed_image_without_retries_fails_the_run(world: World):
    world.emulator.model.fail_next_creations(1, reason="disk snapshot error")
    world.write_policies(world.policy(copy_to=[], retry_failed=0))
    code, report = world.run_json("--policy", "nightly")
    work = only_work(report)
    assert code == 6 and work["status"] == "failed"
    assert "failed" in work["reason"]


def test_an_overlapping_run_reports_the_lock_and_does_nothing(world: World):
    world.write_policies(world.policy())
    key = policy_key(world.vendor.account, world.vendor.region, "nightly")
    holder = PolicyLocks(world.folder / "locks")
    assert holder.acquire(key)
    try:
        code, report = world.run_json("--policy", "nightly")
    finally:
        holder.release_all()
    assert code == 5
    assert report["notes"][0]["outcome"] == "locked"
    assert world.emulator.counters.get(world.vendor.name) == 0


def test_dry_run_makes_no_cloud_call_and_writes_nothing(world: World):
    world.write_policies(world.policy())
    result = world.run("--policy", "nightly", "--dry-run")
    assert result.exit_code == 0
    assert f"create image of {world.vendor.web}" in result.output
    assert world.emulator.counters.get(world.vendor.name) == 0
    assert not world.state_file.exists()


def test_no_wait_submits_and_the_next_run_finishes_the_work(world: World):
    world.write_policies(world.policy())
    code, report = world.run_json("--policy", "nightly", "--no-wait")
    assert code == 0 and only_work(report)["status"] == "creating"
    time.sleep(0.5)  # let the sped-up emulator finish the image (no assertion on time)
    code, report = world.run_json()  # a plain cron tick: resumes the in-flight execution
    assert code in (0, 1) and report["executions"], report
    for _ in range(50):
        if only_work(report)["status"] == "done":
            break
        time.sleep(0.1)
        code, report = world.run_json()
    assert only_work(report)["status"] == "done"
    assert world.calls(world.vendor.create_action) == 1


def test_a_run_on_a_rehearsal_clock_polls_what_it_resumes(world_for, monkeypatch):
    """IMAGEBAK_NOW years ahead of the real clock: the poll schedule reads the run's clock, as the
    artifacts' times do, so a resumed run polls at once instead of waiting for that future."""
    world = world_for("aliyun")
    world.write_policies(world.policy(copy_to=[]))
    monkeypatch.setenv("IMAGEBAK_NOW", "2031-01-01T02:00:00Z")
    assert world.run_json("--policy", "nightly", "--no-wait")[0] == 0
    time.sleep(0.5)  # let the sped-up emulator finish the image (no assertion on time)
    monkeypatch.setenv("IMAGEBAK_NOW", "2031-01-01T02:10:00Z")
    code, report = world.run_json("--deadline", "20")
    assert (code, only_work(report)["status"], report["deadline_hit"]) == (0, "done", False), report


def test_a_run_resumes_an_image_whose_submission_was_not_recorded(world: World):
    """The crash window between the create call and writing its result: adopt, never duplicate."""
    world.write_policies(world.policy(copy_to=[]))
    code, _ = world.run_json("--policy", "nightly", "--no-wait")
    assert code == 0
    state = world.state()
    key = policy_key(world.vendor.account, world.vendor.region, "nightly")
    (execution,) = state["policies"][key]["executions"].values()
    image = execution["instances"][world.vendor.web]["image"]
    image.update(state="submitting", ref=None, image_id=None)
    world.state_file.write_text(json.dumps(state))
    code, report = world.run_json("--policy", "nightly", "--force")
    assert code == 0, report
    assert world.calls(world.vendor.create_action) == 1
    assert len([i for i in world.images() if i.source_instance_id == world.vendor.web]) == 1
    events = world.log_events()
    assert any(e["step"] == "create" and e["outcome"] == "adopted" for e in events)


def test_killed_between_create_and_copy_resumes_without_duplicates(world: World):
    world.write_policies(world.policy())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        world.command_line("--policy", "nightly"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    key = policy_key(world.vendor.account, world.vendor.region, "nightly")
    try:
        for _ in range(600):  # until the image is recorded as submitted (bounded: 30 s)
            if world.state_file.exists():  # the state file as its journals bring it up to date
                state = inventory.observed(StateStore(world.state_file))
                executions = state.policies.get(key, {}).get("executions", {})
                works = [w for e in executions.values() for w in e["instances"].values()]
                if works and works[0].get("image") and works[0]["image"].get("ref"):
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the run never recorded its image")
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    _, report = world.run_json()  # the next cron tick
    for _ in range(50):
        if report["executions"] and only_work(report)["status"] == "done":
            break
        time.sleep(0.05)
        _, report = world.run_json()
    work = only_work(report)
    assert work["status"] == "done", report
    assert world.calls(world.vendor.create_action) == 1
    assert len([i for i in world.images() if i.source_instance_id == world.vendor.web]) == 1
    for target in world.vendor.copy_to:
        region = target["region"] if isinstance(target, dict) else target
        copies = [i for i in world.images(region) if i.source_image_id == work["image"]["image_id"]]
        assert len(copies) == 1, copies


def test_exit_codes_partial_and_total_failure(world: World):
    world.write_policies(world.policy(instances=[world.vendor.web, "i-doesnotexist0000"], copy_to=[]))
    code, report = world.run_json("--policy", "nightly")
    works = report["executions"][0]["instances"]
    assert code == 1
    assert works["i-doesnotexist0000"]["status"] == "failed"
    assert "does not exist" in works["i-doesnotexist0000"]["reason"]
    world.write_policies(world.policy(name="ghosts", instances=["i-doesnotexist0000"], copy_to=[]))
    code, _ = world.run_json("--policy", "ghosts")
    assert code == 6


def test_manual_runs_respect_the_twelve_hour_floor(world: World):
    world.write_policies(world.policy(copy_to=[]))
    assert world.run_json("--policy", "nightly")[0] == 0
    result = world.run("--policy", "nightly")
    assert result.exit_code == 9 and "--force overrides" in result.output
    assert world.run_json("--policy", "nightly", "--force")[0] == 0
    mine = [i for i in world.images() if i.source_instance_id == world.vendor.web]
    renamed = [i for i in mine if not i.name.endswith("Z")]  # Aliyun: a name taken within the minute
    assert world.calls(world.vendor.create_action) == 2 + len(renamed)
    assert len(mine) == 2


def test_image_tags_carry_the_idempotency_key(world_for):
    world = world_for("aliyun")
    world.write_policies(world.policy(copy_to=[]))
    _, report = world.run_json("--policy", "nightly")
    image = next(i for i in world.images() if i.image_id == only_work(report)["image"]["image_id"])
    assert image.tags[TAG_KEY] == only_work(report)["image"]["key"]


def test_instance_option_narrows_a_manual_run_to_one_instance(world_for):
    world = world_for("aliyun")
    world.write_policies(world.policy(instances=[world.vendor.web, world.vendor.local_data], copy_to=[]))
    code, report = world.run_json("--instance", world.vendor.local_data)
    assert code == 0
    assert list(report["executions"][0]["instances"]) == [world.vendor.local_data]
    assert world.calls("CreateImage") == 1
    result = world.run("--instance", "i-nowhere")
    assert result.exit_code == 2 and "instance i-nowhere is in no policy" in result.output


def test_a_hung_status_call_cannot_hold_the_run_past_its_deadline(world: World):
    """The vendor hangs on every status call (far longer than the deadline): the run ends at the deadline,
    says so (exit 1, deadline hit), and the next run resumes the image it left in flight."""
    world.write_policies(world.policy(copy_to=[]))
    world.emulator.faults.set(
        {"vendor": world.vendor.name, "action": world.vendor.status_action, "hang": True, "hang_seconds": 300}
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    finished = subprocess.run(
        world.command_line(
            "--policy",
            "nightly",
            "--deadline",
            "2",
            "--format",
            "json",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a run that ignored its deadline would hang 300 s
    )
    report = json.loads(finished.stdout)
    assert (finished.returncode, report["deadline_hit"], report["result"]) == (11, True, "in_flight"), finished.stderr
    assert only_work(report)["status"] == "creating"
    world.emulator.faults.clear()
    code, report = world.run_json()
    assert (code, only_work(report)["status"]) == (0, "done")
    assert world.calls(world.vendor.create_action) == 1
