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
