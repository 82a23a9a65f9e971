"""The Aliyun adapter against the emulator: real SDK calls, real outcomes, classified errors."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException

from imagebak.emulator.clock import ManualClock
from imagebak.emulator.server import EmulatorHandle
from imagebak.providers import ProviderSettings, make_provider
from imagebak.providers.aliyun import AliyunProvider, classify, name_problems
from imagebak.providers.base import (
    NOT_VISIBLE,
    CopySpec,
    DiskInfo,
    ErrorKind,
    ImageSpec,
    ImageState,
    InstanceInfo,
    ProviderError,
)
from imagebak.providers.credentials import Credentials
from imagebak.providers.retry import RetryPolicy

REGION, DEST = "cn-hangzhou", "cn-shanghai"
ACCOUNT, AK, SK = "ali-adapter", "test-ali-adapter-key", "test-ali-adapter-secret"
TAGS = {"imagebak:policy": "nightly", "imagebak:instance": "i-web"}

FIXTURE: dict[str, Any] = {
    "accounts": [
        {
            "name": ACCOUNT,
            "provider": "aliyun",
            "access_key_id": AK,
            "secret": SK,
            "regions": [REGION, DEST],
            "instances": [
                {
                    "instance_id": "i-web",
                    "region": REGION,
                    "name": "web-01",
                    "disks": [
                        {"disk_id": "d-sys", "device": "vda", "size_gb": 40, "is_system": True},
                        {"disk_id": "d-data", "device": "vdb", "size_gb": 100},
                        {
                            "disk_id": "d-scratch",
                            "device": "vdc",
                            "size_gb": 1788,
                            "category": "local",
                            "volume_type": "local_hdd_pro",
                        },
                    ],
                },
            ],
        }
    ],
    # Deterministic durations: a snapshot takes 50 s, an image 100 s, a copy 200 s.
    "latencies": {
        "aliyun": {
            "snapshot": {"base_seconds": 50},
            "image": {"base_seconds": 100},
            "copy": {"base_seconds": 200},
        }
    },
}
FAST_RETRY = RetryPolicy(max_attempts=5, initial_wait=0.01, max_wait=0.05, deadline_seconds=60)


@pytest.fixture
def cloud(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(FIXTURE)


def make_adapter(cloud: EmulatorHandle, clock: ManualClock, secret: str = SK) -> AliyunProvider:
    """Every wait (retry backoff, snapshot polling) moves the emulated clock instead of sleeping."""
    settings = ProviderSettings(ACCOUNT, Credentials(AK, secret), endpoint=cloud.endpoint, retry=FAST_RETRY)
    return AliyunProvider(settings, sleep=clock.advance)


@pytest.fixture
def adapter(cloud: EmulatorHandle, manual_clock: ManualClock) -> AliyunProvider:
    return make_adapter(cloud, manual_clock)


def calls(cloud: EmulatorHandle, action: str) -> int:
    return cloud.counters.get("aliyun", action)


def image_spec(instance: InstanceInfo, devices: tuple[str, ...], key: str = "run-1-i-web") -> ImageSpec:
    cloud_devices = tuple(d.device for d in instance.disks if d.category == "cloud")
    return ImageSpec(
        region=REGION, instance=instance, devices=devices, all_disks=devices == cloud_devices,
        name="nightly-i-web-20240101", description="imagebak nightly", tags=TAGS, idempotency_key=key,
    )  # fmt: skip


def test_build_through_make_provider(cloud: EmulatorHandle) -> None:
    settings = ProviderSettings(ACCOUNT, Credentials(AK, SK), endpoint=cloud.endpoint)
    provider = make_provider("aliyun", settings)
    assert isinstance(provider, AliyunProvider)
    assert provider.quotas(REGION) == []  # no image-quota API: QuotaExceed.* is the signal


def test_get_instance_maps_devices_and_local_categories(adapter: AliyunProvider) -> None:
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    assert (instance.name, instance.status, instance.system_disk) == (
        "web-01", "Running", DiskInfo("vda", "d-sys", "cloud", 40, True),
    )  # fmt: skip
    assert {d.device: (d.disk_id, d.category) for d in instance.disks} == {
        "vda": ("d-sys", "cloud"),
        "vdb": ("d-data", "cloud"),
        "vdc": ("d-scratch", "local"),
    }
    assert adapter.get_instance(REGION, "i-unknown") is None


def many_instances(count: int, disks_each: int = 2) -> dict[str, Any]:
    fixture = copy.deepcopy(FIXTURE)
    fixture["accounts"][0]["instances"] += [
        {
            "instance_id": f"i-{n:03}",
            "region": REGION,
            "disks": [
                {"disk_id": f"d-{n:03}-{d}", "device": f"vd{'abcdefgh'[d]}", "size_gb": 40, "is_system": d == 0}
                for d in range(disks_each)
            ],
        }
        for n in range(count)
    ]
    return fixture


def test_get_instances_describes_many_per_call(emulator_factory: Callable[..., EmulatorHandle], manual_clock):
    """150 instances and 303 disks: 2 DescribeInstances (100 ids each at most) and the region's 4 disk
    pages, instead of 150 + 150 calls; an unknown id is None, as with get_instance."""
    cloud = emulator_factory(many_instances(150))
    adapter = make_adapter(cloud, manual_clock)
    wanted = [f"i-{n:03}" for n in range(150)] + ["i-web", "i-unknown"]
    found = adapter.get_instances(REGION, wanted)
    assert (calls(cloud, "DescribeInstances"), calls(cloud, "DescribeDisks")) == (2, 4)
    assert found["i-unknown"] is None
    assert found["i-web"] == adapter.get_instance(REGION, "i-web")
    assert [(d.device, d.disk_id, d.is_system) for d in found["i-149"].disks] == [
        ("vda", "d-149-0", True), ("vdb", "d-149-1", False),
    ]  # fmt: skip


def test_get_instances_asks_per_instance_when_the_region_has_more_disk_pages(
    emulator_factory: Callable[..., EmulatorHandle], manual_clock
):
    cloud = emulator_factory(many_instances(60, disks_each=8))  # 483 disks: 5 pages, more than 3 instances
    adapter = make_adapter(cloud, manual_clock)
    found = adapter.get_instances(REGION, ["i-000", "i-001", "i-web"])
    assert (calls(cloud, "DescribeInstances"), calls(cloud, "DescribeDisks")) == (1, 1 + 3)
    assert [len(found[i].disks) for i in ("i-000", "i-001", "i-web")] == [8, 8, 3]


def test_create_image_of_every_cloud_disk_is_idempotent(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    spec = image_spec(instance, ("vda", "vdb"))
    image_id = adapter.create_image(spec)
    assert adapter.create_image(spec) == image_id  # the ClientToken, not luck

    [image] = cloud.model.list_images(ACCOUNT, REGION)
    assert (image.image_id, image.source_instance_id, image.tags) == (image_id, "i-web", TAGS)
    assert [d.device for d in image.disks] == ["vda", "vdb"]
    assert (calls(cloud, "CreateImage"), calls(cloud, "CreateSnapshot")) == (2, 0)


def test_create_image_of_a_subset_goes_through_snapshots(
    cloud: EmulatorHandle, adapter: AliyunProvider, manual_clock: ManualClock
) -> None:
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    started = manual_clock.now()
    image_id = adapter.create_image(image_spec(instance, ("vda",)))

    assert (manual_clock.now() - started).total_seconds() >= 50, "waited for the snapshot on the emulated clock"
    image = cloud.model.get_image(ACCOUNT, REGION, image_id)
    [snapshot] = [s for s in cloud.model.list_snapshots(ACCOUNT, REGION) if s.image_id is None]
    assert (snapshot.disk_id, snapshot.status, snapshot.tags) == ("d-sys", "accomplished", TAGS)
    assert [(d.device, d.snapshot_id) for d in image.disks] == [("vda", snapshot.snapshot_id)]
    assert image.tags == TAGS

    # A resumed run with the same key re-issues both calls and gets the same snapshot and image.
    assert adapter.create_image(image_spec(instance, ("vda",))) == image_id
    assert len(cloud.model.list_snapshots(ACCOUNT, REGION, disk_id="d-sys")) == 1
    assert len(cloud.model.list_images(ACCOUNT, REGION)) == 1
    assert calls(cloud, "CreateSnapshot") == 2


def test_image_status_batches_ids_into_one_call(
    cloud: EmulatorHandle, adapter: AliyunProvider, manual_clock: ManualClock
) -> None:
    ids = [cloud.model.create_image(ACCOUNT, REGION, "i-web", name=f"img-{n}", tags=TAGS).image_id for n in range(3)]
    cloud.model.fail_image(ACCOUNT, REGION, ids[2], reason="disk error")
    manual_clock.advance(30)

    statuses = adapter.image_status(REGION, [*ids, "m-gone"])
    assert calls(cloud, "DescribeImages") == 1
    assert [(statuses[i].state, statuses[i].progress) for i in ids] == [
        (ImageState.PENDING, 30), (ImageState.PENDING, 30), (ImageState.FAILED, 0),
    ]  # fmt: skip
    assert statuses["m-gone"].state is ImageState.MISSING

    manual_clock.advance(70)
    later = adapter.image_status(REGION, ids[:2])
    assert {s.state for s in later.values()} == {ImageState.AVAILABLE}
    assert later[ids[0]].size_gb == 140


def test_find_images_by_tags_sees_every_status(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    mine = cloud.model.create_image(ACCOUNT, REGION, "i-web", name="a", tags=TAGS).image_id
    cloud.model.create_image(ACCOUNT, REGION, "i-web", name="b", tags={"imagebak:policy": "weekly"})
    found = adapter.find_images(REGION, TAGS)
    assert [(s.image_id, s.state) for s in found] == [(mine, ImageState.PENDING)]
    assert adapter.find_images(REGION, TAGS, name="b") == []


def test_copy_images_and_delete(cloud: EmulatorHandle, adapter: AliyunProvider, manual_clock: ManualClock) -> None:
    source = cloud.model.create_image(ACCOUNT, REGION, "i-web", name="src").image_id
    manual_clock.advance(100)
    spec = CopySpec(REGION, source, DEST, "src-dr", "DR copy", TAGS, idempotency_key="run-1-copy")

    copies = adapter.copy_images([spec])
    assert adapter.copy_images([spec]) == copies
    copy = cloud.model.get_image(ACCOUNT, DEST, copies[spec.idempotency_key])
    assert (copy.source_image_id, copy.name, copy.description, copy.tags) == (source, "src-dr", "DR copy", TAGS)
    assert adapter.image_status(DEST, [copy.image_id])[copy.image_id].state is ImageState.PENDING

    manual_clock.advance(200)
    adapter.delete_image(DEST, copy.image_id)
    adapter.delete_image(DEST, copy.image_id)  # already gone: nothing to do
    assert cloud.model.list_images(ACCOUNT, DEST) == []
    assert cloud.model.list_snapshots(ACCOUNT, DEST) == []  # ECS keeps them: the adapter deleted them
    assert (calls(cloud, "DeleteImage"), calls(cloud, "DeleteSnapshot")) == (1, 2)


# ---- errors and retries --------------------------------------------------------------------


def test_throttling_storm_is_retried_and_recovers(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    cloud.faults.set({"vendor": "aliyun", "action": "DescribeInstances", "throttle_next": 3})
    assert adapter.get_instance(REGION, "i-web") is not None
    assert calls(cloud, "DescribeInstances") == 4


def test_server_errors_are_retried(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    cloud.faults.set({"vendor": "aliyun", "action": "DescribeImages", "error_next": 2, "error_status": 503})
    assert adapter.image_status(REGION, ["m-gone"])["m-gone"].state is ImageState.MISSING
    assert calls(cloud, "DescribeImages") == 3


def test_a_storm_longer_than_the_budget_surfaces_as_throttled(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    cloud.faults.set({"vendor": "aliyun", "action": "DescribeImages", "throttle_next": 10})
    with pytest.raises(ProviderError) as info:
        adapter.find_images(REGION, TAGS)
    assert (info.value.kind, info.value.code, info.value.http_status) == (ErrorKind.THROTTLED, "Throttling", 400)
    assert calls(cloud, "DescribeImages") == FAST_RETRY.max_attempts


def test_not_found_is_not_retried(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    with pytest.raises(ProviderError) as info:
        adapter.copy_images([CopySpec(REGION, "m-unknown", DEST, "x", "", {}, idempotency_key="k")])
    assert (info.value.kind, info.value.code, info.value.http_status) == (
        ErrorKind.NOT_FOUND, "InvalidImageId.NotFound", 404,
    )  # fmt: skip
    assert info.value.request_id == cloud.request_log.entries()[-1]["request_id"]
    assert calls(cloud, "CopyImage") == 1


def test_quota_exhaustion_is_a_quota_error(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    cloud.model.set_quota(ACCOUNT, REGION, "image", 0)
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    with pytest.raises(ProviderError) as info:
        adapter.create_image(image_spec(instance, ("vda", "vdb")))
    assert (info.value.kind, info.value.code) == (ErrorKind.QUOTA, "QuotaExceed.Image")
    assert calls(cloud, "CreateImage") == 1


def test_wrong_secret_is_an_auth_error_that_never_shows_the_secret(
    cloud: EmulatorHandle, manual_clock: ManualClock
) -> None:
    adapter = make_adapter(cloud, manual_clock, secret="wrong-secret-value")
    with pytest.raises(ProviderError) as info:
        adapter.get_instance(REGION, "i-web")
    assert (info.value.kind, info.value.code) == (ErrorKind.AUTH, "InvalidAccessKeySecret")
    assert "wrong-secret-value" not in info.value.describe()
    assert calls(cloud, "DescribeInstances") == 1


def test_transport_errors_are_transient_and_scrubbed() -> None:
    exc = ClientException(
        "SDK.HttpError",
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: "
        "/?AccessKeyId=test-key&Action=DescribeImages&Signature=abc%3D&Timestamp=x (Caused by timeout)",
    )
    error = classify("DescribeImages", exc)
    assert (error.kind, error.transient) == (ErrorKind.TIMEOUT, True)
    assert "test-key" not in error.message and "abc%3D" not in error.message
    assert classify("DescribeImages", ClientException("SDK.InvalidRegionId", "bad region")).kind is ErrorKind.INVALID


# ---- conformance (issue #8) -------------------------------------------------------------------


@pytest.mark.parametrize("requested", ["1st-web", "aliyun-web", "acs:web", "http://web", "每日备份/web", "x"])
def test_any_requested_name_becomes_a_valid_ecs_name(cloud: EmulatorHandle, adapter: AliyunProvider, requested: str):
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    spec = replace(image_spec(instance, ("vda", "vdb")), name=requested + "-20240101T0200Z")
    image_id = adapter.create_image(spec)
    name = cloud.model.get_image(ACCOUNT, REGION, image_id).name
    assert name_problems(name) == [] and name.endswith("-20240101T0200Z")
    assert name_problems(requested) != [] or requested == "每日备份/web"


def test_a_starting_instance_is_busy_not_broken(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    cloud.model.set_instance_state(ACCOUNT, REGION, "i-web", status="starting")
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    with pytest.raises(ProviderError) as info:
        adapter.create_image(image_spec(instance, ("vda", "vdb")))
    assert (info.value.kind, info.value.code) == (ErrorKind.CONFLICT, "IncorrectInstanceStatus")


def test_a_snapshot_in_progress_is_busy_and_its_siblings_are_kept_for_the_retry(
    cloud: EmulatorHandle, adapter: AliyunProvider
) -> None:
    cloud.model.create_snapshot(ACCOUNT, REGION, "d-data")  # someone else's snapshot, still in progress
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    subset = replace(image_spec(instance, ("vda", "vdb")), all_disks=False)  # the snapshot path
    with pytest.raises(ProviderError) as busy:
        adapter.create_image(subset)
    assert (busy.value.kind, busy.value.code) == (ErrorKind.CONFLICT, "IncorrectDiskStatus.CreatingSnapshot")
    # vda's snapshot stays: the retry (same key, same ClientToken) uses it.
    assert [s.disk_id for s in cloud.model.list_snapshots(ACCOUNT, REGION)].count("d-sys") == 1


def test_snapshots_of_an_image_that_cannot_be_made_are_deleted(
    cloud: EmulatorHandle, adapter: AliyunProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk-subset path: no image quota left, so its snapshots are deleted (ECS would keep them)."""
    cloud.model.set_quota(ACCOUNT, REGION, "image", 0)
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    with caplog.at_level("INFO"), pytest.raises(ProviderError) as info:
        adapter.create_image(replace(image_spec(instance, ("vda",)), devices=("vda",), all_disks=False))
    assert (info.value.kind, info.value.code) == (ErrorKind.QUOTA, "QuotaExceed.Image")
    assert cloud.model.list_snapshots(ACCOUNT, REGION) == []
    assert calls(cloud, "DeleteSnapshot") == 1 and "deleted snapshot" in caplog.text


def test_a_snapshot_missing_from_the_first_describe_is_pending(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    cloud.model.hide_new(10, "aliyun")  # a new snapshot is not listed for 10 s
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    image_id = adapter.create_image(replace(image_spec(instance, ("vda",)), all_disks=False))
    assert cloud.model.get_image(ACCOUNT, REGION, image_id).disks[0].device == "vda"


def test_deleting_an_image_in_the_making_is_busy_and_a_copy_in_flight_is_cancelled(
    cloud: EmulatorHandle, adapter: AliyunProvider, manual_clock: ManualClock
) -> None:
    making = cloud.model.create_image(ACCOUNT, REGION, "i-web", name="making").image_id
    with pytest.raises(ProviderError) as info:
        adapter.delete_image(REGION, making)
    assert (info.value.kind, info.value.code) == (ErrorKind.CONFLICT, "ImageIsCreating")
    manual_clock.advance(100)
    spec = CopySpec(REGION, making, DEST, "making-dr", "DR copy", TAGS, idempotency_key="copy-in-flight")
    copy_id = adapter.copy_images([spec])[spec.idempotency_key]
    adapter.delete_image(DEST, copy_id)
    assert cloud.model.list_images(ACCOUNT, DEST) == [] and calls(cloud, "CancelCopyImage") == 1


def test_new_images_not_listed_yet_are_pending_and_adoption_waits(
    cloud: EmulatorHandle, adapter: AliyunProvider
) -> None:
    cloud.model.hide_new(60, "aliyun")
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    image_id = adapter.create_image(image_spec(instance, ("vda", "vdb"), key="lag-1"))
    status = adapter.image_status(REGION, [image_id])[image_id]
    assert (status.state, status.detail) == (ImageState.PENDING, NOT_VISIBLE)
    adapter.submissions.record("lag-2")  # a submission whose reply was lost
    with pytest.raises(ProviderError) as info:
        adapter.find_submitted(REGION, "lag-2", "whatever")
    assert (info.value.code, info.value.transient) == ("NotVisibleYet", True)


def test_a_taken_image_name_is_sent_again_with_a_suffix(cloud: EmulatorHandle, adapter: AliyunProvider) -> None:
    """InvalidImageName.Duplicated: a second run within the same minute gets the same nominal name."""
    instance = adapter.get_instance(REGION, "i-web")
    assert instance is not None
    first = adapter.create_image(image_spec(instance, ("vda", "vdb"), key="run-1"))
    second = adapter.create_image(image_spec(instance, ("vda", "vdb"), key="run-2"))
    names = [cloud.model.get_image(ACCOUNT, REGION, i).name for i in (first, second)]
    assert names[0] == "nightly-i-web-20240101" and names[1].startswith("nightly-i-web-20240101-")
    assert adapter.image_status(REGION, [second])[second].name == names[1]
    assert adapter.create_image(image_spec(instance, ("vda", "vdb"), key="run-2")) == second  # ClientToken
