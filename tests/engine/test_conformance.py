"""End-to-end runs for the vendor rules of issue #8 (adapters and emulator conformance)."""

from __future__ import annotations

from collections.abc import Callable

from world import World

MID = "e05b3e13-f8c1-40fb-ba82-8159c9d22950"  # Huawei cn-north-1: vda 40 GB + vdb 100 GB


def test_huawei_copy_limit_is_per_image_not_per_instance(world_for: Callable[[str], World]) -> None:
    """A 40 + 100 GB instance in cn-north-1 (128 GB limit), imaged as a system and a data image (a CBR
    account with no vault configured): each image is under the limit, so both are copied."""
    world = world_for("huawei")
    world.emulator.model.set_whole_image_backup(world.vendor.account, "cbr")
    world.write_policies(
        world.policy(region="cn-north-1", instances=[MID], disks=["vda", "vdb"], copy_to=["cn-north-4"])
    )
    code, report = world.run_json("--policy", "nightly")
    (work,) = report["executions"][0]["instances"].values()
    assert (code, work["status"]) == (0, "done"), work
    assert sorted(c["state"] for c in work["copies"].values()) == ["available", "available"]
    assert work["image"]["size_gb"] == 40


def test_jd_an_encrypted_image_never_costs_a_healthy_one_its_copy(world_for: Callable[[str], World]) -> None:
    """Today two untracked copies of the healthy image were left when it shared a batch with an encrypted one."""
    world = world_for("jdcloud")
    healthy, encrypted = world.vendor.web, "i-7ns26lrwbq"  # jd-encrypted-01: an encrypted data disk
    world.write_policies(world.policy(instances=[healthy, encrypted], copy_to=["cn-east-2"]))
    _, report = world.run_json("--policy", "nightly")
    works = report["executions"][0]["instances"]
    assert works[healthy]["status"] == "done"
    assert all(c["state"] == "available" for c in works[healthy]["copies"].values())
    assert all(c["state"] != "available" for c in works[encrypted]["copies"].values())
    recorded = {c["image_id"] for w in works.values() for c in w["copies"].values() if c.get("image_id")}
    assert {i.image_id for i in world.images("cn-east-2")} == recorded  # nothing untracked


def test_jd_two_runs_a_day_make_two_names_that_keep_the_time(world_for: Callable[[str], World]) -> None:
    world = world_for("jdcloud")
    world.write_policies(world.policy(name="jd-weekly", copy_to=[]))
    for _ in range(2):
        assert world.run_json("--policy", "jd-weekly", "--force")[0] == 0
    names = [i.name for i in world.images() if i.source_instance_id == world.vendor.web]
    assert len(names) == 2 and all(len(n) <= 32 and n.endswith("Z") for n in names)
