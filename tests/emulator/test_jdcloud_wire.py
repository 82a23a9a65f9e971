"""The JD Cloud front-end driven by the real jdcloud_sdk clients and request classes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jdcloud_sdk.core.config import Config
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.logger import ERROR, Logger
from jdcloud_sdk.services.common.models.Filter import Filter
from jdcloud_sdk.services.disk.apis.DescribeDisksRequest import DescribeDisksParameters, DescribeDisksRequest
from jdcloud_sdk.services.disk.apis.DescribeQuotaRequest import DescribeQuotaParameters, DescribeQuotaRequest
from jdcloud_sdk.services.disk.client.DiskClient import DiskClient
from jdcloud_sdk.services.vm.apis.CopyImagesRequest import CopyImagesParameters, CopyImagesRequest
from jdcloud_sdk.services.vm.apis.CreateImageRequest import CreateImageParameters, CreateImageRequest
from jdcloud_sdk.services.vm.apis.DeleteImageRequest import DeleteImageParameters, DeleteImageRequest
from jdcloud_sdk.services.vm.apis.DescribeImageRequest import DescribeImageParameters, DescribeImageRequest
from jdcloud_sdk.services.vm.apis.DescribeImagesRequest import DescribeImagesParameters, DescribeImagesRequest
from jdcloud_sdk.services.vm.apis.DescribeInstanceRequest import (
    DescribeInstanceParameters,
    DescribeInstanceRequest,
)
from jdcloud_sdk.services.vm.apis.DescribeInstancesRequest import (
    DescribeInstancesParameters,
    DescribeInstancesRequest,
)
from jdcloud_sdk.services.vm.apis.DescribeQuotasRequest import DescribeQuotasParameters, DescribeQuotasRequest
from jdcloud_sdk.services.vm.apis.ModifyImageAttributeRequest import (
    ModifyImageAttributeParameters,
    ModifyImageAttributeRequest,
)
from jdcloud_sdk.services.vm.client.VmClient import VmClient
from jdcloud_sdk.services.vm.models.InstanceDiskAttachmentSpec import InstanceDiskAttachmentSpec

from imagebak.emulator.server import EmulatorHandle

REGION, DEST = "cn-north-1", "cn-east-2"
ACCOUNT, AK, SK = "jd-main", "AKJDWIRETEST", "fake-jd-secret"

FIXTURE: dict[str, Any] = {
    "accounts": [
        {
            "name": ACCOUNT,
            "provider": "jdcloud",
            "access_key_id": AK,
            "secret": SK,
            "regions": [REGION, DEST],
            "instances": [
                {
                    "instance_id": "i-web",
                    "region": REGION,
                    "name": "web-01",
                    "disks": [
                        {"device": "vda", "size_gb": 40, "is_system": True},
                        {"device": "vdb", "size_gb": 100, "volume_type": "ssd.gp1"},
                        {"device": "vdc", "size_gb": 200, "category": "local"},
                    ],
                },
                {
                    "instance_id": "i-db",
                    "region": REGION,
                    "name": "db-01",
                    "status": "stopped",
                    "disks": [{"device": "vda", "size_gb": 40, "is_system": True}],
                },
                {
                    "instance_id": "i-local",
                    "region": REGION,
                    "name": "local-01",
                    "disks": [{"device": "vda", "size_gb": 40, "is_system": True, "category": "local"}],
                },
                {
                    "instance_id": "i-secure",
                    "region": DEST,  # not in REGION: instance listings there stay as they were
                    "name": "secure-01",
                    "disks": [{"device": "vda", "size_gb": 40, "is_system": True, "encrypted": True}],
                },
            ],
        }
    ],
    # Deterministic durations: an image takes 100 s, a copy 200 s.
    "latencies": {
        "jdcloud": {
            "image": {"base_seconds": 100},
            "snapshot": {"base_seconds": 100},
            "copy": {"base_seconds": 200},
        }
    },
}


@pytest.fixture
def emu(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(FIXTURE)


def _config(emu: EmulatorHandle) -> Config:
    return Config(emu.host_port, scheme="http", timeout=5)


@pytest.fixture
def vm(emu: EmulatorHandle) -> VmClient:
    return VmClient(Credential(AK, SK), _config(emu), logger=Logger(ERROR))


@pytest.fixture
def disk(emu: EmulatorHandle) -> DiskClient:
    return DiskClient(Credential(AK, SK), _config(emu), logger=Logger(ERROR))


def ok(client: VmClient | DiskClient, request: Any) -> dict[str, Any]:
    resp = client.send(request)
    assert resp.error is None, vars(resp.error)
    assert resp.request_id
    return resp.result or {}


def refused(client: VmClient | DiskClient, request: Any, code: int, status: str) -> str:
    """Assert the call failed as JD fails it; return the message."""
    resp = client.send(request)
    assert resp.error is not None, resp.result
    assert (resp.error.code, resp.error.status) == (code, status), vars(resp.error)
    assert resp.request_id
    return resp.error.message


def create_image(vm: VmClient, instance_id: str = "i-web", name: str = "nightly", exclude: tuple[str, ...] = ()):
    params = CreateImageParameters(REGION, instance_id, name)
    params.setDescription("nightly backup & more")
    if exclude:
        params.setDataDisks([InstanceDiskAttachmentSpec(deviceName=d, noDevice=True) for d in exclude])
    return CreateImageRequest(params)


def describe_images(**kwargs: Any) -> DescribeImagesRequest:
    params = DescribeImagesParameters(REGION)
    for key, value in kwargs.items():
        setattr(params, key, value)
    return DescribeImagesRequest(params)


# -- instances and disks ---------------------------------------------------------------------


def test_describe_instance_reports_cloud_and_local_disks(emu: EmulatorHandle, vm: VmClient) -> None:
    inst = ok(vm, DescribeInstanceRequest(DescribeInstanceParameters(REGION, "i-web")))["instance"]
    model_disks = {d.device: d for d in emu.model.get_instance(ACCOUNT, REGION, "i-web").disks}
    assert inst["instanceId"] == "i-web" and inst["status"] == "running"
    system = inst["systemDisk"]
    assert (system["deviceName"], system["diskCategory"]) == ("vda", "cloud")
    assert system["cloudDisk"]["diskId"] == model_disks["vda"].disk_id
    data = {d["deviceName"]: d for d in inst["dataDisks"]}
    assert data["vdb"]["cloudDisk"] == {**data["vdb"]["cloudDisk"], "diskType": "ssd.gp1", "diskSizeGB": 100}
    assert data["vdc"]["diskCategory"] == "local" and data["vdc"]["localDisk"]["diskSizeGB"] == 200
    assert "cloudDisk" not in data["vdc"]


def test_describe_instances_filters_and_pages(vm: VmClient) -> None:
    params = DescribeInstancesParameters(REGION)
    params.setFilters([Filter("instanceId", ["i-web", "i-db"]), Filter("status", ["stopped"])])
    result = ok(vm, DescribeInstancesRequest(params))
    assert [i["instanceId"] for i in result["instances"]] == ["i-db"] and result["totalCount"] == 1

    params = DescribeInstancesParameters(REGION)
    params.setFilters([Filter("name", ["local"])])
    assert [i["instanceId"] for i in ok(vm, DescribeInstancesRequest(params))["instances"]] == ["i-local"]

    params = DescribeInstancesParameters(REGION)
    params.setPageNumber(2)
    params.setPageSize(2)
    result = ok(vm, DescribeInstancesRequest(params))
    assert result["totalCount"] == 3 and len(result["instances"]) == 1


def test_describe_disks_lists_cloud_disks_only(emu: EmulatorHandle, disk: DiskClient) -> None:
    params = DescribeDisksParameters(REGION)
    params.setFilters([Filter("instanceId", ["i-web"])])
    result = ok(disk, DescribeDisksRequest(params))
    vdb = emu.model.get_instance(ACCOUNT, REGION, "i-web").disks[1]
    assert sorted(d["name"] for d in result["disks"]) == ["vda", "vdb"] and result["totalCount"] == 2
    attached = next(d for d in result["disks"] if d["diskId"] == vdb.disk_id)
    assert attached["attachments"][0]["instanceId"] == "i-web" and attached["diskSizeGB"] == 100

    params = DescribeDisksParameters(REGION)
    params.setFilters([Filter("diskType", ["ssd.gp1"]), Filter("status", ["in-use"])])
    assert [d["diskId"] for d in ok(disk, DescribeDisksRequest(params))["disks"]] == [vdb.disk_id]

    params = DescribeDisksParameters(REGION)
    params.setFilters([Filter("diskId", [vdb.disk_id]), Filter("status", ["available"])])
    assert ok(disk, DescribeDisksRequest(params))["disks"] == []


# -- createImage and the image lifecycle ---------------------------------------------------------


def test_create_image_includes_cloud_disks_and_becomes_ready(emu: EmulatorHandle, vm: VmClient) -> None:
    image_id = ok(vm, create_image(vm))["imageId"]
    model_image = emu.model.get_image(ACCOUNT, REGION, image_id)
    assert [d.device for d in model_image.disks] == ["vda", "vdb"]  # local vdc never included
    assert model_image.description == "nightly backup & more"

    described = ok(vm, DescribeImageRequest(DescribeImageParameters(REGION, image_id)))["image"]
    assert (described["status"], described["progress"], described["name"]) == ("pending", "0", "nightly")
    assert described["desc"] == "nightly backup & more"
    assert [d["deviceName"] for d in described["dataDisks"]] == ["vdb"]
    assert described["snapshotId"] == model_image.disks[0].snapshot_id

    emu.clock.advance(50)
    described = ok(vm, DescribeImageRequest(DescribeImageParameters(REGION, image_id)))["image"]
    assert (described["status"], described["progress"]) == ("pending", "50")
    emu.clock.advance(50)
    described = ok(vm, DescribeImageRequest(DescribeImageParameters(REGION, image_id)))["image"]
    assert (described["status"], described["progress"]) == ("ready", "100")


def test_create_image_no_device_excludes_a_cloud_data_disk(emu: EmulatorHandle, vm: VmClient) -> None:
    image_id = ok(vm, create_image(vm, exclude=("vdb",)))["imageId"]
    assert [d.device for d in emu.model.get_image(ACCOUNT, REGION, image_id).disks] == ["vda"]
    assert emu.model.quota(ACCOUNT, REGION, "snapshot")[0] == 1


def test_create_image_refusals(emu: EmulatorHandle, vm: VmClient) -> None:
    assert "local" in refused(vm, create_image(vm, "i-local"), 400, "FAILED_PRECONDITION")
    refused(vm, create_image(vm, exclude=("vda",)), 400, "INVALID_ARGUMENT")
    refused(vm, create_image(vm, name="x" * 33), 400, "INVALID_ARGUMENT")
    refused(vm, create_image(vm, "i-missing"), 404, "NOT_FOUND")
    assert emu.model.list_images(ACCOUNT, REGION) == []


def test_describe_images_by_ids_status_name_and_pages(emu: EmulatorHandle, vm: VmClient) -> None:
    first = ok(vm, create_image(vm, name="alpha-1"))["imageId"]
    emu.clock.advance(100)
    second = ok(vm, create_image(vm, "i-db", name="beta-1"))["imageId"]

    by_ids = ok(vm, describe_images(ids=[first, second, "img-unknown"]))
    assert {i["imageId"]: i["status"] for i in by_ids["images"]} == {first: "ready", second: "pending"}
    ready = ok(vm, describe_images(imageSource="private", status="ready"))
    assert [i["imageId"] for i in ready["images"]] == [first]
    named = ok(vm, describe_images(imageSource="private", imageName="beta"))
    assert [i["imageId"] for i in named["images"]] == [second]
    page = ok(vm, describe_images(imageSource="private", pageNumber=2, pageSize=1))
    assert page["totalCount"] == 2 and [i["imageId"] for i in page["images"]] == [first]  # newest first
    assert ok(vm, describe_images(imageSource="public"))["images"] == []
    refused(vm, describe_images(), 400, "INVALID_ARGUMENT")  # neither ids nor imageSource


# -- copyImages -------------------------------------------------------------------------------


def copy_request(sources: list[str], name: str | None = "dr-copy") -> CopyImagesRequest:
    params = CopyImagesParameters(REGION, sources, DEST)
    params.setName(name)
    params.setDescription("dr copy")
    return CopyImagesRequest(params)


def ready_images(emu: EmulatorHandle, vm: VmClient, n: int) -> list[str]:
    ids = [ok(vm, create_image(vm, "i-db", name=f"src-{i}"))["imageId"] for i in range(n)]
    emu.clock.advance(100)
    return ids


def test_copy_images_creates_copies_in_the_destination(emu: EmulatorHandle, vm: VmClient) -> None:
    sources = ready_images(emu, vm, 2)
    copies = ok(vm, copy_request(sources))["copyImages"]
    assert [c["sourceImageId"] for c in copies] == sources
    dest_images = {img.image_id: img for img in emu.model.list_images(ACCOUNT, DEST)}
    assert set(dest_images) == {c["destinationImageId"] for c in copies}
    for c in copies:
        img = dest_images[c["destinationImageId"]]
        assert (img.source_image_id, img.name, img.description) == (c["sourceImageId"], "dr-copy", "dr copy")

    dest_vm = DescribeImageRequest(DescribeImageParameters(DEST, copies[0]["destinationImageId"]))
    assert ok(vm, dest_vm)["image"]["status"] == "copying"
    emu.clock.advance(200)
    assert ok(vm, dest_vm)["image"]["status"] == "ready"


def test_copy_images_refuses_eleven_images_and_non_ready_sources(emu: EmulatorHandle, vm: VmClient) -> None:
    sources = ready_images(emu, vm, 11)
    assert "10" in refused(vm, copy_request(sources), 400, "INVALID_ARGUMENT")
    pending = ok(vm, create_image(vm, "i-db", name="still-pending"))["imageId"]
    # All or nothing: the ready first image's copy is undone when the second is refused.
    refused(vm, copy_request([sources[0], pending]), 400, "FAILED_PRECONDITION")
    refused(vm, copy_request(["img-nothere"]), 404, "NOT_FOUND")
    assert emu.model.list_images(ACCOUNT, DEST) == []


# -- deleteImage and quotas ---------------------------------------------------------------------


def quotas(vm: VmClient, disk: DiskClient) -> dict[str, tuple[int, int]]:
    params = DescribeQuotasParameters(REGION)
    params.setFilters([Filter("resourceTypes", ["image", "snapshot"])])
    result = ok(vm, DescribeQuotasRequest(params))
    found = {q["resourceType"]: (q["used"], q["limit"]) for q in result["quotas"]}
    snapshot = ok(disk, DescribeQuotaRequest(DescribeQuotaParameters(REGION, "snapshot")))["quota"]
    assert found["snapshot"] == (snapshot["used"], snapshot["limit"])
    return found


def test_quotas_follow_creation_and_deletion(emu: EmulatorHandle, vm: VmClient, disk: DiskClient) -> None:
    assert quotas(vm, disk) == {"image": (0, 100), "snapshot": (0, 256)}
    image_id = ok(vm, create_image(vm))["imageId"]
    assert quotas(vm, disk) == {"image": (1, 100), "snapshot": (2, 256)}  # one image, two disks

    params = DeleteImageParameters(REGION, image_id)
    params.setDeleteSnapshot(True)
    resp = vm.send(DeleteImageRequest(params))
    assert resp.error is None and resp.request_id
    assert emu.model.list_images(ACCOUNT, REGION) == []
    assert quotas(vm, disk) == {"image": (0, 100), "snapshot": (0, 256)}
    refused(vm, DeleteImageRequest(params), 404, "NOT_FOUND")


def test_delete_keeps_snapshots_unless_asked(emu: EmulatorHandle, vm: VmClient, disk: DiskClient) -> None:
    image_id = ok(vm, create_image(vm, "i-db"))["imageId"]
    ok(vm, DeleteImageRequest(DeleteImageParameters(REGION, image_id)))
    assert quotas(vm, disk) == {"image": (0, 100), "snapshot": (1, 256)}


def test_quota_exhaustion_refuses_creation(emu: EmulatorHandle, vm: VmClient) -> None:
    emu.model.set_quota(ACCOUNT, REGION, "snapshot", 1)
    assert "snapshot" in refused(vm, create_image(vm), 429, "QUOTA_EXCEEDED")  # needs two snapshots
    ok(vm, create_image(vm, exclude=("vdb",)))
    emu.model.set_quota(ACCOUNT, REGION, "image", 1)
    assert "image" in refused(vm, create_image(vm, "i-db"), 429, "QUOTA_EXCEEDED")
    assert len(emu.model.list_images(ACCOUNT, REGION)) == 1


# -- injected faults and authentication -----------------------------------------------------------


def test_injected_throttling_and_server_errors(emu: EmulatorHandle, vm: VmClient) -> None:
    request = describe_images(imageSource="private")
    emu.faults.set(
        {
            "vendor": "jdcloud",
            "action": "describeImages",
            "throttle_next": 1,
            "error_next": 2,
            "error_status": 503,
        }
    )
    refused(vm, request, 429, "RATE_LIMIT")
    refused(vm, request, 503, "UNAVAILABLE")
    refused(vm, request, 503, "UNAVAILABLE")
    ok(vm, request)
    emu.faults.set({"vendor": "jdcloud", "action": "createImage", "error_next": 1})
    refused(vm, create_image(vm), 500, "INTERNAL")
    assert emu.model.list_images(ACCOUNT, REGION) == []
    assert emu.counters.get("jdcloud", "describeImages") == 4


def test_signature_is_verified(emu: EmulatorHandle) -> None:
    request = DescribeInstanceRequest(DescribeInstanceParameters(REGION, "i-web"))
    wrong_secret = VmClient(Credential(AK, "not-the-secret"), _config(emu), logger=Logger(ERROR))
    assert "signature" in refused(wrong_secret, request, 401, "UNAUTHENTICATED")
    unknown_key = VmClient(Credential("AKNOBODY", SK), _config(emu), logger=Logger(ERROR))
    assert "AKNOBODY" in refused(unknown_key, request, 401, "UNAUTHENTICATED")
    # The same credentials sign POST bodies and list queries correctly.
    good = VmClient(Credential(AK, SK), _config(emu), logger=Logger(ERROR))
    ok(good, create_image(good))
    ok(good, describe_images(imageSource="private", imageName="night"))


# -- conformance (issue #8) ------------------------------------------------------------------------


def test_create_image_refuses_a_busy_or_passing_instance(emu: EmulatorHandle, vm: VmClient) -> None:
    """createImage: "云主机实例没有正在进行中的任务时才可制作镜像"; running or stopped only. Errors:
    FAILED_PRECONDITION "Conflict with underlay task" (请稍后再试) and "Invalid instance status"."""
    emu.model.set_instance_state(ACCOUNT, REGION, "i-web", task="resize")
    assert "underlay task" in refused(vm, create_image(vm), 400, "FAILED_PRECONDITION")
    emu.model.set_instance_state(ACCOUNT, REGION, "i-web", status="stopping", task=None)
    assert "Invalid instance status" in refused(vm, create_image(vm), 400, "FAILED_PRECONDITION")
    emu.model.set_instance_state(ACCOUNT, REGION, "i-web", status="stopped")
    assert ok(vm, create_image(vm))["imageId"]


def test_images_say_whether_their_disks_are_encrypted(emu: EmulatorHandle, vm: VmClient) -> None:
    """An image's disks are disk-service Disks, whose ``encrypted`` says "云盘是否为加密盘"."""
    params = CreateImageParameters(DEST, "i-secure", "secure")
    image_id = ok(vm, CreateImageRequest(params))["imageId"]
    described = ok(vm, DescribeImageRequest(DescribeImageParameters(DEST, image_id)))["image"]
    assert described["systemDisk"]["cloudDisk"]["encrypted"] is True
    plain = ok(vm, create_image(vm))["imageId"]
    assert (
        ok(vm, DescribeImageRequest(DescribeImageParameters(REGION, plain)))["image"]["systemDisk"]["cloudDisk"][
            "encrypted"
        ]
        is False
    )


def test_modify_image_attribute_renames_and_describes(emu: EmulatorHandle, vm: VmClient) -> None:
    """modifyImageAttribute: "只支持修改镜像名称或描述"."""
    image_id = ok(vm, create_image(vm))["imageId"]
    params = ModifyImageAttributeParameters(REGION, image_id)
    params.setDescription("now with a marker")
    ok(vm, ModifyImageAttributeRequest(params))
    params.setName("x" * 33)
    refused(vm, ModifyImageAttributeRequest(params), 400, "INVALID_ARGUMENT")
    image = emu.model.get_image(ACCOUNT, REGION, image_id)
    assert (image.name, image.description) == ("nightly", "now with a marker")


def test_copy_batches_follow_either_reading(emu: EmulatorHandle, vm: VmClient) -> None:
    """JD does not say whether a refused copyImages keeps the copies it started: all or nothing by
    default, the other reading behind a quirk; another quirk drops the requested description."""
    sources = ready_images(emu, vm, 1)
    pending = ok(vm, create_image(vm, "i-db", name="still-pending"))["imageId"]
    emu.model.set_quirk("jd_copy_batch_partial")
    refused(vm, copy_request([sources[0], pending]), 400, "FAILED_PRECONDITION")
    assert [i.source_image_id for i in emu.model.list_images(ACCOUNT, DEST)] == [sources[0]]
    emu.model.set_quirk("jd_copy_drops_description")
    (copy,) = ok(vm, copy_request([sources[0]]))["copyImages"]
    assert emu.model.get_image(ACCOUNT, DEST, copy["destinationImageId"]).description == f"copied from {sources[0]}"
    with pytest.raises(ValueError):
        emu.model.set_quirk("no-such-quirk")


def test_describe_can_miss_a_new_image_for_a_while(emu: EmulatorHandle, vm: VmClient) -> None:
    emu.model.hide_new(30, "jdcloud")
    image_id = ok(vm, create_image(vm))["imageId"]
    refused(vm, DescribeImageRequest(DescribeImageParameters(REGION, image_id)), 404, "NOT_FOUND")
    assert ok(vm, describe_images(ids=[image_id]))["images"] == []
    emu.clock.advance(30)
    assert ok(vm, DescribeImageRequest(DescribeImageParameters(REGION, image_id)))["image"]["imageId"] == image_id
