"""A reply lost after the cloud did the work (the emulator's ``lose_reply_next``), for every vendor and
kind of call: the retry adopts what the first call made, and nothing exists twice."""

from __future__ import annotations

import pytest
from world import World

COPY_ACTION = {"aliyun": "CopyImage", "huawei": "CopyImageCrossRegion", "jdcloud": "copyImages"}


def dests(world: World) -> list[str]:
    return [t["region"] if isinstance(t, dict) else t for t in world.vendor.copy_to]


def lose(world: World, action: str, count: int = 1) -> None:
    world.emulator.faults.set({"vendor": world.vendor.name, "action": action, "lose_reply_next": count})


def images_of(world: World, region: str, source: str | None = None) -> list[str]:
    return [
        i.image_id
        for i in world.images(region)
        if (source is None and i.source_instance_id == world.vendor.web) or (source and i.source_image_id == source)
    ]


@pytest.mark.parametrize("kind", ["create", "copy"])
def test_a_lost_reply_is_adopted_not_repeated(world: World, kind: str):
    world.write_policies(world.policy())
    lose(world, world.vendor.create_action if kind == "create" else COPY_ACTION[world.vendor.name])
    code, report = world.run_json("--policy", "nightly")  # JSON only: no SDK text about the lost reply
    work = report["executions"][0]["instances"][world.vendor.web]
    assert (code, work["status"]) == (0, "done"), report
    source = work["image"]["image_id"]
    assert images_of(world, world.vendor.region) == [source]
    for region in dests(world):
        assert len(images_of(world, region, source)) == 1, region
    assert any(e["outcome"] == "adopted" and e["step"] == kind for e in world.log_events())


@pytest.mark.parametrize(
    ("fault", "adopted_step"),
    [
        ({"action": "CreateImage", "lose_reply_next": 1}, "create"),  # the system image and its data image
        # The system image's copy goes through; the data image's copy is made, and its answer lost.
        ({"action": "CopyImageCrossRegion", "pass_next": 1, "lose_reply_next": 1}, "copy"),
    ],
)
def test_huawei_lost_replies_with_a_data_image(world_for, fault: dict[str, object], adopted_step: str):
    world = world_for("huawei")
    world.write_policies(world.policy(disks=["vda", "vdb"], copy_to=["cn-east-3"]), concurrency=1)  # in order
    world.emulator.faults.set({"vendor": "huawei", **fault})
    code, report = world.run_json("--policy", "nightly")
    work = report["executions"][0]["instances"][world.vendor.web]
    assert (code, work["status"]) == (0, "done"), report
    made = [i for i in world.images() if i.source_instance_id == world.vendor.web]
    assert sorted(i.kind for i in made) == ["data", "system"]
    for image in made:
        assert len(images_of(world, "cn-east-3", image.image_id)) == 1, image.kind
    assert len(work["copies"]) == 2
    adopted = [e for e in world.log_events() if e["outcome"] == "adopted"]
    assert [e["step"] for e in adopted] == [adopted_step]
    if adopted_step == "copy":
        assert adopted[0]["name"].endswith("-data1")


def test_aliyun_lost_replies_on_the_snapshot_path(world_for):
    world = world_for("aliyun")
    world.write_policies(world.policy(disks=["vda"], copy_to=[]))
    lose(world, "CreateSnapshot")
    world.emulator.faults.set({"vendor": "aliyun", "action": "CreateImage", "lose_reply_next": 1})
    code, report = world.run_json("--policy", "nightly")
    assert code == 0, report
    assert len(images_of(world, world.vendor.region)) == 1
    snapshots = world.emulator.model.list_snapshots(world.vendor.account, world.vendor.region)
    assert len([s for s in snapshots if s.tags]) == 1  # the ClientToken made the retried snapshot the same one
