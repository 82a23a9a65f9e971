"""Aliyun clients other than the one imagebak uses, against a served emulator.

- the Tea-based official SDK (``alibabacloud_ecs20140526`` + ``alibabacloud_tea_openapi``) with its
  default signature V3 (``ACS3-HMAC-SHA256``), pointed at the emulator by ``endpoint`` or by ``http_proxy``;
- ``aliyun-python-sdk-core`` asking for ``Format=XML`` (``set_accept_format("XML")``), through the
  emulator used as an HTTP proxy (absolute-form request targets), its responses parsed as XML.
"""

from __future__ import annotations

import hashlib
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from _worlds import instance, world
from alibabacloud_ecs20140526 import models as em
from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi import models as om
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils import Utils
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import AcsRequest, RpcRequest
from aliyunsdkecs.request.v20140526.CopyImageRequest import CopyImageRequest
from aliyunsdkecs.request.v20140526.CreateImageRequest import CreateImageRequest
from aliyunsdkecs.request.v20140526.DeleteImageRequest import DeleteImageRequest
from aliyunsdkecs.request.v20140526.DescribeImagesRequest import DescribeImagesRequest

from imagebak.emulator.server import EmulatorHandle

REGION, DEST = "cn-hangzhou", "cn-shanghai"
AK, SK = "tea-key", "tea-secret"
FIXTURE = world(
    "aliyun",
    ("ali-tea", AK, SK),
    [REGION, DEST],
    [
        instance("i-web", REGION, ("d-web-sys", "vda", 40), ("d-web-data", "vdb", 100)),
        instance("i-far", DEST, ("d-far-sys", "vda", 20)),
    ],
    {"snapshot": 50, "image": 100, "copy": 200},
)


def tea(served: EmulatorHandle, secret: str = SK, key: str = AK, **config: Any) -> Client:
    """The Tea SDK as a user points it at a local endpoint (or, with ``http_proxy=``, at the real host)."""
    config.setdefault("endpoint", served.host_port)
    return Client(
        om.Config(
            access_key_id=key, access_key_secret=secret, region_id=REGION, protocol="http",
            read_timeout=5000, connect_timeout=5000, **config,
        )
    )  # fmt: skip


def tea_status(client: Client, region: str, image_id: str) -> str | None:
    body = client.describe_images(
        em.DescribeImagesRequest(region_id=region, image_id=image_id, status="Creating,Available,CreateFailed")
    ).body
    images = body.images.image
    return images[0].status if images else None


def tea_error(call: Callable[[], Any]) -> ClientException:
    with pytest.raises(ClientException) as caught:
        call()
    return caught.value


# ---- the Tea SDK, signature V3 ------------------------------------------------------------------


def test_tea_sdk_v3_create_poll_copy_delete(served: EmulatorHandle) -> None:
    client = tea(served)
    tag = em.CreateImageRequestTag(key="owner", value="tea")
    created = client.create_image(
        em.CreateImageRequest(region_id=REGION, instance_id="i-web", image_name="tea-image", tag=[tag])
    ).body
    assert created.image_id.startswith("m-") and created.request_id
    assert tea_status(client, REGION, created.image_id) == "Creating"
    served.clock.advance(100)
    assert tea_status(client, REGION, created.image_id) == "Available"

    copy = client.copy_image(
        em.CopyImageRequest(
            region_id=REGION, image_id=created.image_id, destination_region_id=DEST, destination_image_name="tea-copy"
        )
    ).body.image_id
    assert tea_status(client, DEST, copy) == "Creating"
    served.clock.advance(200)
    assert tea_status(client, DEST, copy) == "Available"
    images = client.describe_images(em.DescribeImagesRequest(region_id=DEST, image_id=copy)).body.images.image
    assert images[0].image_name == "tea-copy" and images[0].is_copied is True

    client.delete_image(em.DeleteImageRequest(region_id=DEST, image_id=copy))
    client.delete_image(em.DeleteImageRequest(region_id=REGION, image_id=created.image_id))
    assert tea_status(client, DEST, copy) is None and tea_status(client, REGION, created.image_id) is None
    counters = served.counters.snapshot()["aliyun"]
    assert (counters["CreateImage"], counters["CopyImage"], counters["DeleteImage"]) == (1, 1, 2)


def test_tea_sdk_v3_wrong_secret_unknown_key_and_tampering_are_refused(served: EmulatorHandle) -> None:
    wrong = tea_error(lambda: tea(served, secret="not-the-secret").describe_regions(em.DescribeRegionsRequest()))
    assert (wrong.code, wrong.status_code) == ("SignatureDoesNotMatch", 400)
    unknown = tea_error(lambda: tea(served, key="nobody").describe_regions(em.DescribeRegionsRequest()))
    assert (unknown.code, unknown.status_code) == ("InvalidAccessKeyId.NotFound", 404)

    headers = v3_headers(served, "DescribeImages", "RegionId=cn-hangzhou")
    tampered = requests.post(f"{served.endpoint}/?RegionId=cn-shanghai", headers=headers, timeout=5)
    assert (tampered.status_code, tampered.json()["Code"]) == (400, "SignatureDoesNotMatch")
    headers = v3_headers(served, "DescribeImages", "RegionId=cn-hangzhou", sign_only=("host", "x-acs-action"))
    unsigned = requests.post(f"{served.endpoint}/?RegionId=cn-hangzhou", headers=headers, timeout=5)
    assert (unsigned.status_code, unsigned.json()["Code"]) == (400, "IncompleteSignature")
    assert "x-acs-date" in unsigned.json()["Message"]

    log = served.request_log.entries()
    assert [e["status"] for e in log] == [400, 404, 400, 400]
    assert log[0]["reason"].startswith("SignatureDoesNotMatch") and log[0]["action"] == "DescribeRegions"
    assert served.counters.get("aliyun") == 4


def v3_headers(
    served: EmulatorHandle, action: str, query: str, *, sign_only: tuple[str, ...] | None = None
) -> dict[str, str]:
    """A V3 request signed by the Tea SDK's own ``Utils.get_authorization`` over ``query``."""
    headers = {
        "host": served.host_port,
        "x-acs-action": action,
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-signature-nonce": "nonce-1",
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    signed = {k: v for k, v in headers.items() if sign_only is None or k in sign_only}
    params = dict(part.split("=", 1) for part in query.split("&"))
    request = SimpleNamespace(method="POST", pathname="/", query=params, headers=signed)
    headers["Authorization"] = Utils.get_authorization(
        request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"], AK, SK
    )
    return headers


def test_tea_sdk_region_rules_per_action(served: EmulatorHandle) -> None:
    """CreateSnapshot and DeleteSnapshot take no RegionId: the disk's or snapshot's own region is used."""
    client = tea(served)  # the client's region is cn-hangzhou; the disk is in cn-shanghai
    snapshot_id = client.create_snapshot(
        em.CreateSnapshotRequest(disk_id="d-far-sys", snapshot_name="far")
    ).body.snapshot_id
    found = client.describe_snapshots(em.DescribeSnapshotsRequest(region_id=DEST, snapshot_ids=f'["{snapshot_id}"]'))
    assert [s.snapshot_name for s in found.body.snapshots.snapshot] == ["far"]
    missing = tea_error(lambda: client.describe_images(em.DescribeImagesRequest()))
    assert (missing.code, missing.status_code) == ("MissingParameter", 400)
    assert client.describe_regions(em.DescribeRegionsRequest()).body.regions.region[0].region_id == REGION

    client.delete_snapshot(em.DeleteSnapshotRequest(snapshot_id="s-doesnotexist"))  # ignored, as documented
    client.delete_snapshot(em.DeleteSnapshotRequest(snapshot_id=snapshot_id))
    assert not served.model.list_snapshots("ali-tea", DEST)


def test_tea_sdk_delete_snapshot_used_by_an_image_is_refused_even_with_force(served: EmulatorHandle) -> None:
    client = tea(served)
    image_id = client.create_image(em.CreateImageRequest(region_id=REGION, instance_id="i-web")).body.image_id
    used = [d.snapshot_id for d in served.model.get_image("ali-tea", REGION, image_id).disks]
    refused = tea_error(lambda: client.delete_snapshot(em.DeleteSnapshotRequest(snapshot_id=used[0], force=True)))
    assert (refused.code, refused.status_code) == ("SnapshotCreatedImage", 403)
    by_usage = client.describe_snapshots(em.DescribeSnapshotsRequest(region_id=REGION, usage="image")).body
    assert sorted(s.snapshot_id for s in by_usage.snapshots.snapshot) == sorted(used)
    system = client.describe_snapshots(
        em.DescribeSnapshotsRequest(region_id=REGION, instance_id="i-web", source_disk_type="System")
    ).body.snapshots.snapshot
    assert [(s.source_disk_id, s.usage) for s in system] == [("d-web-sys", "image")]
    assert not client.describe_snapshots(
        em.DescribeSnapshotsRequest(region_id=REGION, usage="none")
    ).body.snapshots.snapshot


def test_tea_sdk_image_attributes_sharing_and_tags(served: EmulatorHandle) -> None:
    client = tea(served)
    image_id = client.create_image(em.CreateImageRequest(region_id=REGION, instance_id="i-web")).body.image_id
    client.modify_image_attribute(
        em.ModifyImageAttributeRequest(
            region_id=REGION, image_id=image_id, image_name="renamed", description="new text"
        )
    )
    image = served.model.get_image("ali-tea", REGION, image_id)
    assert (image.name, image.description) == ("renamed", "new text")
    bad = tea_error(
        lambda: client.modify_image_attribute(
            em.ModifyImageAttributeRequest(region_id=REGION, image_id=image_id, image_name="aliyun-reserved")
        )
    )
    assert bad.code == "InvalidImageName.Malformed"

    client.modify_image_share_permission(
        em.ModifyImageSharePermissionRequest(region_id=REGION, image_id=image_id, add_account=["1001", "1002"])
    )
    shared = client.describe_image_share_permission(
        em.DescribeImageSharePermissionRequest(region_id=REGION, image_id=image_id)
    ).body
    assert sorted(a.aliyun_id for a in shared.accounts.account) == ["1001", "1002"] and shared.total_count == 2
    in_use = tea_error(lambda: client.delete_image(em.DeleteImageRequest(region_id=REGION, image_id=image_id)))
    assert (in_use.code, in_use.status_code) == ("ImageUseShared", 403)
    client.modify_image_share_permission(
        em.ModifyImageSharePermissionRequest(region_id=REGION, image_id=image_id, remove_account=["1001", "1002"])
    )

    tags = [em.TagResourcesRequestTag(key="env", value="prod"), em.TagResourcesRequestTag(key="team", value="ops")]
    client.tag_resources(
        em.TagResourcesRequest(region_id=REGION, resource_type="image", resource_id=[image_id], tag=tags)
    )
    listed = client.list_tag_resources(
        em.ListTagResourcesRequest(
            region_id=REGION, resource_type="image", tag=[em.ListTagResourcesRequestTag(key="env")]
        )
    ).body.tag_resources.tag_resource
    assert sorted((t.resource_id, t.tag_key, t.tag_value) for t in listed) == [
        (image_id, "env", "prod"),
        (image_id, "team", "ops"),
    ]
    client.untag_resources(
        em.UntagResourcesRequest(region_id=REGION, resource_type="image", resource_id=[image_id], tag_key=["env"])
    )
    assert served.model.get_image("ali-tea", REGION, image_id).tags == {"team": "ops"}
    served.clock.advance(10_000)  # DeleteImage refuses an image still being created (ImageIsCreating)
    client.delete_image(em.DeleteImageRequest(region_id=REGION, image_id=image_id))


def test_tea_sdk_through_the_emulator_as_http_proxy(served: EmulatorHandle) -> None:
    """No endpoint override: the SDK targets ecs.cn-hangzhou.aliyuncs.com and the emulator is its proxy."""
    client = tea(served, endpoint=None, http_proxy=served.endpoint)
    regions = client.describe_regions(em.DescribeRegionsRequest()).body.regions.region
    assert [r.region_id for r in regions] == [REGION, DEST]
    image_id = client.create_image(em.CreateImageRequest(region_id=REGION, instance_id="i-web")).body.image_id
    assert tea_status(client, REGION, image_id) == "Creating"
    assert {e["path"] for e in served.request_log.entries()} == {"/"}


# ---- aliyun-python-sdk-core with Format=XML, through the emulator as an HTTP proxy ---------------


@pytest.fixture
def core(served: EmulatorHandle) -> AcsClient:
    """No add_endpoint: requests go to ecs-cn-hangzhou.aliyuncs.com in absolute form via the proxy."""
    return AcsClient(AK, SK, REGION, auto_retry=False, proxy={"http": served.endpoint, "https": None})


def xml_call(client: AcsClient, request: AcsRequest, region: str = REGION) -> tuple[int, ET.Element]:
    request.set_accept_format("XML")
    request.add_query_param("RegionId", region)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the raw-response API is marked deprecated
        status, _, body = client.implementation_of_do_action(request)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return status, ET.fromstring(body)


def xml_images(client: AcsClient, region: str, *image_ids: str) -> ET.Element:
    request = DescribeImagesRequest()
    request.set_ImageId(",".join(image_ids))
    request.set_Status("Creating,Available")
    status, root = xml_call(client, request, region)
    assert status == 200 and root.tag == "DescribeImagesResponse"
    return root


def test_core_sdk_format_xml_create_poll_copy_delete(served: EmulatorHandle, core: AcsClient) -> None:
    ids = []
    for name in ("xml-a", "xml-b"):
        request = CreateImageRequest()
        request.set_InstanceId("i-web")
        request.set_ImageName(name)
        request.set_Tags([{"Key": "via", "Value": "xml"}])
        status, root = xml_call(core, request)
        assert status == 200 and root.tag == "CreateImageResponse" and root.findtext("RequestId")
        ids.append(root.findtext("ImageId"))
    root = xml_images(core, REGION, *ids)
    assert root.findtext("TotalCount") == "2"
    images = root.findall("Images/Image")  # a JSON list is repeated elements
    assert sorted(i.findtext("ImageName") for i in images) == ["xml-a", "xml-b"]
    assert {i.findtext("Status") for i in images} == {"Creating"}
    assert images[0].findtext("Tags/Tag/TagKey") == "via"
    assert len(images[0].findall("DiskDeviceMappings/DiskDeviceMapping")) == 2
    assert images[0].findtext("IsCopied") == "false"
    served.clock.advance(100)
    assert {i.findtext("Status") for i in xml_images(core, REGION, *ids).findall("Images/Image")} == {"Available"}

    request = CopyImageRequest()
    request.set_ImageId(ids[0])
    request.set_DestinationRegionId(DEST)
    status, root = xml_call(core, request)
    copy = root.findtext("ImageId")
    assert status == 200 and root.tag == "CopyImageResponse"
    served.clock.advance(200)
    assert xml_images(core, DEST, copy).findtext("Images/Image/Status") == "Available"

    for region, image_id in ((DEST, copy), (REGION, ids[0]), (REGION, ids[1])):
        request = DeleteImageRequest()
        request.set_ImageId(image_id)
        status, root = xml_call(core, request, region)
        assert (status, root.tag, [c.tag for c in root]) == (200, "DeleteImageResponse", ["RequestId"])
    assert xml_images(core, REGION, *ids).findtext("TotalCount") == "0"


def test_core_sdk_format_xml_errors_and_unknown_action(served: EmulatorHandle, core: AcsClient) -> None:
    request = CreateImageRequest()
    request.set_InstanceId("i-missing")
    status, root = xml_call(core, request)
    assert (status, root.tag) == (404, "Error")
    assert [child.tag for child in root] == ["RequestId", "HostId", "Code", "Message"]
    assert root.findtext("Code") == "InvalidInstanceId.NotFound"

    status, root = xml_call(core, RpcRequest("Ecs", "2014-05-26", "NoSuchAction"))
    assert (status, root.tag, root.findtext("Code")) == (404, "Error", "InvalidAction.NotFound")
    json_request = RpcRequest("Ecs", "2014-05-26", "NoSuchAction")
    json_request.set_accept_format("JSON")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        status, headers, body = core.implementation_of_do_action(json_request)
    assert (
        status == 404 and headers["Content-Type"].startswith("application/json") and b'"InvalidAction.NotFound"' in body
    )

    bad_secret = AcsClient(AK, "wrong", REGION, auto_retry=False, proxy={"http": served.endpoint, "https": None})
    status, root = xml_call(bad_secret, DescribeImagesRequest())
    assert (status, root.findtext("Code")) == (400, "SignatureDoesNotMatch")
    assert served.request_log.entries()[-1]["reason"] == (
        "SignatureDoesNotMatch: Specified signature is not matched with our calculation."
    )
