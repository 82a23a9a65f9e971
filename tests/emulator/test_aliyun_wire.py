"""The Aliyun ECS front-end driven by the real aliyun-python-sdk-core client and ECS request classes."""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import RpcRequest
from aliyunsdkecs.request.v20140526.CancelCopyImageRequest import CancelCopyImageRequest
from aliyunsdkecs.request.v20140526.CopyImageRequest import CopyImageRequest
from aliyunsdkecs.request.v20140526.CreateImageRequest import CreateImageRequest
from aliyunsdkecs.request.v20140526.CreateSnapshotRequest import CreateSnapshotRequest
from aliyunsdkecs.request.v20140526.DeleteImageRequest import DeleteImageRequest
from aliyunsdkecs.request.v20140526.DeleteSnapshotRequest import DeleteSnapshotRequest
from aliyunsdkecs.request.v20140526.DescribeDisksRequest import DescribeDisksRequest
from aliyunsdkecs.request.v20140526.DescribeImagesRequest import DescribeImagesRequest
from aliyunsdkecs.request.v20140526.DescribeInstancesRequest import DescribeInstancesRequest
from aliyunsdkecs.request.v20140526.DescribeSnapshotsRequest import DescribeSnapshotsRequest
from aliyunsdkecs.request.v20140526.TagResourcesRequest import TagResourcesRequest

from imagebak.emulator.clock import ManualClock
from imagebak.emulator.server import EmulatorHandle

REGION, DEST = "cn-hangzhou", "cn-shanghai"
ACCOUNT, AK, SK = "ali-main", "test-ali-key", "test-ali-secret"

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
                        {"disk_id": "d-web-sys", "device": "vda", "size_gb": 40, "is_system": True},
                        {"disk_id": "d-web-data", "device": "vdb", "size_gb": 100, "volume_type": "cloud_ssd"},
                    ],
                },
                {
                    "instance_id": "i-db",
                    "region": REGION,
                    "name": "db-01",
                    "status": "stopped",
                    "disks": [{"disk_id": "d-db-sys", "device": "vda", "size_gb": 40, "is_system": True}],
                },
                {
                    "instance_id": "i-local",
                    "region": REGION,
                    "name": "local-01",
                    "disks": [
                        {
                            "disk_id": "d-local-sys",
                            "device": "vda",
                            "size_gb": 40,
                            "is_system": True,
                            "category": "local",
                            "volume_type": "local_ssd_pro",
                        }
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

Ecs = Callable[..., dict[str, Any]]


@pytest.fixture
def cloud(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(FIXTURE)


@pytest.fixture
def ecs(cloud: EmulatorHandle) -> Ecs:
    """``ecs(request, region=REGION, key=AK, secret=SK)`` -> parsed body, through a real AcsClient."""
    clients: dict[tuple[str, str, str], AcsClient] = {}

    def call(request: RpcRequest, region: str = REGION, key: str = AK, secret: str = SK) -> dict[str, Any]:
        client = clients.get((region, key, secret))
        if client is None:
            client = AcsClient(key, secret, region, auto_retry=False, proxy={"http": None, "https": None})
            client.add_endpoint(region, "Ecs", cloud.host_port)
            clients[(region, key, secret)] = client
        return json.loads(client.do_action_with_exception(request))

    return call


def server_error(ecs: Ecs, request: RpcRequest, **kwargs: Any) -> ServerException:
    with pytest.raises(ServerException) as info:
        ecs(request, **kwargs)
    return info.value


def assert_error(cloud: EmulatorHandle, exc: ServerException, code: str, status: int) -> None:
    """Code and HTTP status as the SDK saw them, and a request id the emulator actually issued."""
    assert (exc.get_error_code(), exc.get_http_status()) == (code, status), exc
    assert exc.get_request_id() == cloud.request_log.entries()[-1]["request_id"]


_NAMES = itertools.count(1)


def create_image(
    ecs: Ecs, instance_id: str = "i-web", *, token: str | None = None, name: str | None = None, **tags: str
) -> str:
    """Image names are unique per region on Aliyun: by default each call gets its own."""
    request = CreateImageRequest()
    request.set_InstanceId(instance_id)
    request.set_ImageName(name or f"{instance_id}-{token or next(_NAMES)}")
    if tags:
        request.set_Tags([{"Key": k, "Value": v} for k, v in tags.items()])
    if token:
        request.set_ClientToken(token)
    return ecs(request)["ImageId"]


def describe_images(ecs: Ecs, region: str = REGION, *, status: str | None = None, **params: Any) -> list[dict]:
    request = DescribeImagesRequest()
    if status:
        request.set_Status(status)
    for name, value in params.items():
        getattr(request, f"set_{name}")(value)
    return ecs(request, region=region)["Images"]["Image"]


def create_snapshot(ecs: Ecs, disk_id: str, token: str | None = None) -> str:
    request = CreateSnapshotRequest()
    request.set_DiskId(disk_id)
    request.set_SnapshotName(f"{disk_id}-snap")
    request.set_Tags([{"Key": "policy", "Value": "nightly"}])
    if token:
        request.set_ClientToken(token)
    return ecs(request)["SnapshotId"]


def copy_image(ecs: Ecs, image_id: str, token: str | None = None) -> str:
    request = CopyImageRequest()
    request.set_ImageId(image_id)
    request.set_DestinationRegionId(DEST)
    request.set_DestinationImageName("web-01-dr")
    request.set_DestinationDescription("disaster recovery copy")
    request.set_Tags([{"Key": "policy", "Value": "nightly"}])
    if token:
        request.set_ClientToken(token)
    return ecs(request)["ImageId"]


def available_image(ecs: Ecs, clock: ManualClock) -> str:
    image_id = create_image(ecs)
    clock.advance(100)
    return image_id


# ---- instances and disks -------------------------------------------------------------------


def test_describe_instances_by_json_id_list_with_paging(ecs: Ecs) -> None:
    request = DescribeInstancesRequest()
    request.set_InstanceIds(json.dumps(["i-web", "i-db", "i-unknown"]))
    body = ecs(request)
    assert body["TotalCount"] == 2
    assert {i["InstanceId"]: i["Status"] for i in body["Instances"]["Instance"]} == {
        "i-web": "Running",
        "i-db": "Stopped",
    }

    request.set_PageSize(1)
    request.set_PageNumber(2)
    paged = ecs(request)
    assert (paged["TotalCount"], paged["PageNumber"], paged["PageSize"]) == (2, 2, 1)
    assert len(paged["Instances"]["Instance"]) == 1


def test_describe_instances_takes_at_most_100_ids(ecs: Ecs) -> None:
    request = DescribeInstancesRequest()
    request.set_InstanceIds(json.dumps(["i-web", *(f"i-{n}" for n in range(99))]))
    assert ecs(request)["TotalCount"] == 1
    request.set_InstanceIds(json.dumps(["i-web", *(f"i-{n}" for n in range(100))]))
    assert server_error(ecs, request).error_code == "InvalidInstanceIds.Malformed"


def test_describe_disks_reports_aliyun_devices_types_and_categories(ecs: Ecs) -> None:
    request = DescribeDisksRequest()
    request.set_InstanceId("i-web")
    disks = {d["DiskId"]: d for d in ecs(request)["Disks"]["Disk"]}
    assert {k: (d["Device"], d["Type"], d["Category"], d["Size"]) for k, d in disks.items()} == {
        "d-web-sys": ("/dev/xvda", "system", "cloud_essd", 40),
        "d-web-data": ("/dev/xvdb", "data", "cloud_ssd", 100),
    }

    by_id = DescribeDisksRequest()
    by_id.set_DiskIds(json.dumps(["d-local-sys"]))
    [local] = ecs(by_id)["Disks"]["Disk"]
    assert (local["InstanceId"], local["Category"]) == ("i-local", "local_ssd_pro")


# ---- images --------------------------------------------------------------------------------


def test_create_image_by_instance_moves_with_the_clock(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    image_id = create_image(ecs, policy="nightly")
    image = cloud.model.get_image(ACCOUNT, REGION, image_id)
    assert (image.status, image.source_instance_id, [d.device for d in image.disks]) == (
        "creating",
        "i-web",
        ["vda", "vdb"],
    )

    assert describe_images(ecs) == [], "without Status only Available images are listed"
    [creating] = describe_images(ecs, status="Creating,Available")
    assert (creating["Status"], creating["Progress"], creating["IsCopied"]) == ("Creating", "0%", False)

    manual_clock.advance(40)
    assert describe_images(ecs, status="Creating")[0]["Progress"] == "40%"

    manual_clock.advance(60)
    [done] = describe_images(ecs)
    assert (done["ImageId"], done["Status"], done["Progress"], done["Size"]) == (image_id, "Available", "100%", 140)
    assert done["Tags"]["Tag"] == [{"TagKey": "policy", "TagValue": "nightly"}]
    mappings = done["DiskDeviceMappings"]["DiskDeviceMapping"]
    assert [(m["Device"], m["Type"], m["Size"]) for m in mappings] == [
        ("/dev/xvda", "system", "40"),
        ("/dev/xvdb", "data", "100"),
    ]


def test_client_token_dedupes_create_image_and_create_snapshot(cloud: EmulatorHandle, ecs: Ecs) -> None:
    snap = create_snapshot(ecs, "d-web-data", token="snap-token")
    assert create_snapshot(ecs, "d-web-data", token="snap-token") == snap
    assert [s.snapshot_id for s in cloud.model.list_snapshots(ACCOUNT, REGION)] == [snap]

    first = create_image(ecs, token="run-1-i-web")
    assert create_image(ecs, token="run-1-i-web") == first
    assert create_image(ecs, token="run-2-i-web") != first
    assert len(cloud.model.list_images(ACCOUNT, REGION)) == 2


def test_create_image_from_snapshots_with_disk_device_mapping(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    snap = create_snapshot(ecs, "d-web-sys")
    describe = DescribeSnapshotsRequest()
    describe.set_SnapshotIds(json.dumps([snap]))
    [progressing] = ecs(describe)["Snapshots"]["Snapshot"]
    assert (progressing["Status"], progressing["SourceDiskId"], progressing["Tags"]["Tag"]) == (
        "progressing", "d-web-sys", [{"TagKey": "policy", "TagValue": "nightly"}],
    )  # fmt: skip

    request = CreateImageRequest()
    request.set_ImageName("web-01-system-only")
    request.set_DiskDeviceMappings([{"SnapshotId": snap, "Device": "/dev/xvda"}])
    assert_error(cloud, server_error(ecs, request), "InvalidSnapshotId.NotReady", 403)

    manual_clock.advance(50)
    assert ecs(describe)["Snapshots"]["Snapshot"][0]["Status"] == "accomplished"
    image = cloud.model.get_image(ACCOUNT, REGION, ecs(request)["ImageId"])
    assert [(d.device, d.snapshot_id, d.is_system) for d in image.disks] == [("vda", snap, True)]
    assert image.size_gb == 40


def test_describe_images_filters_by_ids_tags_name_owner_and_status(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    nightly = create_image(ecs, policy="nightly", instance="i-web")
    weekly = create_image(ecs, "i-db", name="i-db-backup", policy="weekly")
    cloud.model.fail_next_creations(1)
    failing = create_image(ecs, policy="nightly", instance="i-web")
    manual_clock.advance(100)

    ids = f"{nightly},{weekly},{failing},m-doesnotexist"
    every = "Creating,Waiting,Available,UnAvailable,CreateFailed"
    assert {i["ImageId"] for i in describe_images(ecs, status=every, ImageId=ids)} == {nightly, weekly, failing}
    assert {i["ImageId"] for i in describe_images(ecs, ImageId=ids)} == {nightly, weekly}
    [failed] = describe_images(ecs, status="CreateFailed")
    assert (failed["ImageId"], failed["Status"]) == (failing, "CreateFailed")

    tagged = describe_images(ecs, status=every, Tags=[{"Key": "policy", "Value": "nightly"}])
    assert {i["ImageId"] for i in tagged} == {nightly, failing}
    both_tags = [{"Key": "policy", "Value": "nightly"}, {"Key": "instance", "Value": "i-web"}]
    assert len(describe_images(ecs, Tags=both_tags)) == 1
    assert [i["ImageId"] for i in describe_images(ecs, ImageName="i-db-backup")] == [weekly]
    assert len(describe_images(ecs, ImageOwnerAlias="self")) == 2
    assert describe_images(ecs, ImageOwnerAlias="system") == []


def test_copy_image_creates_the_copy_in_the_destination_region(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    source = available_image(ecs, manual_clock)
    copy_id = copy_image(ecs, source, token="copy-token")
    assert copy_image(ecs, source, token="copy-token") == copy_id

    copy = cloud.model.get_image(ACCOUNT, DEST, copy_id)
    assert (copy.status, copy.source_image_id, copy.source_region, copy.name, copy.tags) == (
        "creating", source, REGION, "web-01-dr", {"policy": "nightly"},
    )  # fmt: skip
    [listed] = describe_images(ecs, DEST, status="Creating")
    assert (listed["ImageId"], listed["IsCopied"], listed["Description"]) == (copy_id, True, "disaster recovery copy")

    manual_clock.advance(200)
    assert [i["ImageId"] for i in describe_images(ecs, DEST)] == [copy_id]


def test_cancel_copy_image_and_delete_blocked_while_copying(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    source = available_image(ecs, manual_clock)
    copy_id = copy_image(ecs, source)

    delete = DeleteImageRequest()
    delete.set_ImageId(source)
    delete.set_Force(True)
    assert_error(cloud, server_error(ecs, delete), "OperationDenied.ImageCopying", 403)

    not_a_copy = CancelCopyImageRequest()
    not_a_copy.set_ImageId(source)
    assert_error(cloud, server_error(ecs, not_a_copy), "ImageCreatedNotFromCopy", 400)

    cancel = CancelCopyImageRequest()
    cancel.set_ImageId(copy_id)
    ecs(cancel, region=DEST)  # RegionId is the destination region
    assert cloud.model.list_images(ACCOUNT, DEST) == []

    ecs(delete)
    assert cloud.model.list_images(ACCOUNT, REGION) == []


def test_cancel_copy_image_after_the_copy_finished_is_refused(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    copy_id = copy_image(ecs, available_image(ecs, manual_clock))
    manual_clock.advance(200)
    cancel = CancelCopyImageRequest()
    cancel.set_ImageId(copy_id)
    assert_error(cloud, server_error(ecs, cancel, region=DEST), "IncorrectImageStatus", 400)


def test_tag_resources_adds_tags_the_image_can_be_found_by(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    image_id = available_image(ecs, manual_clock)
    request = TagResourcesRequest()
    request.set_ResourceType("image")
    request.set_ResourceIds([image_id])
    request.set_Tags([{"Key": "imagebak:run", "Value": "r-42"}])
    ecs(request)
    assert cloud.model.get_image(ACCOUNT, REGION, image_id).tags == {"imagebak:run": "r-42"}
    assert [i["ImageId"] for i in describe_images(ecs, Tags=[{"Key": "imagebak:run", "Value": "r-42"}])] == [image_id]


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ({"throttle_next": 1}, "Throttling", 400),
        ({"error_next": 1, "error_status": 500}, "InternalError", 500),
        ({"error_next": 1, "error_status": 503}, "ServiceUnavailable", 503),
    ],
)
def test_injected_faults_come_back_as_aliyun_errors(
    cloud: EmulatorHandle, ecs: Ecs, fault: dict[str, Any], code: str, status: int
) -> None:
    cloud.faults.set({"vendor": "aliyun", "action": "DescribeImages", **fault})
    assert_error(cloud, server_error(ecs, DescribeImagesRequest()), code, status)
    assert ecs(DescribeImagesRequest())["Images"]["Image"] == []  # the fault struck once


def test_unknown_resources_are_not_found(cloud: EmulatorHandle, ecs: Ecs) -> None:
    with pytest.raises(ServerException) as info:
        create_image(ecs, "i-unknown")
    assert_error(cloud, info.value, "InvalidInstanceId.NotFound", 404)
    with pytest.raises(ServerException) as info:
        copy_image(ecs, "m-unknown")
    assert_error(cloud, info.value, "InvalidImageId.NotFound", 404)
    assert_error(
        cloud, server_error(ecs, DescribeImagesRequest(), region="cn-beijing"), "InvalidRegionId.NotFound", 404
    )


def test_quota_exhaustion_is_refused_before_anything_is_created(cloud: EmulatorHandle, ecs: Ecs) -> None:
    cloud.model.set_quota(ACCOUNT, REGION, "image", 0)
    with pytest.raises(ServerException) as info:
        create_image(ecs)
    assert_error(cloud, info.value, "QuotaExceed.Image", 403)

    cloud.model.set_quota(ACCOUNT, REGION, "snapshot", 0)
    with pytest.raises(ServerException) as info:
        create_snapshot(ecs, "d-web-sys")
    assert_error(cloud, info.value, "QuotaExceed.Snapshot", 403)
    assert cloud.model.list_images(ACCOUNT, REGION) == []
    assert cloud.model.list_snapshots(ACCOUNT, REGION) == []


def test_copy_of_an_image_still_creating_is_an_invalid_status(cloud: EmulatorHandle, ecs: Ecs) -> None:
    with pytest.raises(ServerException) as info:
        copy_image(ecs, create_image(ecs))
    assert_error(cloud, info.value, "IncorrectImageStatus", 400)
    assert cloud.model.list_images(ACCOUNT, DEST) == []


def test_local_system_disk_instance_cannot_be_imaged(cloud: EmulatorHandle, ecs: Ecs) -> None:
    with pytest.raises(ServerException) as info:
        create_image(ecs, "i-local")
    assert_error(cloud, info.value, "InvalidDiskCategory.CreateImage", 400)
    with pytest.raises(ServerException) as info:
        create_snapshot(ecs, "d-local-sys")
    assert_error(cloud, info.value, "InvalidDiskCategory.NotSupported", 403)


def test_wrong_secret_is_a_signature_mismatch_the_sdk_reports_as_a_bad_secret(cloud: EmulatorHandle, ecs: Ecs) -> None:
    exc = server_error(ecs, DescribeImagesRequest(), secret="not-the-secret")
    # The emulator answers SignatureDoesNotMatch with its string-to-sign, as the cloud does; the
    # SDK sees it equals its own and reports the secret as the culprit.
    assert_error(cloud, exc, "InvalidAccessKeySecret", 400)
    assert "not-the-secret" not in str(exc)


def test_unknown_access_key_is_not_found(cloud: EmulatorHandle, ecs: Ecs) -> None:
    exc = server_error(ecs, DescribeImagesRequest(), key="no-such-key")
    assert_error(cloud, exc, "InvalidAccessKeyId.NotFound", 404)


def raw_post(cloud: EmulatorHandle, query: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{cloud.endpoint}/?{query}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    return info.value.code, json.loads(info.value.read())


def test_unsigned_request_is_rejected_with_missing_signature(cloud: EmulatorHandle) -> None:
    status, body = raw_post(cloud, f"Action=CreateImage&RegionId={REGION}&InstanceId=i-web&AccessKeyId={AK}")
    assert (status, body["Code"]) == (400, "MissingSignature")
    assert body["RequestId"] == cloud.request_log.entries()[-1]["request_id"]
    assert cloud.model.list_images(ACCOUNT, REGION) == []


def test_tampered_signature_is_a_signature_mismatch(cloud: EmulatorHandle) -> None:
    status, body = raw_post(
        cloud,
        f"Action=DescribeImages&RegionId={REGION}&AccessKeyId={AK}&SignatureMethod=HMAC-SHA1"
        "&SignatureVersion=1.0&SignatureNonce=1&Timestamp=2024-01-01T00%3A00%3A00Z&Signature=Zm9v",
    )
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    assert body["Message"].split("server string to sign is:")[1].startswith("POST&%2F&AccessKeyId%3D")


# ---- conformance (issue #8): ECS API reference rules ------------------------------------------


def _named(kind: type[RpcRequest], **params: Any) -> RpcRequest:
    request = kind()
    for name, value in params.items():
        getattr(request, f"set_{name}")(value)
    return request


@pytest.mark.parametrize(
    "bad", ["x", "1-starts-with-a-digit", "http://web", "https://web", "aliyun-web", "acs:web", "web/01", "n" * 129]
)
def test_image_names_follow_the_naming_rule(cloud: EmulatorHandle, ecs: Ecs, bad: str) -> None:
    """CreateImage.ImageName / CopyImage.DestinationImageName: 2-128 characters, a letter or Chinese
    character first, not http(s)://, aliyun or acs: -> InvalidImageName.Malformed (400)."""
    request = _named(CreateImageRequest, InstanceId="i-web", ImageName=bad)
    assert_error(cloud, server_error(ecs, request), "InvalidImageName.Malformed", 400)
    source = create_image(ecs, name="每日备份-web:01_v.2")  # Chinese, ':', '_', '.', '-' are fine
    copy = _named(CopyImageRequest, ImageId=source, DestinationRegionId=DEST, DestinationImageName=bad)
    assert_error(cloud, server_error(ecs, copy), "InvalidImageName.Malformed", 400)


def test_descriptions_and_snapshot_names(cloud: EmulatorHandle, ecs: Ecs) -> None:
    """Descriptions 2-256, not http(s)://; snapshot names never "auto" first (CreateSnapshot)."""
    for bad in ("d", "https://example.com", "d" * 257):
        request = _named(CreateImageRequest, InstanceId="i-web", ImageName="web", Description=bad)
        assert_error(cloud, server_error(ecs, request), "InvalidDescription.Malformed", 400)
    snapshot = _named(CreateSnapshotRequest, DiskId="d-web-data", SnapshotName="auto-nightly")
    assert_error(cloud, server_error(ecs, snapshot), "InvalidSnapshotName.Malformed", 400)
    assert ecs(_named(CreateSnapshotRequest, DiskId="d-web-data", SnapshotName="nightly-auto"))["SnapshotId"]


def test_duplicate_image_names_are_refused(cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock) -> None:
    """InvalidImageName.Duplicated (CreateImage, CopyImage): a region's image names are unique."""
    first = create_image(ecs, name="web-nightly", token="t1")
    assert create_image(ecs, name="web-nightly", token="t1") == first  # a ClientToken replay is no duplicate
    again = _named(CreateImageRequest, InstanceId="i-db", ImageName="web-nightly")
    assert_error(cloud, server_error(ecs, again), "InvalidImageName.Duplicated", 400)
    manual_clock.advance(100)
    copy = _named(CopyImageRequest, ImageId=first, DestinationRegionId=DEST, DestinationImageName="dr")
    ecs(copy)
    manual_clock.advance(1000)
    assert_error(cloud, server_error(ecs, copy), "InvalidImageName.Duplicated", 400)


def test_a_busy_instance_or_disk_is_refused_as_busy(cloud: EmulatorHandle, ecs: Ecs) -> None:
    """IncorrectInstanceStatus (CreateImage: the instance must be Running or Stopped) and
    IncorrectDiskStatus.CreatingSnapshot (CreateSnapshot: "A previous snapshot creation is in process")."""
    cloud.model.set_instance_state(ACCOUNT, REGION, "i-web", status="starting")
    by_instance = _named(CreateImageRequest, InstanceId="i-web", ImageName="web-busy")
    assert_error(cloud, server_error(ecs, by_instance), "IncorrectInstanceStatus", 400)
    cloud.model.set_instance_state(ACCOUNT, REGION, "i-web", status="running")
    create_snapshot(ecs, "d-web-data")
    again = _named(CreateSnapshotRequest, DiskId="d-web-data", SnapshotName="second")
    assert_error(cloud, server_error(ecs, again), "IncorrectDiskStatus.CreatingSnapshot", 403)


def test_delete_image_refuses_one_being_created_and_keeps_snapshots(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    """DeleteImage: ImageIsCreating (403). An image's snapshots stay after it is deleted; DeleteSnapshot
    refuses one an image is made of: SnapshotCreatedImage (403)."""
    image_id = create_image(ecs)
    delete = _named(DeleteImageRequest, ImageId=image_id)
    assert_error(cloud, server_error(ecs, delete), "ImageIsCreating", 403)
    manual_clock.advance(100)
    snapshots = [d.snapshot_id for d in cloud.model.get_image(ACCOUNT, REGION, image_id).disks]
    in_use = _named(DeleteSnapshotRequest, SnapshotId=snapshots[0])
    assert_error(cloud, server_error(ecs, in_use), "SnapshotCreatedImage", 403)
    ecs(delete)
    assert sorted(s.snapshot_id for s in cloud.model.list_snapshots(ACCOUNT, REGION)) == sorted(snapshots)
    for snapshot_id in snapshots:
        ecs(_named(DeleteSnapshotRequest, SnapshotId=snapshot_id))
    assert cloud.model.list_snapshots(ACCOUNT, REGION) == []


def test_a_new_snapshot_can_be_missing_from_the_first_describe(
    cloud: EmulatorHandle, ecs: Ecs, manual_clock: ManualClock
) -> None:
    """The eventual-consistency switch, for snapshots and images alike."""
    cloud.model.hide_new(5, "aliyun")
    snapshot_id = create_snapshot(ecs, "d-web-sys")
    describe = _named(DescribeSnapshotsRequest, SnapshotIds=json.dumps([snapshot_id]))
    assert ecs(describe)["Snapshots"]["Snapshot"] == []
    manual_clock.advance(5)
    assert [s["SnapshotId"] for s in ecs(describe)["Snapshots"]["Snapshot"]] == [snapshot_id]
