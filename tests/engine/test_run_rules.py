"""Engine behaviour the products promise: vendor limits, in-flight work outliving its policy, secrecy."""

from __future__ import annotations

import json
import time

import yaml
from click.testing import CliRunner
from world import World

from imagebak.cli import cli
from imagebak.emulator.rules import Latency


def add_instances(world: World, count: int, prefix: str) -> list[str]:
    ids = []
    for n in range(count):
        instance_id = f"{prefix}{n:04d}"
        world.emulator.model.add_instance(
            world.vendor.account,
            world.vendor.region,
            instance_id,
            name=f"bulk-{n}",
            disks=[
                {
                    "disk_id": f"{instance_id}-vda",
                    "device": "vda",
                    "is_system": True,
                    "size_gb": 20,
                    "category": "cloud",
                }
            ],
        )
        ids.append(instance_id)
    return ids


def test_huawei_never_has_more_than_five_copies_in_flight(world_for):
    world = world_for("huawei")
    instances = add_instances(world, 4, "0b9e1c6a-0000-4000-8000-00000000")
    world.write_policies(world.policy(instances=instances))  # 4 instances x 2 regions = 8 copies
    code, report = world.run_json("--policy", "nightly")
    assert code == 0, report
    assert all(w["status"] == "done" for w in report["executions"][0]["instances"].values())
    assert world.calls("CopyImageCrossRegion") == 8  # none refused for the limit, so none repeated
    assert not any(e.get("error_code") for e in world.log_events())


def test_jd_copies_of_many_images_all_arrive_within_the_per_call_limit(world_for):
    world = world_for("jdcloud")
    instances = add_instances(world, 12, "i-bulk")
    world.write_policies(world.policy(instances=instances, copy_to=["cn-east-2"]))
    code, report = world.run_json("--policy", "nightly")
    assert code == 0, report
    # each copy has its own name, and copyImages takes one name per call, so copies go one per call;
    # the adapter batches up to 10 when names match (tests/providers/test_jdcloud_adapter.py)
    assert 2 <= world.calls("copyImages") <= 12
    assert len(world.images("cn-east-2")) == 12
    assert not any(e.get("error_code") for e in world.log_events())


def test_aliyun_status_polls_are_batched(world_for):
    world = world_for("aliyun")
    instances = add_instances(world, 12, "i-uf6bulk")
    world.write_policies(world.policy(instances=instances, copy_to=[]))
    code, _ = world.run_json("--policy", "nightly")
    assert code == 0
    passes = world.calls("DescribeImages")
    assert passes < len(instances), f"{passes} DescribeImages calls for {len(instances)} images"


def test_in_flight_work_finishes_after_its_policy_is_deleted(world: World):
    world.write_policies(world.policy())
    code, report = world.run_json("--policy", "nightly", "--no-wait")
    assert code == 0 and report["executions"][0]["instances"][world.vendor.web]["status"] in ("creating", "copying")
    world.write_policies(world.policy(name="other", instances=[world.vendor.local_data], enabled=False))
    for _ in range(100):
        code, report = world.run_json("--wait")
        works = [w for e in report["executions"] for w in e["instances"].values()]
        if works and works[0]["status"] == "done":
            break
        time.sleep(0.05)
    assert [e["policy"]["name"] for e in report["executions"]] == ["nightly"]
    assert works[0]["status"] == "done" and len(works[0]["copies"]) == 2
    assert world.calls(world.vendor.create_action) == 1


def test_secrets_never_reach_output_log_or_state(world: World):
    secret = world.emulator.model.account(world.vendor.account).secret
    world.write_policies(world.policy())
    result = world.run("--policy", "nightly", "--format", "json")
    assert result.exit_code == 0
    bad = world.run("--policy", "nightly")  # refused by the 12-hour floor: another output path
    texts = [result.output, bad.output, world.state_file.read_text(), (world.folder / "execution.log").read_text()]
    assert all(secret not in text for text in texts)


def test_a_wrong_secret_fails_with_the_vendor_code_and_no_secret(world: World, monkeypatch):
    monkeypatch.setenv("IMAGEBAK_TEST_KEY_SECRET", "not-the-right-one")
    world.write_policies(world.policy(copy_to=[]))
    code, report = world.run_json("--policy", "nightly")
    work = report["executions"][0]["instances"][world.vendor.web]
    assert code == 6 and work["status"] == "failed"
    assert "not-the-right-one" not in str(report)
    assert work["error"]["kind"] == "auth"


def _copy_outcomes(work: dict) -> dict[str, tuple[str, str | None]]:
    return {c["region"]: (c["state"], c["outcome"]) for c in work["copies"].values()}


def _dest_regions(world: World) -> list[str]:
    return [t["region"] if isinstance(t, dict) else t for t in world.vendor.copy_to]


def test_an_encrypted_image_is_made_and_never_sent_for_copying(world: World):
    instance_id = {
        "aliyun": "i-uf6encrypted0001",
        "huawei": "0b9e1c6a-0000-4000-8000-0000000000e1",
        "jdcloud": "i-encrypted1",
    }[world.vendor.name]
    world.emulator.model.add_instance(
        world.vendor.account,
        world.vendor.region,
        instance_id,
        name="secure",
        disks=[
            {
                "disk_id": f"{instance_id}-vda",
                "device": "vda",
                "is_system": True,
                "size_gb": 40,
                "category": "cloud",
                "encrypted": True,
            }
        ],
    )
    world.write_policies(world.policy(instances=[instance_id]))
    code, report = world.run_json("--policy", "nightly")
    work = report["executions"][0]["instances"][instance_id]
    assert code == 10, report  # image made, DR copy impossible: neither success nor "no backup"
    assert work["status"] == "done" and "encrypted" in work["reason"]
    assert set(_copy_outcomes(work).values()) == {("skipped", "copy-impossible")}
    assert any(i.image_id == work["image"]["image_id"] for i in world.images())
    assert all(world.images(region) == [] for region in _dest_regions(world))
    copy_action = {"aliyun": "CopyImage", "huawei": "CopyImageCrossRegion", "jdcloud": "copyImages"}
    assert world.calls(copy_action[world.vendor.name]) == 0


def test_no_image_quota_in_one_destination_skips_that_copy_only(world: World):
    full, other = _dest_regions(world)
    world.emulator.model.set_quota(world.vendor.account, full, "image", 0)
    world.write_policies(world.policy())
    code, report = world.run_json("--policy", "nightly")
    work = report["executions"][0]["instances"][world.vendor.web]
    assert code == 7, report  # a quota skip, reported for the region, not a failure
    assert work["status"] == "done"
    outcomes = _copy_outcomes(work)
    assert outcomes[full] == ("skipped", "quota-skip") and outcomes[other] == ("available", None)
    assert world.images(full) == [] and len(world.images(other)) == 1
    assert any(i.image_id == work["image"]["image_id"] for i in world.images())


def test_an_account_without_credentials_stops_only_its_own_policies(world: World, monkeypatch):
    world.write_policies(world.policy(copy_to=[]))
    document = yaml.safe_load(world.config.read_text(encoding="utf-8"))
    broken = {
        **document["accounts"][world.vendor.account],
        "access_key_id_env": "IMAGEBAK_TEST_UNSET_ID",
        "secret_env": "IMAGEBAK_TEST_UNSET_SECRET",
    }
    document["accounts"]["broken"] = broken
    document["policies"].append(
        {**world.policy(name="orphan", copy_to=[]), "account": "broken", "instances": [world.vendor.local_data]}
    )
    world.config.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    monkeypatch.delenv("IMAGEBAK_TEST_UNSET_ID", raising=False)
    code, report = world.run_json("--all")
    assert code == 12, report  # its own exit code, not "invalid policies.yaml"
    assert [e["policy"]["name"] for e in report["executions"]] == ["nightly"]
    assert report["executions"][0]["instances"][world.vendor.web]["status"] == "done"
    (note,) = report["notes"]
    assert (note["policy"], note["outcome"]) == ("orphan", "account") and "IMAGEBAK_TEST_UNSET_ID" in note["message"]
    orphan = world.state()["policies"][f"broken/{world.vendor.region}/orphan"]["schedule"]
    assert orphan["last_run"] is None  # no slot used up: a retry once the credentials are back is not "too soon"


def test_an_unreachable_cloud_is_reported_as_stalled_not_ok(world: World, monkeypatch):
    world.write_policies(world.policy(copy_to=[]), endpoint="http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-01T02:00:00+00:00")
    code, report = world.run_json("--policy", "nightly", "--no-wait")
    work = report["executions"][0]["instances"][world.vendor.web]
    assert (code, work["status"]) == (0, "new") and work["reason"].startswith("will retry")
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-02T03:00:00+00:00")  # a day later: still no progress
    code, report = world.run_json("--no-wait")
    assert (code, report["result"]) == (13, "stalled"), report
    assert report["stalled"] and "no progress for 25 h" in report["stalled"][0]


def test_an_unwritable_execution_log_is_a_clear_error_before_anything_starts(world_for, tmp_path):
    world = world_for("aliyun")
    world.write_policies(world.policy(copy_to=[]))
    log = world.folder / "execution.log"
    log.mkdir()  # a folder where the log file should be: unwritable for anyone, root included
    result = world.run("--policy", "nightly")
    assert result.exit_code == 4
    assert result.output.strip().splitlines()[-1].startswith(f"imagebak: {log}: cannot write the execution log")
    assert world.emulator.counters.get(world.vendor.name) == 0  # not one cloud call


def test_plan_at_the_start_of_a_new_policy_agrees_with_policy_list(world_for, monkeypatch):
    world = world_for("aliyun")
    world.write_policies(world.policy(start="2026-12-01T02:00:00+08:00", copy_to=[]))
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-11-30T00:00:00+08:00")  # never seen by a run yet
    result = CliRunner().invoke(
        cli, ["-c", str(world.config), "plan", "--at", "2026-12-01T02:00:00+08:00", "--format", "json"]
    )
    (entry,) = json.loads(result.output)["policies"]
    assert entry["due"] and entry["next_run"] == "2026-11-30T18:00:00+00:00"
    listed = CliRunner().invoke(cli, ["-c", str(world.config), "policy", "list", "--format", "json"])
    assert "2026-11-30T18:00:00+00:00" in listed.output


def test_the_twelve_hour_floor_survives_a_rename(world_for, monkeypatch):
    world = world_for("aliyun")
    world.write_policies(world.policy(name="old-name", copy_to=[]))
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-01T02:00:00+00:00")
    assert world.run_json("--policy", "old-name")[0] == 0
    world.write_policies(world.policy(name="new-name", copy_to=[]))  # same account, region, instances
    monkeypatch.setenv("IMAGEBAK_NOW", "2026-03-01T02:40:00+00:00")
    code, report = world.run_json("--policy", "new-name")
    assert code == 9 and report["notes"][0]["outcome"] == "too_soon", report
    assert world.calls(world.vendor.create_action) == 1


def test_huawei_polls_images_in_the_making_with_one_listing_per_region(world_for):
    world = world_for("huawei")
    instances = add_instances(world, 12, "0b9e1c6a-0000-4000-8000-0000000001")
    world.emulator.model.set_latency("huawei", "image", Latency(3000.0))  # 1 s at the world's time scale
    world.write_policies(world.policy(instances=instances, copy_to=[], disks=["vda"]))
    code, _ = world.run_json("--policy", "nightly", "--poll-interval", "0.05")  # some 20 passes
    assert code == 0
    jobs, listings = world.calls("ShowJobProgress"), world.calls("ListImages")
    # the listing shows the jobs' images by the key each one wears; a job is asked for its progress only
    # as a sample, each time the oldest is twice as old: a few in all, not one per job
    assert jobs <= 6, jobs
    assert jobs + listings <= 4 * len(instances), (jobs, listings)
