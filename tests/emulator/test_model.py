"""CloudModel rules, one by one, with the (kind, detail) front-ends map to vendor errors."""

from __future__ import annotations

import json
from copy import deepcopy
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from imagebak.emulator.clock import ManualClock, SystemClock
from imagebak.emulator.fixture import (
    DEFAULT_FIXTURE,
    FixtureError,
    load_fixture,
    load_state,
    project_id,
    save_state,
)
from imagebak.emulator.model import CloudError, CloudModel
from imagebak.emulator.rules import RULES, Latency
from imagebak.vendors import VENDORS

T0 = datetime(2024, 3, 1, 1, 0, tzinfo=timezone.utc)
ALI, HW, JD = "ali", "hw", "jd"

# Fixed durations (no jitter): image 100 s, snapshot 50 s, copy 200 s.
LATENCIES = {
    "default": {
        "image": {"base_seconds": 100},
        "snapshot": {"base_seconds": 50},
        "copy": {"base_seconds": 200},
    }
}


def disk(device: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"device": device, "size_gb": size, "is_system": device == "vda", **extra}


def world() -> dict[str, Any]:
    """A small fixture: one account per vendor, a handful of instances."""
    return {
        "seed": 7,
        "latencies": deepcopy(LATENCIES),
        "accounts": [
            {
                "name": ALI,
                "provider": "aliyun",
                "access_key_id": "emulated-ali-key",
                "secret": "emulated-ali-secret",
                "regions": ["cn-shanghai", "cn-beijing"],
                "instances": [
                    {
                        "instance_id": "i-web",
                        "region": "cn-shanghai",
                        "disks": [disk("vda", 40), disk("vdb", 100)],
                    },
                    {
                        "instance_id": "i-mixed",
                        "region": "cn-shanghai",
                        "disks": [disk("vda", 40), disk("vdb", 100, category="local"), disk("vdc", 20)],
                    },
                    {
                        "instance_id": "i-localsys",
                        "region": "cn-shanghai",
                        "disks": [disk("vda", 40, category="local")],
                    },
                    {
                        "instance_id": "i-enc",
                        "region": "cn-shanghai",
                        "disks": [disk("vda", 40, encrypted=True)],
                    },
                ],
            },
            {
                "name": HW,
                "provider": "huawei",
                "access_key_id": "emulated-hw-key",
                "secret": "emulated-hw-secret",
                "regions": {
                    "cn-north-4": "0" * 32,
                    "cn-north-1": None,
                    "cn-east-3": None,
                    "ap-southeast-1": None,
                },
                "instances": [
                    {
                        "instance_id": "hw-small",
                        "region": "cn-north-4",
                        "disks": [disk("vda", 40), disk("vdb", 60)],
                    },
                    {
                        "instance_id": "hw-mid",
                        "region": "cn-north-4",
                        "disks": [disk("vda", 40), disk("vdb", 160)],
                    },
                    {
                        "instance_id": "hw-mid-n1",
                        "region": "cn-north-1",
                        "disks": [disk("vda", 40), disk("vdb", 100)],
                    },
                    {
                        "instance_id": "hw-huge",
                        "region": "cn-north-4",
                        "disks": [disk("vda", 100), disk("vdb", 300)],
                    },
                    {"instance_id": "hw-sg", "region": "ap-southeast-1", "disks": [disk("vda", 40)]},
                ],
                "images": [
                    {
                        "image_id": "iso-1",
                        "region": "cn-north-4",
                        "name": "centos-iso",
                        "size_gb": 5,
                        "image_type": "iso",
                    }
                ],
            },
            {
                "name": JD,
                "provider": "jdcloud",
                "access_key_id": "emulated-jd-key",
                "secret": "emulated-jd-secret",
                "regions": ["cn-north-1", "cn-east-2"],
                "instances": [{"instance_id": "i-jd", "region": "cn-north-1", "disks": [disk("vda", 40)]}],
            },
        ],
    }


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def model(clock: ManualClock) -> CloudModel:
    return load_fixture(world(), clock=clock).model


def raises(kind: str, detail: str | None = None) -> Any:
    """Assert a CloudError of this kind (and detail); yields the exception info."""

    class _Check:
        def __enter__(self) -> None:
            self._ctx = pytest.raises(CloudError)
            self.info = self._ctx.__enter__()

        def __exit__(self, *exc: Any) -> bool:
            handled = self._ctx.__exit__(*exc)
            assert (self.info.value.kind, self.info.value.detail) == (kind, detail), repr(self.info.value)
            return bool(handled)

    return _Check()


def available_image(model: CloudModel, clock: ManualClock, account: str, region: str, instance: str, **kw: Any):
    img = model.create_image(account, region, instance, name=f"img-{instance}", **kw)
    clock.advance(100)
    assert model.get_image(account, region, img.image_id).status == "available"
    return img


# ---- ids and lookups ----------------------------------------------------------------------


def test_ids_follow_each_vendor_format(model: CloudModel) -> None:
    ali = model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    hw = model.create_image(HW, "cn-north-4", "hw-small", name="h")
    jd = model.create_image(JD, "cn-north-1", "i-jd", name="j")
    task = model.create_task(HW, "cn-north-4", "createImage", [hw.image_id])
    assert ali.image_id.startswith("m-") and len(ali.image_id) == 22 and ali.image_id[2:].isalnum()
    assert ali.disks[0].snapshot_id.startswith("s-") and len(ali.disks[0].snapshot_id) == 22
    assert len(hw.image_id) == 36 and hw.image_id[14] == "4"
    assert len(task.task_id) == 32 and int(task.task_id, 16) >= 0
    assert jd.image_id.startswith("img-") and len(jd.image_id) == 14
    assert jd.disks[0].snapshot_id.startswith("snapshot-") and len(jd.disks[0].snapshot_id) == 19


def test_lookups_and_not_found(model: CloudModel) -> None:
    assert model.account_by_key("aliyun", "emulated-ali-key").name == ALI
    assert model.account_by_key("huawei", "emulated-ali-key") is None
    assert model.regions(JD) == ["cn-north-1", "cn-east-2"]
    assert model.region_for_project(HW, "0" * 32) == "cn-north-4"
    assert model.region_for_project(HW, project_id(HW, "cn-east-3")) == "cn-east-3"
    assert [i.instance_id for i in model.list_instances(ALI, "cn-shanghai", ["i-web", "i-nope"])] == ["i-web"]
    assert [d.device for d in model.list_disks(ALI, "cn-shanghai", instance_id="i-mixed")] == [
        "vda",
        "vdb",
        "vdc",
    ]
    vdb = model.get_instance(ALI, "cn-shanghai", "i-web").disks[1]
    assert model.get_disk(ALI, "cn-shanghai", vdb.disk_id).size_gb == 100
    for call in (
        lambda: model.get_instance(ALI, "cn-beijing", "i-web"),  # wrong region
        lambda: model.get_image(ALI, "cn-shanghai", "m-missing"),
        lambda: model.get_snapshot(ALI, "cn-shanghai", "s-missing"),
        lambda: model.get_disk(ALI, "cn-beijing", vdb.disk_id),
        lambda: model.get_task(HW, "f" * 32),
        lambda: model.account("nobody"),
    ):
        with raises("not_found"):
            call()
    with raises("invalid_parameter", "unknown_region"):
        model.list_images(ALI, "eu-central-1")


def test_returned_entities_are_copies(model: CloudModel) -> None:
    img = model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    img.name = "tampered"
    img.tags["x"] = "y"
    img.disks[0].size_gb = 1
    img.disks.append(img.disks[0])
    again = model.get_image(ALI, "cn-shanghai", img.image_id)
    assert again.name == "a" and again.tags == {}
    assert [d.size_gb for d in again.disks] == [40, 100]
    instance = model.get_instance(ALI, "cn-shanghai", "i-web")
    instance.disks[0].size_gb = 1
    assert model.get_instance(ALI, "cn-shanghai", "i-web").disks[0].size_gb == 40


# ---- creation, lazy transitions, progress ---------------------------------------------------


def test_create_image_lazy_transition_and_progress(model: CloudModel, clock: ManualClock) -> None:
    img = model.create_image(ALI, "cn-shanghai", "i-web", name="web", description="d", tags={"policy": "p"})
    assert (img.status, img.progress, img.size_gb, img.kind) == ("creating", 0, 140, "system")
    assert img.created_at == T0 and img.ready_at == T0 + timedelta(seconds=100)
    assert [d.device for d in img.disks] == ["vda", "vdb"] and img.source_instance_id == "i-web"
    snaps = [model.get_snapshot(ALI, "cn-shanghai", d.snapshot_id) for d in img.disks]
    assert {s.status for s in snaps} == {"progressing"}
    clock.advance(40)
    assert model.get_image(ALI, "cn-shanghai", img.image_id).progress == 40
    clock.advance(59)
    mid = model.get_image(ALI, "cn-shanghai", img.image_id)
    assert (mid.status, mid.progress) == ("creating", 99)
    clock.advance(1)
    done = model.get_image(ALI, "cn-shanghai", img.image_id)
    assert (done.status, done.progress) == ("available", 100)
    assert model.get_snapshot(ALI, "cn-shanghai", img.disks[0].snapshot_id).status == "accomplished"


def test_progress_at_any_moment_whatever_is_in_flight(model: CloudModel, clock: ManualClock) -> None:
    """Refreshes touch only what is due; every reading still equals whole percents of the elapsed time."""
    images = [model.create_image(ALI, "cn-shanghai", "i-web", name=f"web-{n}") for n in range(3)]
    clock.advance(0.25)
    steps = [0.3, 7.7, 0.01, 25, 0.5, 33.3, 0.99, 12, 20]  # ends past the 100 s the images take
    elapsed = 0.25
    for step in steps:
        clock.advance(step)
        elapsed += step
        expected = ("available", 100) if elapsed >= 100 else ("creating", int(elapsed))
        for img in images:
            seen = model.get_image(ALI, "cn-shanghai", img.image_id)
            assert (seen.status, seen.progress) == expected, elapsed


def test_durations_scale_with_size_and_jitter_is_seeded(clock: ManualClock) -> None:
    fixture = world()
    fixture["latencies"] = {"default": {"image": {"base_seconds": 60, "per_gb_seconds": 2, "jitter": 0.5}}}
    first = load_fixture(fixture, clock=ManualClock(T0)).model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    second = load_fixture(fixture, clock=ManualClock(T0)).model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    seconds = (first.ready_at - first.created_at).total_seconds()
    assert (60 + 2 * 140) * 0.5 <= seconds <= (60 + 2 * 140) * 1.5
    assert first.ready_at == second.ready_at and first.image_id == second.image_id


def test_rules_cover_exactly_the_vendors() -> None:
    assert tuple(RULES) == VENDORS


def test_latency_draw_without_jitter_is_exact() -> None:
    import random

    assert Latency(10, 0.5).draw(100, random.Random(1)) == 60
    assert RULES["huawei"].latency["copy"].base_seconds > 0


def test_local_disks_never_in_image_and_devices_filter(model: CloudModel) -> None:
    everything = model.create_image(ALI, "cn-shanghai", "i-mixed", name="all")
    assert [d.device for d in everything.disks] == ["vda", "vdc"] and everything.size_gb == 60
    subset = model.create_image(ALI, "cn-shanghai", "i-mixed", name="sub", devices=["vda", "vdb", "vdz"])
    assert [d.device for d in subset.disks] == ["vda"]


def test_devices_must_include_system_disk(model: CloudModel) -> None:
    with raises("invalid_parameter", "missing_system_disk"):
        model.create_image(ALI, "cn-shanghai", "i-web", name="x", devices=["vdb"])


def test_local_system_disk_cannot_be_imaged(model: CloudModel) -> None:
    with raises("invalid_status", "local_system_disk"):
        model.create_image(ALI, "cn-shanghai", "i-localsys", name="x")
    assert model.quota(ALI, "cn-shanghai", "image")[0] == 0


def test_unknown_instance_and_kind(model: CloudModel) -> None:
    with raises("not_found"):
        model.create_image(ALI, "cn-shanghai", "i-nope", name="x")
    with raises("invalid_parameter"):
        model.create_image(ALI, "cn-shanghai", "i-web", name="x", kind="weird")


def test_data_image(model: CloudModel) -> None:
    inst = model.get_instance(ALI, "cn-shanghai", "i-mixed")
    vda, vdb_local, vdc = inst.disks
    img = model.create_data_image(ALI, "cn-shanghai", vdc.disk_id, name="data")
    assert (img.kind, img.size_gb, img.source_instance_id) == ("data", 20, "i-mixed")
    with raises("invalid_status", "local_disk"):
        model.create_data_image(ALI, "cn-shanghai", vdb_local.disk_id, name="x")
    with raises("invalid_parameter", "system_disk"):
        model.create_data_image(ALI, "cn-shanghai", vda.disk_id, name="x")


def test_snapshots_and_image_from_snapshots(model: CloudModel, clock: ManualClock) -> None:
    vda, vdb = model.get_instance(ALI, "cn-shanghai", "i-web").disks
    s1 = model.create_snapshot(ALI, "cn-shanghai", vda.disk_id, name="s1", tags={"k": "v"})
    s2 = model.create_snapshot(ALI, "cn-shanghai", vdb.disk_id)
    assert (s1.status, s1.device, s1.tags, s1.name) == ("progressing", "vda", {"k": "v"}, "s1")
    with raises("invalid_status", "snapshot_not_ready"):
        model.create_image_from_snapshots(ALI, "cn-shanghai", [(s1.snapshot_id, "vda")], name="x")
    clock.advance(25)
    assert model.get_snapshot(ALI, "cn-shanghai", s1.snapshot_id).progress == 50
    clock.advance(25)
    with raises("invalid_parameter", "missing_system_disk"):
        model.create_image_from_snapshots(ALI, "cn-shanghai", [(s2.snapshot_id, "vdb")], name="x")
    with raises("invalid_parameter", "duplicate_device"):
        model.create_image_from_snapshots(
            ALI, "cn-shanghai", [(s1.snapshot_id, "vda"), (s2.snapshot_id, "vda")], name="x"
        )
    img = model.create_image_from_snapshots(
        ALI, "cn-shanghai", [(s1.snapshot_id, "vda"), (s2.snapshot_id, "vdb")], name="from-snaps"
    )
    assert [(d.device, d.snapshot_id) for d in img.disks] == [
        ("vda", s1.snapshot_id),
        ("vdb", s2.snapshot_id),
    ]
    assert img.source_instance_id == "i-web" and img.size_gb == 140
    assert model.quota(ALI, "cn-shanghai", "snapshot")[0] == 2  # the image reuses the snapshots
    local = model.get_instance(ALI, "cn-shanghai", "i-mixed").disks[1]
    with raises("unsupported", "local_disk"):
        model.create_snapshot(ALI, "cn-shanghai", local.disk_id)


def test_list_images_filters_and_order(model: CloudModel, clock: ManualClock) -> None:
    a = model.create_image(ALI, "cn-shanghai", "i-web", name="a", tags={"policy": "p1", "env": "prod"})
    clock.advance(100)
    b = model.create_image(ALI, "cn-shanghai", "i-web", name="b", tags={"policy": "p1"})
    c = model.create_image(ALI, "cn-shanghai", "i-web", name="c", tags={"policy": "p2"})
    ids = lambda imgs: [i.image_id for i in imgs]  # noqa: E731
    assert ids(model.list_images(ALI, "cn-shanghai")) == [c.image_id, b.image_id, a.image_id]
    assert ids(model.list_images(ALI, "cn-shanghai", statuses=["available"])) == [a.image_id]
    assert ids(model.list_images(ALI, "cn-shanghai", tags={"policy": "p1"})) == [b.image_id, a.image_id]
    assert ids(model.list_images(ALI, "cn-shanghai", tags={"policy": "p1", "env": "prod"})) == [a.image_id]
    assert ids(model.list_images(ALI, "cn-shanghai", ids=[a.image_id, c.image_id, "m-x"])) == [
        c.image_id,
        a.image_id,
    ]
    assert ids(model.list_images(ALI, "cn-shanghai", name="b")) == [b.image_id]
    assert model.list_images(ALI, "cn-beijing") == []


def test_tags(model: CloudModel) -> None:
    img = model.create_image(ALI, "cn-shanghai", "i-web", name="a", tags={"a": "1"})
    snap_id = img.disks[0].snapshot_id
    model.tag_resources(ALI, "cn-shanghai", [img.image_id, snap_id], {"b": "2"})
    assert model.get_image(ALI, "cn-shanghai", img.image_id).tags == {"a": "1", "b": "2"}
    assert model.get_snapshot(ALI, "cn-shanghai", snap_id).tags == {"b": "2"}
    with raises("not_found"):
        model.tag_resources(ALI, "cn-shanghai", [img.image_id, "m-missing"], {"c": "3"})
    assert "c" not in model.get_image(ALI, "cn-shanghai", img.image_id).tags  # all-or-nothing
    model.untag_resources(ALI, "cn-shanghai", [img.image_id], ["a", "zzz"])
    assert model.get_image(ALI, "cn-shanghai", img.image_id).tags == {"b": "2"}


# ---- idempotency --------------------------------------------------------------------------


def test_client_token_dedupes_per_account_action_token(model: CloudModel, clock: ManualClock) -> None:
    first = model.create_image(ALI, "cn-shanghai", "i-web", name="a", client_token="tok-1")
    again = model.create_image(ALI, "cn-shanghai", "i-web", name="a", client_token="tok-1")
    assert again.image_id == first.image_id
    assert model.quota(ALI, "cn-shanghai", "image")[0] == 1
    other = model.create_image(ALI, "cn-shanghai", "i-web", name="b", client_token="tok-2")
    assert other.image_id != first.image_id
    clock.advance(100_000)  # a disk takes one snapshot at a time
    snap = model.create_snapshot(ALI, "cn-shanghai", first.disks[0].disk_id or "", client_token="tok-1")
    assert snap.snapshot_id not in (first.image_id,)  # another action: no clash
    assert model.create_snapshot(ALI, "cn-shanghai", "ignored", client_token="tok-1").snapshot_id == snap.snapshot_id


def test_client_token_replay_wins_over_later_refusal(model: CloudModel) -> None:
    """A retried call after the quota filled up still returns the first result, as on the cloud."""
    first = model.create_image(ALI, "cn-shanghai", "i-web", name="a", client_token="tok")
    model.set_quota(ALI, "cn-shanghai", "image", 1)
    assert model.create_image(ALI, "cn-shanghai", "i-web", name="a", client_token="tok").image_id == first.image_id


def test_copy_idempotency(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    c1 = model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c", client_token="t")
    c2 = model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c", client_token="t")
    assert c1.image_id == c2.image_id and len(model.list_images(ALI, "cn-beijing")) == 1


# ---- quotas -------------------------------------------------------------------------------


def test_quota_defaults_and_image_quota(model: CloudModel) -> None:
    assert model.quota(ALI, "cn-shanghai", "image") == (0, RULES["aliyun"].default_quota["image"])
    assert model.quota(HW, "cn-north-4", "image")[0] == 1  # the ISO image of the fixture
    model.set_quota(ALI, "cn-shanghai", "image", 1)
    model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    with raises("quota_exceeded", "image"):
        model.create_image(ALI, "cn-shanghai", "i-web", name="b")
    assert model.quota(ALI, "cn-shanghai", "image") == (1, 1)
    with pytest.raises(ValueError):
        model.set_quota(ALI, "cn-shanghai", "bananas", 1)
    with raises("invalid_parameter"):
        model.quota(ALI, "cn-shanghai", "bananas")


def test_snapshot_quota_counts_included_disks_and_is_checked_first(model: CloudModel) -> None:
    model.set_quota(ALI, "cn-shanghai", "snapshot", 3)
    model.create_image(ALI, "cn-shanghai", "i-web", name="a")  # 2 snapshots
    with raises("quota_exceeded", "snapshot"):
        model.create_image(ALI, "cn-shanghai", "i-web", name="b")  # needs 2 more
    assert model.quota(ALI, "cn-shanghai", "image")[0] == 1  # nothing half-created
    assert model.quota(ALI, "cn-shanghai", "snapshot") == (2, 3)
    model.create_image(ALI, "cn-shanghai", "i-enc", name="c")  # 1 disk: fits
    assert model.quota(ALI, "cn-shanghai", "snapshot") == (3, 3)


def test_copy_consumes_destination_quota_and_delete_frees(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    model.set_quota(ALI, "cn-beijing", "snapshot", 1)
    with raises("quota_exceeded", "snapshot"):
        model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c")
    model.set_quota(ALI, "cn-beijing", "snapshot", 10)
    model.set_quota(ALI, "cn-beijing", "image", 1)
    copy = model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c")
    assert model.quota(ALI, "cn-beijing", "image") == (1, 1)
    assert model.quota(ALI, "cn-beijing", "snapshot")[0] == 2
    with raises("quota_exceeded", "image"):
        model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c2")
    clock.advance(200)
    model.delete_image(ALI, "cn-beijing", copy.image_id)
    assert model.quota(ALI, "cn-beijing", "image")[0] == 0
    assert model.quota(ALI, "cn-beijing", "snapshot")[0] == 0


# ---- copies -------------------------------------------------------------------------------


def test_copy_lifecycle(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    copy = model.copy_image(
        ALI, "cn-shanghai", src.image_id, "cn-beijing", name="dr", description="dr copy", tags={"t": "1"}
    )
    assert (copy.region, copy.status, copy.source_image_id, copy.source_region) == (
        "cn-beijing",
        "creating",
        src.image_id,
        "cn-shanghai",
    )
    assert (copy.name, copy.description, copy.tags, copy.size_gb) == ("dr", "dr copy", {"t": "1"}, 140)
    assert all(d.snapshot_id.startswith("s-") for d in copy.disks)
    assert copy.disks[0].snapshot_id != src.disks[0].snapshot_id
    clock.advance(100)
    assert model.get_image(ALI, "cn-beijing", copy.image_id).progress == 50
    clock.advance(100)
    assert model.get_image(ALI, "cn-beijing", copy.image_id).status == "available"


def test_copy_requires_available_source(model: CloudModel) -> None:
    img = model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    with raises("invalid_status", "image_not_available"):
        model.copy_image(ALI, "cn-shanghai", img.image_id, "cn-beijing", name="c")


def test_copy_region_checks(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    with raises("invalid_parameter", "same_region"):
        model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-shanghai", name="c")
    with raises("invalid_parameter", "unknown_region"):
        model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-hangzhou", name="c")
    with raises("not_found"):
        model.copy_image(ALI, "cn-beijing", src.image_id, "cn-shanghai", name="c")


def test_iso_and_encrypted_images_are_never_copied(model: CloudModel, clock: ManualClock) -> None:
    with raises("unsupported", "iso_image"):
        model.copy_image(HW, "cn-north-4", "iso-1", "cn-east-3", name="c")
    enc = available_image(model, clock, ALI, "cn-shanghai", "i-enc")
    assert enc.encrypted
    with raises("unsupported", "encrypted_image"):
        model.copy_image(ALI, "cn-shanghai", enc.image_id, "cn-beijing", name="c")


def test_huawei_copy_size_limit_depends_on_source_region(model: CloudModel, clock: ManualClock) -> None:
    mid = available_image(model, clock, HW, "cn-north-4", "hw-mid")  # 200 GB from cn-north-4: limit 300
    assert model.copy_image(HW, "cn-north-4", mid.image_id, "cn-east-3", name="c").status == "creating"
    huge = available_image(model, clock, HW, "cn-north-4", "hw-huge")  # 400 GB
    with raises("unsupported", "copy_size_limit"):
        model.copy_image(HW, "cn-north-4", huge.image_id, "cn-east-3", name="c")
    n1 = available_image(model, clock, HW, "cn-north-1", "hw-mid-n1")  # 140 GB from cn-north-1: limit 128
    with raises("unsupported", "copy_size_limit"):
        model.copy_image(HW, "cn-north-1", n1.image_id, "cn-north-4", name="c")
    assert RULES["huawei"].copy_size_limit("cn-south-1") == 300
    assert RULES["huawei"].copy_size_limit("cn-east-3") == 300
    assert RULES["huawei"].copy_size_limit("ap-southeast-1") == 128
    assert RULES["aliyun"].copy_size_limit("cn-shanghai") is None


def test_huawei_whole_image_regions_and_vault(model: CloudModel, clock: ManualClock) -> None:
    whole = available_image(model, clock, HW, "cn-north-4", "hw-small", kind="whole")
    assert whole.kind == "whole"
    with raises("unsupported", "whole_image_region"):
        model.copy_image(HW, "cn-north-4", whole.image_id, "ap-southeast-1", name="c", vault_id="v")
    with raises("invalid_parameter", "vault_required"):
        model.copy_image(HW, "cn-north-4", whole.image_id, "cn-east-3", name="c")
    copy = model.copy_image(HW, "cn-north-4", whole.image_id, "cn-east-3", name="c", vault_id="vault-1")
    assert (copy.kind, copy.vault_id) == ("whole", "vault-1")
    sg = available_image(model, clock, HW, "ap-southeast-1", "hw-sg", kind="whole")
    with raises("unsupported", "whole_image_region"):
        model.copy_image(HW, "ap-southeast-1", sg.image_id, "cn-north-4", name="c", vault_id="v")
    system = available_image(model, clock, HW, "ap-southeast-1", "hw-sg")
    assert model.copy_image(HW, "ap-southeast-1", system.image_id, "cn-north-4", name="c").kind == "system"


def test_huawei_at_most_five_concurrent_copies(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, HW, "cn-north-4", "hw-small")
    copies = [
        model.copy_image(HW, "cn-north-4", src.image_id, region, name=f"c{i}")
        for i, region in enumerate(["cn-east-3", "cn-north-1", "ap-southeast-1", "cn-east-3", "cn-north-1"])
    ]
    with raises("limit_exceeded", "concurrent_copies"):
        model.copy_image(HW, "cn-north-4", src.image_id, "cn-east-3", name="c6")
    model.cancel_copy(HW, copies[0].region, copies[0].image_id)
    sixth = model.copy_image(HW, "cn-north-4", src.image_id, "cn-east-3", name="c6")
    with raises("limit_exceeded", "concurrent_copies"):
        model.copy_image(HW, "cn-north-4", src.image_id, "cn-east-3", name="c7")
    clock.advance(200)  # all finish: the slots are free again
    assert model.get_image(HW, "cn-east-3", sixth.image_id).status == "available"
    model.copy_image(HW, "cn-north-4", src.image_id, "cn-east-3", name="c7")


def test_aliyun_has_no_concurrent_copy_limit(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    for i in range(7):
        model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name=f"c{i}")
    assert RULES["jdcloud"].max_images_per_copy_call == 10


def test_delete_blocked_while_copying(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    copy = model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c")
    with raises("invalid_status", "image_copying"):
        model.delete_image(ALI, "cn-shanghai", src.image_id)
    clock.advance(200)
    model.delete_image(ALI, "cn-shanghai", src.image_id)
    with raises("not_found"):
        model.get_image(ALI, "cn-shanghai", src.image_id)
    assert model.get_image(ALI, "cn-beijing", copy.image_id).status == "available"
    with raises("not_found"):
        model.delete_image(ALI, "cn-shanghai", src.image_id)


def test_cancel_copy(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    copy = model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c")
    model.cancel_copy(ALI, "cn-beijing", copy.image_id)
    with raises("not_found"):
        model.get_image(ALI, "cn-beijing", copy.image_id)
    assert model.quota(ALI, "cn-beijing", "snapshot")[0] == 0
    model.delete_image(ALI, "cn-shanghai", src.image_id)  # no longer being copied
    src2 = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    done = model.copy_image(ALI, "cn-shanghai", src2.image_id, "cn-beijing", name="c")
    clock.advance(200)
    with raises("invalid_status", "copy_finished"):
        model.cancel_copy(ALI, "cn-beijing", done.image_id)
    with raises("invalid_status", "copy_finished"):
        model.cancel_copy(ALI, "cn-shanghai", src2.image_id)  # not a copy at all


def test_delete_image_snapshots(model: CloudModel, clock: ManualClock) -> None:
    img = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    keep = available_image(model, clock, ALI, "cn-shanghai", "i-enc")
    model.delete_image(ALI, "cn-shanghai", img.image_id)
    assert model.quota(ALI, "cn-shanghai", "snapshot")[0] == 1
    model.delete_image(ALI, "cn-shanghai", keep.image_id, delete_snapshots=False)
    assert model.get_snapshot(ALI, "cn-shanghai", keep.disks[0].snapshot_id).status == "accomplished"


# ---- tasks (Huawei jobs) ------------------------------------------------------------------


def test_task_status_follows_images(model: CloudModel, clock: ManualClock) -> None:
    main = model.create_image(HW, "cn-north-4", "hw-small", name="sys", devices=["vda"])
    data_disk = model.get_instance(HW, "cn-north-4", "hw-small").disks[1]
    sub = model.create_data_image(HW, "cn-north-4", data_disk.disk_id, name="data")
    task = model.create_task(HW, "cn-north-4", "createImage", [main.image_id, sub.image_id])
    assert model.get_task(HW, task.task_id).image_ids == [main.image_id, sub.image_id]
    assert model.task_status(task) == ("running", None)
    clock.advance(100)
    assert model.task_status(task) == ("success", None)
    model.delete_image(HW, "cn-north-4", main.image_id)
    assert model.task_status(task) == ("success", None)  # outcome frozen once it was known
    with raises("not_found"):
        model.get_task(ALI, task.task_id)


def test_task_fails_with_image_or_cancel(model: CloudModel, clock: ManualClock) -> None:
    img = model.create_image(HW, "cn-north-4", "hw-small", name="sys")
    task = model.create_task(HW, "cn-north-4", "createImage", [img.image_id])
    model.fail_image(HW, "cn-north-4", img.image_id, reason="disk error")
    assert model.task_status(task) == ("failed", "disk error")
    src = available_image(model, clock, HW, "cn-north-4", "hw-small")
    copy = model.copy_image(HW, "cn-north-4", src.image_id, "cn-east-3", name="c")
    copy_task = model.create_task(HW, "cn-east-3", "copyImage", [copy.image_id])
    model.cancel_copy(HW, "cn-east-3", copy.image_id)
    assert model.task_status(copy_task) == ("failed", "copy cancelled")


# ---- all or nothing ----------------------------------------------------------------------
# Each test compares the model after a refused call with a twin that never saw the call: same
# entities, same pending injected failures, and the same next generated ids (the RNG is restored).


def twin(clock: ManualClock) -> CloudModel:
    return load_fixture(world(), clock=clock).model


def next_ids(model: CloudModel) -> tuple[str, str]:
    img = model.create_image(ALI, "cn-shanghai", "i-web", name="probe")
    return img.image_id, img.disks[0].snapshot_id


def test_atomic_image_and_data_images_leave_nothing_when_a_data_image_is_refused(
    model: CloudModel, clock: ManualClock
) -> None:
    """Huawei CreateImage with data_images: the system image is made, then a data image is refused."""
    model.fail_next_creations(1)
    model.set_quota(HW, "cn-north-4", "image", model.quota(HW, "cn-north-4", "image")[0] + 1)
    vdb = model.get_instance(HW, "cn-north-4", "hw-small").disks[1]
    with raises("quota_exceeded", "image"), model.atomic():
        system = model.create_image(HW, "cn-north-4", "hw-small", name="sys", devices=["vda"])
        model.create_data_image(HW, "cn-north-4", vdb.disk_id, name="data")
    with raises("not_found"):
        model.get_image(HW, "cn-north-4", system.image_id)
    assert [i.image_id for i in model.list_images(HW, "cn-north-4")] == ["iso-1"]
    assert model.list_snapshots(HW, "cn-north-4") == []
    assert model.pending_failures() == 1  # the refused call did not use up the injected failure
    reference = twin(clock)
    reference.fail_next_creations(1)
    assert next_ids(model) == next_ids(reference)


def test_atomic_copy_batch_leaves_no_copy_when_one_source_is_refused(model: CloudModel, clock: ManualClock) -> None:
    """JD copyImages: the first copy is started, the second source is not available."""
    reference = twin(clock)
    ready, _ = (m.create_image(ALI, "cn-shanghai", "i-web", name="ready") for m in (model, reference))
    clock.advance(100)
    pending, _ = (m.create_image(ALI, "cn-shanghai", "i-enc", name="pending") for m in (model, reference))
    with raises("invalid_status", "image_not_available"), model.atomic():
        for source in (ready, pending):
            model.copy_image(ALI, "cn-shanghai", source.image_id, "cn-beijing", name="dr")
    assert model.list_images(ALI, "cn-beijing") == [] and model.quota(ALI, "cn-beijing", "snapshot")[0] == 0
    model.delete_image(ALI, "cn-shanghai", ready.image_id)  # no copy in flight blocks it
    assert next_ids(model)[1] == next_ids(reference)[1]


def test_atomic_image_and_job_leave_nothing_when_the_block_fails_after_them(
    model: CloudModel, clock: ManualClock
) -> None:
    """Huawei CreateWholeImage / CopyImageCrossRegion: image and job are kept together or not at all."""
    with pytest.raises(RuntimeError), model.atomic():
        img = model.create_image(HW, "cn-north-4", "hw-small", name="whole", kind="whole", client_token="tok")
        task = model.create_task(HW, "cn-north-4", "imsCreateWholeImageByInstanceJob", [img.image_id])
        raise RuntimeError("the answer could not be formatted")
    with raises("not_found"):
        model.get_task(HW, task.task_id)
    assert model.quota(HW, "cn-north-4", "image")[0] == 1  # only the fixture's ISO
    again = model.create_image(HW, "cn-north-4", "hw-small", name="whole", kind="whole", client_token="tok")
    assert again.image_id == img.image_id  # the token was forgotten, and the same id drawn again


def test_atomic_restores_task_outcomes_frozen_inside(model: CloudModel, clock: ManualClock) -> None:
    img = model.create_image(HW, "cn-north-4", "hw-small", name="sys")
    task = model.create_task(HW, "cn-north-4", "createImage", [img.image_id])
    with raises("not_found"), model.atomic():
        model.delete_image(HW, "cn-north-4", img.image_id)  # freezes the task as failed
        model.delete_image(HW, "cn-north-4", "no-such-image")
    clock.advance(100)
    assert model.task_status(task) == ("success", None)


def test_refused_instance_leaves_no_trace_and_draws_no_id(model: CloudModel, clock: ManualClock) -> None:
    """add_instance checks every disk before generating any disk id."""
    with pytest.raises(ValueError, match="exactly one disk"):
        model.add_instance(
            ALI,
            "cn-shanghai",
            "i-new",
            name="new",
            disks=[disk(device, 10, disk_id="", category="cloud", is_system=True) for device in ("vda", "vdb")],
        )
    assert "i-new" not in [i.instance_id for i in model.list_instances(ALI, "cn-shanghai")]
    assert next_ids(model) == next_ids(twin(clock))


def test_bad_state_changes_nothing(model: CloudModel, clock: ManualClock) -> None:
    """A state whose idempotency records or RNG state are malformed is refused before anything is replaced."""
    img = model.create_image(ALI, "cn-shanghai", "i-web", name="kept")
    saved = model.to_dict()
    model.fail_next_creations(2)
    for broken in ({"idempotency": [["ali", "create_image"]]}, {"rng_state": [3, [1, 2], None]}):
        state = {**saved, "images": [], **broken}
        with pytest.raises(ValueError, match="invalid model state"):
            model.load_dynamic_state(state)
        assert [i.image_id for i in model.list_images(ALI, "cn-shanghai")] == [img.image_id]
        assert model.pending_failures() == 2


# ---- model-owned faults -------------------------------------------------------------------


def test_fail_next_creations(model: CloudModel, clock: ManualClock) -> None:
    model.fail_next_creations(2, reason="boom")
    a = model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    b = model.create_image(ALI, "cn-shanghai", "i-enc", name="b")
    c = model.create_image(ALI, "cn-shanghai", "i-mixed", name="c")
    assert model.pending_failures() == 0
    assert model.get_image(ALI, "cn-shanghai", a.image_id).status == "creating"  # accepted first
    clock.advance(49)
    assert model.get_image(ALI, "cn-shanghai", a.image_id).status == "creating"
    clock.advance(1)  # half-way
    failed = model.get_image(ALI, "cn-shanghai", a.image_id)
    assert (failed.status, failed.fail_reason, failed.progress) == ("failed", "boom", 50)
    assert model.get_snapshot(ALI, "cn-shanghai", a.disks[0].snapshot_id).status == "failed"
    assert model.get_image(ALI, "cn-shanghai", b.image_id).status == "failed"
    clock.advance(50)
    assert model.get_image(ALI, "cn-shanghai", c.image_id).status == "available"
    assert model.quota(ALI, "cn-shanghai", "image")[0] == 3  # failed images still hold quota


def test_fail_next_applies_to_copies(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web")
    model.fail_next_creations(1)
    copy = model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c")
    clock.advance(100)
    assert model.get_image(ALI, "cn-beijing", copy.image_id).status == "failed"
    model.delete_image(ALI, "cn-shanghai", src.image_id)  # a failed copy no longer blocks deletion


def test_fail_image_now(model: CloudModel, clock: ManualClock) -> None:
    img = model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    clock.advance(30)
    model.fail_image(ALI, "cn-shanghai", img.image_id, reason="host lost")
    failed = model.get_image(ALI, "cn-shanghai", img.image_id)
    assert (failed.status, failed.fail_reason, failed.progress) == ("failed", "host lost", 30)
    clock.advance(1000)
    assert model.get_image(ALI, "cn-shanghai", img.image_id).status == "failed"
    with raises("invalid_status", "image_not_creating"):
        model.fail_image(ALI, "cn-shanghai", img.image_id)


def test_cloud_error_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        CloudError("oops", "x")
    err = CloudError("quota_exceeded", "full", resource="image", detail="image")
    assert (err.kind, err.message, err.resource, err.detail, str(err)) == (
        "quota_exceeded",
        "full",
        "image",
        "image",
        "full",
    )


# ---- clocks -------------------------------------------------------------------------------


def test_manual_clock() -> None:
    clock = ManualClock(datetime(2024, 1, 1))
    assert clock.now().tzinfo == timezone.utc
    clock.advance(60)
    assert clock.now() == datetime(2024, 1, 1, 0, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.ensure_not_before(datetime(2023, 1, 1, tzinfo=timezone.utc))
    assert clock.now().year == 2024
    clock.set(datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert clock.now().year == 2025


def test_system_clock_scales_and_never_goes_back() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    clock = SystemClock(time_scale=600, start=start)
    assert clock.now() >= start and clock.now().tzinfo is not None
    future = datetime(2030, 1, 1, tzinfo=timezone.utc)
    clock.ensure_not_before(future)
    assert clock.now() >= future
    with pytest.raises(ValueError):
        SystemClock(time_scale=0)


# ---- persistence --------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip(model: CloudModel, clock: ManualClock) -> None:
    src = available_image(model, clock, ALI, "cn-shanghai", "i-web", tags={"p": "1"}, client_token="tok")
    copy = model.copy_image(ALI, "cn-shanghai", src.image_id, "cn-beijing", name="c")
    task = model.create_task(
        HW, "cn-north-4", "createImage", [model.create_image(HW, "cn-north-4", "hw-small", name="h").image_id]
    )
    model.set_quota(ALI, "cn-beijing", "image", 9)
    model.fail_next_creations(1, "later")
    data = json.loads(json.dumps(model.to_dict()))
    clone = CloudModel.from_dict(data, ManualClock(clock.now()))
    assert clone.get_image(ALI, "cn-shanghai", src.image_id).tags == {"p": "1"}
    assert clone.get_image(ALI, "cn-beijing", copy.image_id).status == "creating"
    assert clone.get_task(HW, task.task_id).image_ids == task.image_ids
    assert clone.quota(ALI, "cn-beijing", "image") == (1, 9)
    assert clone.pending_failures() == 1
    assert clone.account("ali").secret == "emulated-ali-secret"
    assert clone.create_image(ALI, "cn-shanghai", "i-web", name="x", client_token="tok").image_id == src.image_id
    fresh = clone.create_image(ALI, "cn-shanghai", "i-web", name="new")
    assert fresh.image_id not in {i.image_id for i in model.list_images(ALI, "cn-shanghai")}
    assert clone.get_image(ALI, "cn-beijing", copy.image_id).ready_at == copy.ready_at


def test_state_file_round_trip_wins_over_fixture(tmp_path: Path, clock: ManualClock) -> None:
    state = tmp_path / "state" / "cloud.json"
    first = load_fixture(world(), clock=clock).model
    img = first.create_image(ALI, "cn-shanghai", "i-web", name="kept")
    save_state(first, state)
    assert json.loads(state.read_text())["version"] == 1
    assert [p.name for p in state.parent.iterdir()] == ["cloud.json"]  # no temp file left
    later = ManualClock(T0 - timedelta(days=1))  # behind the saved time
    second = load_fixture(world(), clock=later).model
    assert load_state(second, state) is True
    assert later.now() >= T0  # the clock never runs behind the saved state
    assert [i.name for i in second.list_images(ALI, "cn-shanghai")] == ["kept"]
    later.advance(100)
    assert second.get_image(ALI, "cn-shanghai", img.image_id).status == "available"
    assert load_state(second, tmp_path / "missing.json") is False


def test_state_drops_entities_of_accounts_no_longer_in_fixture(tmp_path: Path, clock: ManualClock) -> None:
    state = tmp_path / "s.json"
    first = load_fixture(world(), clock=clock).model
    first.create_image(JD, "cn-north-1", "i-jd", name="jd")
    save_state(first, state)
    fixture = world()
    fixture["accounts"] = fixture["accounts"][:2]
    second = load_fixture(fixture, clock=clock).model
    load_state(second, state)
    assert [a.name for a in second.accounts()] == [ALI, HW]
    assert second.summary().keys() == {ALI, HW}


def test_bad_state_file_is_one_line_error(tmp_path: Path, model: CloudModel) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FixtureError, match=r"bad\.json: not a usable emulator state file"):
        load_state(model, bad)
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(FixtureError, match="unsupported state version"):
        load_state(model, bad)


# ---- fixtures -----------------------------------------------------------------------------


def test_default_fixture_is_the_example_and_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "emulated-cloud.yaml"
    assert example.read_text() == DEFAULT_FIXTURE.read_text()
    model = load_fixture(clock=ManualClock(T0)).model
    providers = {a.provider for a in model.accounts()}
    assert providers == {"aliyun", "huawei", "jdcloud"}
    for acc in model.accounts():
        assert acc.secret.startswith("emulated-")
        instances = [i for r in acc.regions for i in model.list_instances(acc.name, r)]
        assert any(i.system_disk.category == "local" for i in instances), acc.name
        assert any(d.category == "local" and not d.is_system for i in instances for d in i.disks), acc.name
        assert any(d.encrypted for i in instances for d in i.disks), acc.name
    huawei = model.account("huawei-demo")
    assert "ap-southeast-1" in huawei.regions and all(len(p) == 32 for p in huawei.projects.values())
    huge = [i for i in model.list_instances("huawei-demo", "cn-north-4") if sum(d.size_gb for d in i.disks) > 300]
    assert huge


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.pop("accounts"), r"<fixture dict>: accounts: Field required"),
        (lambda f: f["accounts"][0].update(provider="aws"), r"accounts\[0\]\.provider: Input should be"),
        (
            lambda f: f["accounts"][0]["instances"][0]["disks"][0].update(size_gb=0),
            r"accounts\[0\]\.instances\[0\]\.disks\[0\]\.size_gb: Input should be greater than 0",
        ),
        (
            lambda f: f["accounts"][0]["instances"][0].update(region="mars-1"),
            r"accounts\[0\]\.instances\[0\]: region mars-1 is not available",
        ),
        (
            lambda f: f["accounts"][0]["instances"][0]["disks"][1].update(is_system=True),
            r"accounts\[0\]\.instances\[0\]: .*exactly one disk must be the system disk",
        ),
        (
            lambda f: f["accounts"][0]["instances"].append(f["accounts"][0]["instances"][0]),
            r"accounts\[0\]\.instances\[4\]: duplicate instance id",
        ),
        (
            lambda f: f["accounts"][0].update(regions={"cn-shanghai": "x"}),
            r"accounts\[0\]\.regions: project ids",
        ),
        (lambda f: f.update(faults=[{"action": "X", "throttle_rate": 2}]), r"faults\[0\]: throttle_rate"),
        (lambda f: f.update(faults=[{"actoin": "X"}]), r"faults\[0\]: unknown fault setting\(s\): actoin"),
        (lambda f: f["latencies"]["default"].update(warp={"base_seconds": 1}), r"latencies\.default\.warp"),
        (lambda f: f.update(colour="blue"), r"colour: Extra inputs are not permitted"),
    ],
)
def test_fixture_errors_are_one_line_with_key(mutate: Any, message: str) -> None:
    fixture = world()
    mutate(fixture)
    with pytest.raises(FixtureError, match=message) as info:
        load_fixture(fixture, clock=ManualClock(T0))
    assert "\n" not in str(info.value)


def test_fixture_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match=r"nope\.yaml: cannot read fixture"):
        load_fixture(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("accounts: [\n  - name: x\n    : :\n")
    with pytest.raises(FixtureError, match=r"broken\.yaml: invalid YAML \(line \d+\)"):
        load_fixture(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(FixtureError, match="must be a mapping"):
        load_fixture(scalar)


def test_fixture_quotas_latencies_and_fail_next(clock: ManualClock) -> None:
    fixture = world()
    fixture["accounts"][0]["quotas"] = {"cn-beijing": {"image": 3}}
    fixture["latencies"]["aliyun"] = {"image": {"base_seconds": 10}}
    fixture["fail_next_creations"] = 1
    fixture["faults"] = [{"vendor": "aliyun", "action": "CreateImage", "throttle_next": 2}]
    loaded = load_fixture(fixture, clock=clock)
    assert loaded.model.quota(ALI, "cn-beijing", "image") == (0, 3)
    img = loaded.model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    assert (img.ready_at - img.created_at).total_seconds() == 10
    assert loaded.model.create_image(HW, "cn-north-4", "hw-small", name="h").ready_at == T0 + timedelta(seconds=100)
    assert loaded.model.pending_failures() == 0  # consumed by the first creation
    assert [(r.action, r.throttle_next) for r in loaded.faults] == [("CreateImage", 2)]


def test_state_file_does_not_override_fixture_quotas(tmp_path: Path, clock: ManualClock) -> None:
    state = tmp_path / "s.json"
    first = load_fixture(world(), clock=clock).model
    first.set_quota(ALI, "cn-beijing", "image", 1)
    save_state(first, state)
    fixture = world()
    fixture["accounts"][0]["quotas"] = {"cn-beijing": {"image": 7}}
    second = load_fixture(fixture, clock=clock).model
    load_state(second, state)
    assert second.quota(ALI, "cn-beijing", "image") == (0, 7)


# ---- conformance switches (issue #8) ------------------------------------------------------


def test_hide_new_keeps_new_objects_out_of_lists_for_a_while(model: CloudModel, clock: ManualClock) -> None:
    """The eventual-consistency switch: lists (seen=True) miss new objects; the model itself finds them."""
    old = model.create_image(ALI, "cn-shanghai", "i-web", name="old")
    clock.advance(1000)
    model.hide_new(60, "aliyun")
    new = model.create_image(ALI, "cn-shanghai", "i-web", name="new")
    seen = [i.image_id for i in model.list_images(ALI, "cn-shanghai", seen=True)]
    assert seen == [old.image_id]
    assert {i.image_id for i in model.list_images(ALI, "cn-shanghai")} == {old.image_id, new.image_id}
    assert {s.image_id for s in model.list_snapshots(ALI, "cn-shanghai", seen=True)} == {old.image_id}
    with raises("not_found"):
        model.get_image(ALI, "cn-shanghai", new.image_id, seen=True)
    assert model.get_image(ALI, "cn-shanghai", new.image_id).image_id == new.image_id
    clock.advance(60)
    assert len(model.list_images(ALI, "cn-shanghai", seen=True)) == 2
    model.hide_new(0, "aliyun")
    with pytest.raises(ValueError):
        model.hide_new(-1)


def test_an_instance_passing_between_states_or_busy_cannot_be_imaged(model: CloudModel, clock: ManualClock):
    """Images need a running or stopped instance with no task in progress (Aliyun CreateImage, JD
    createImage, Huawei whole images: "弹性云服务器应处于开机或者关机状态")."""
    model.set_instance_state(ALI, "cn-shanghai", "i-web", status="stopping")
    with raises("invalid_status", "instance_transient"):
        model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    vda = model.get_instance(ALI, "cn-shanghai", "i-web").disks[0]
    with raises("invalid_status", "instance_transient"):
        model.create_snapshot(ALI, "cn-shanghai", vda.disk_id)
    model.set_instance_state(ALI, "cn-shanghai", "i-web", status="stopped", task="resize")
    with raises("invalid_status", "instance_busy"):
        model.create_image(ALI, "cn-shanghai", "i-web", name="a")
    model.set_instance_state(ALI, "cn-shanghai", "i-web")
    assert model.create_image(ALI, "cn-shanghai", "i-web", name="a").status == "creating"
    with pytest.raises(ValueError):
        model.set_instance_state(ALI, "cn-shanghai", "i-web", status="exploded")


def test_a_disk_takes_one_snapshot_at_a_time(model: CloudModel, clock: ManualClock) -> None:
    """Aliyun CreateSnapshot: IncorrectDiskStatus.CreatingSnapshot, "A previous snapshot creation is in process"."""
    vda = model.get_instance(ALI, "cn-shanghai", "i-web").disks[0]
    first = model.create_snapshot(ALI, "cn-shanghai", vda.disk_id)
    with raises("invalid_status", "snapshot_in_progress"):
        model.create_snapshot(ALI, "cn-shanghai", vda.disk_id)
    clock.advance(100_000)
    assert model.get_snapshot(ALI, "cn-shanghai", first.snapshot_id).status == "accomplished"
    assert model.create_snapshot(ALI, "cn-shanghai", vda.disk_id).snapshot_id != first.snapshot_id
