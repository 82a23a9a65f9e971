"""The Huawei front-end driven by the real huaweicloudsdk IMS/ECS/EVS clients and request classes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    ServerResponseException,
    ServiceResponseException,
)
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.region.region import Region
from huaweicloudsdkecs.v2 import EcsClient, ListServerBlockDevicesRequest, ShowServerRequest
from huaweicloudsdkevs.v2 import EvsClient, ListVolumesRequest, ShowVolumeRequest
from huaweicloudsdkims.v2 import (
    BatchAddOrDeleteTagsRequest,
    BatchAddOrDeleteTagsRequestBody,
    CopyImageCrossRegionRequest,
    CopyImageCrossRegionRequestBody,
    CreateDataImage,
    CreateImageRequest,
    CreateImageRequestBody,
    CreateWholeImageRequest,
    CreateWholeImageRequestBody,
    GlanceDeleteImageRequest,
    GlanceDeleteImageRequestBody,
    ImsClient,
    ListImageByTagsRequest,
    ListImageByTagsRequestBody,
    ListImagesRequest,
    ListOsVersionsRequest,
    ResourceTag,
    ShowImageQuotaRequest,
    ShowJobProgressRequest,
    ShowJobRequest,
    TagKeyValue,
    Tags,
)

from imagebak.emulator.model import Account, CloudError
from imagebak.emulator.server import EmulatorHandle

pytestmark = pytest.mark.filterwarnings("ignore:Method 'show_job' of ImsClient is deprecated")

ACCOUNT, AK, SK = "hw-main", "AKHWWIRETEST", "fake-hw-secret"
NORTH4, EAST3, NORTH1, SG = "cn-north-4", "cn-east-3", "cn-north-1", "ap-southeast-1"
PROJECTS = {region: f"project-{region}" for region in (NORTH4, EAST3, NORTH1, SG)}
ISO_ID = "2c3d4e5f-6071-4293-a4b5-c6d7e8f90a1b"

FIXTURE: dict[str, Any] = {
    "accounts": [
        {
            "name": ACCOUNT,
            "provider": "huawei",
            "access_key_id": AK,
            "secret": SK,
            "regions": PROJECTS,
            "instances": [
                {
                    "instance_id": "web",
                    "region": NORTH4,
                    "name": "ecs-web-01",
                    "disks": [
                        {"disk_id": "vol-web-a", "device": "vda", "size_gb": 40, "is_system": True},
                        {"disk_id": "vol-web-b", "device": "vdb", "size_gb": 100, "volume_type": "SAS"},
                        {"disk_id": "vol-web-c", "device": "vdc", "size_gb": 60, "volume_type": "GPSSD"},
                        {"disk_id": "vol-web-d", "device": "vdd", "size_gb": 200, "category": "local"},
                    ],
                },
                {
                    "instance_id": "localsys",
                    "region": NORTH4,
                    "disks": [{"device": "vda", "size_gb": 40, "is_system": True, "category": "local"}],
                },
                {
                    "instance_id": "secure",
                    "region": NORTH4,
                    "disks": [{"device": "vda", "size_gb": 40, "is_system": True, "encrypted": True}],
                },
                {
                    "instance_id": "mid",  # 140 GB: over cn-north-1's 128 GB copy limit
                    "region": NORTH1,
                    "disks": [
                        {"device": "vda", "size_gb": 40, "is_system": True},
                        {"device": "vdb", "size_gb": 100},
                    ],
                },
                {
                    "instance_id": "sg",  # not a whole-image copy region
                    "region": SG,
                    "disks": [
                        {"device": "vda", "size_gb": 40, "is_system": True},
                        {"device": "vdb", "size_gb": 20},
                    ],
                },
            ],
            "images": [
                {
                    "image_id": ISO_ID,
                    "region": NORTH4,
                    "name": "centos-iso",
                    "size_gb": 5,
                    "image_type": "iso",
                }
            ],
        }
    ],
    # Deterministic durations: an image takes 100 s, a copy 200 s.
    "latencies": {
        "huawei": {
            "image": {"base_seconds": 100},
            "snapshot": {"base_seconds": 100},
            "copy": {"base_seconds": 200},
        }
    },
}


@pytest.fixture
def emu(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(FIXTURE)


def _config() -> HttpConfig:
    config = HttpConfig.get_default_config()
    config.timeout = (3, 10)
    return config


def client(emu: EmulatorHandle, cls: Any = ImsClient, region: str = NORTH4, secret: str = SK, ak: str = AK) -> Any:
    return (
        cls.new_builder()
        .with_http_config(_config())
        .with_credentials(BasicCredentials(ak, secret, PROJECTS[region]))
        .with_endpoint(emu.endpoint)
        .build()
    )


@pytest.fixture
def ims(emu: EmulatorHandle) -> ImsClient:
    return client(emu)


def refused(call: Any, status: int, code: str) -> ServiceResponseException:
    """Assert the SDK raised its typed error with Huawei's status, code and a request id."""
    with pytest.raises(ServiceResponseException) as info:
        call()
    exc = info.value
    assert (exc.status_code, exc.error_code) == (status, code), str(exc)
    assert exc.request_id
    return exc


def whole_image(
    ims: ImsClient, instance_id: str = "web", name: str = "nightly", vault_id: str | None = "vault-1", **tags: str
) -> str:
    body = CreateWholeImageRequestBody(
        name=name,
        instance_id=instance_id,
        description="nightly backup",
        image_tags=[TagKeyValue(key=k, value=v) for k, v in tags.items()],
        vault_id=vault_id,
    )
    return ims.create_whole_image(CreateWholeImageRequest(body=body)).job_id


def job(ims: ImsClient, job_id: str) -> Any:
    return ims.show_job(ShowJobRequest(job_id=job_id))


def ready_image(emu: EmulatorHandle, ims: ImsClient, instance_id: str = "web", **tags: str) -> str:
    """A whole image, created and waited for (the clock advanced past its 100 s)."""
    job_id = whole_image(ims, instance_id, **tags)
    emu.clock.advance(101)
    result = job(ims, job_id)
    assert result.status == "SUCCESS"
    return result.entities.image_id


def copy(ims: ImsClient, image_id: str, dest: str = EAST3, vault_id: str | None = "vault-1", name: str = "dr"):
    body = CopyImageCrossRegionRequestBody(
        name=name, region=dest, project_name=dest, agency_name="ims_admin_agency", vault_id=vault_id
    )
    return ims.copy_image_cross_region(CopyImageCrossRegionRequest(image_id=image_id, body=body))


def list_images(ims: ImsClient, **filters: Any) -> list[Any]:
    return ims.list_images(ListImagesRequest(imagetype="private", **filters)).images


# ---- ECS / EVS --------------------------------------------------------------------------------


def test_show_server_block_devices_and_volumes(emu: EmulatorHandle) -> None:
    ecs, evs = client(emu, EcsClient), client(emu, EvsClient)
    server = ecs.show_server(ShowServerRequest(server_id="web")).server
    assert (server.id, server.name, server.status) == ("web", "ecs-web-01", "ACTIVE")
    attached = {v.id: (v.device, v.boot_index) for v in server.os_extended_volumesvolumes_attached}
    assert attached["vol-web-a"] == ("/dev/vda", "0")
    assert attached["vol-web-d"] == ("/dev/vdd", "-1")

    devices = ecs.list_server_block_devices(ListServerBlockDevicesRequest(server_id="web")).volume_attachments
    assert [(d.device, d.boot_index, d.size) for d in devices] == [
        ("/dev/vda", 0, 40),
        ("/dev/vdb", -1, 100),
        ("/dev/vdc", -1, 60),
        ("/dev/vdd", -1, 200),
    ]

    volume = evs.show_volume(ShowVolumeRequest(volume_id="vol-web-b")).volume
    assert (volume.size, volume.volume_type, volume.bootable, volume.status) == (
        100,
        "SAS",
        "false",
        "in-use",
    )
    assert volume.attachments[0].server_id == "web"
    listed = evs.list_volumes(ListVolumesRequest(server_id="web"))
    # The local disk is attached to the server but is no EVS volume.
    assert listed.count == 3
    assert {v.id: v.bootable for v in listed.volumes} == {
        "vol-web-a": "true",
        "vol-web-b": "false",
        "vol-web-c": "false",
    }
    refused(lambda: evs.show_volume(ShowVolumeRequest(volume_id="vol-web-d")), 404, "EVS.5404")


def test_server_and_volume_not_found_in_their_shapes(emu: EmulatorHandle) -> None:
    exc = refused(lambda: client(emu, EcsClient).show_server(ShowServerRequest(server_id="nope")), 404, "Ecs.0114")
    assert "nope" in exc.error_msg
    # The server lives in cn-north-4: the cn-east-3 project does not see it.
    refused(lambda: client(emu, EcsClient, EAST3).show_server(ShowServerRequest(server_id="web")), 404, "Ecs.0114")
    refused(lambda: client(emu, EvsClient).show_volume(ShowVolumeRequest(volume_id="nope")), 404, "EVS.5404")


# ---- IMS: create and jobs ---------------------------------------------------------------------


def test_whole_image_job_runs_init_running_success(emu: EmulatorHandle, ims: ImsClient) -> None:
    job_id = whole_image(ims, policy="daily", instance="web")
    first = job(ims, job_id)
    assert (first.status, first.job_type) == ("INIT", "imsCreateWholeImageByInstanceJob")
    image_id = first.entities.image_id
    image = emu.model.get_image(ACCOUNT, NORTH4, image_id)
    assert (image.kind, image.status, image.size_gb) == ("whole", "creating", 200)  # local vdd left out
    assert [d.device for d in image.disks] == ["vda", "vdb", "vdc"]
    assert image.tags == {"policy": "daily", "instance": "web"}

    emu.clock.advance(50)
    running = job(ims, job_id)
    assert (running.status, running.entities.process_percent) == ("RUNNING", 0.5)
    assert list_images(ims, id=image_id)[0].status == "saving"

    emu.clock.advance(50)
    done = job(ims, job_id)
    assert (done.status, done.entities.process_percent, done.entities.image_id) == ("SUCCESS", 1.0, image_id)
    listed = list_images(ims, id=image_id)[0]
    assert (listed.status, listed.min_disk, listed.name) == ("active", 40, "nightly")
    assert sorted(listed.tags) == ["instance.web", "policy.daily"]
    raw = ims.list_images(ListImagesRequest(id=image_id)).raw_content
    assert json.loads(raw)["images"][0]["__whole_image"] == "true"


def test_create_image_with_data_images_is_one_job_with_sub_jobs(emu: EmulatorHandle, ims: ImsClient) -> None:
    body = CreateImageRequestBody(
        name="subset",
        instance_id="web",
        image_tags=[TagKeyValue(key="policy", value="subset")],
        data_images=[CreateDataImage(name="subset-vdb", volume_id="vol-web-b", tags=["policy.subset"])],
    )
    job_id = ims.create_image(CreateImageRequest(body=body)).job_id
    started = job(ims, job_id)
    system_id = started.entities.image_id
    (sub,) = started.entities.sub_jobs_result
    data_id = sub.entities.image_id
    assert started.job_type == "imsCreateImageByInstance"
    assert sub.status == "RUNNING"
    system = emu.model.get_image(ACCOUNT, NORTH4, system_id)
    data = emu.model.get_image(ACCOUNT, NORTH4, data_id)
    assert (system.kind, [d.device for d in system.disks]) == ("system", ["vda"])
    assert (data.kind, [d.device for d in data.disks], data.tags) == ("data", ["vdb"], {"policy": "subset"})

    emu.clock.advance(100)
    done = job(ims, job_id)
    assert done.status == "SUCCESS"
    assert [(s.status, s.entities.image_id) for s in done.entities.sub_jobs_result] == [("SUCCESS", data_id)]
    envs = {i.id: i.virtual_env_type for i in list_images(ims, tag="policy=subset")}
    assert envs == {system_id: "FusionCompute", data_id: "DataImage"}


def test_create_image_is_all_or_nothing(emu: EmulatorHandle, ims: ImsClient) -> None:
    body = CreateImageRequestBody(
        name="bad",
        instance_id="web",
        data_images=[
            CreateDataImage(name="ok", volume_id="vol-web-b"),
            CreateDataImage(name="local", volume_id="vol-web-d"),
        ],
    )
    refused(lambda: ims.create_image(CreateImageRequest(body=body)), 400, "IMG.0022")
    assert emu.model.list_images(ACCOUNT, NORTH4, name="bad") == []
    assert emu.model.list_images(ACCOUNT, NORTH4, name="ok") == []


def test_image_refusals(emu: EmulatorHandle, ims: ImsClient) -> None:
    refused(lambda: whole_image(ims, "localsys"), 400, "IMG.0006")
    refused(lambda: whole_image(ims, "no-such-server"), 400, "IMG.0005")
    refused(lambda: job(ims, "0" * 32), 404, "IMS.0404")


def test_failed_creation_turns_job_fail_and_image_killed(emu: EmulatorHandle, ims: ImsClient) -> None:
    emu.model.fail_next_creations(1, reason="disk I/O error")
    job_id = whole_image(ims)
    emu.clock.advance(100)
    failed = job(ims, job_id)
    assert (failed.status, failed.fail_reason, failed.error_code) == ("FAIL", "disk I/O error", "IMG.0014")
    assert list_images(ims, id=failed.entities.image_id)[0].status == "killed"


# ---- IMS: list, quota, tags -------------------------------------------------------------------


def test_list_images_filters_and_pages(emu: EmulatorHandle, ims: ImsClient) -> None:
    first = ready_image(emu, ims, policy="a")
    second = ready_image(emu, ims, policy="b")
    third_job = whole_image(ims, name="pending", policy="b")
    third = job(ims, third_job).entities.image_id

    assert [i.id for i in list_images(ims, tag="policy=b")] == [third, second]
    assert [i.id for i in list_images(ims, status="active")] == [second, first, ISO_ID]
    assert [i.id for i in list_images(ims, status="queued")] == [third]
    assert [i.id for i in list_images(ims, name="pending")] == [third]
    assert ims.list_images(ListImagesRequest(imagetype="gold")).images == []
    iso = list_images(ims, id=ISO_ID)[0]
    assert (iso.disk_format, iso.virtual_env_type) == ("iso", "IsoImage")

    page = ims.list_images(ListImagesRequest(limit=2))
    assert [i.id for i in page.images] == [third, second]
    assert page.page_info.next_marker == second
    rest = ims.list_images(ListImagesRequest(limit=2, marker=second))
    assert [i.id for i in rest.images] == [first, ISO_ID]
    assert rest.page_info is None
    refused(lambda: ims.list_images(ListImagesRequest(marker="nope")), 400, "IMG.0001")
    # Images are regional: cn-east-3 has none.
    assert list_images(client(emu, region=EAST3)) == []


def test_quota_reported_and_enforced(emu: EmulatorHandle, ims: ImsClient) -> None:
    ready_image(emu, ims)
    (quota,) = ims.show_image_quota(ShowImageQuotaRequest()).quotas.resources
    assert (quota.type, quota.used, quota.quota) == ("image", 2, 100)  # the ISO counts too
    emu.model.set_quota(ACCOUNT, NORTH4, "image", 2)
    refused(lambda: whole_image(ims), 400, "IMG.0015")
    assert len(emu.model.list_images(ACCOUNT, NORTH4)) == 2


def test_batch_tags_and_list_by_tags(emu: EmulatorHandle, ims: ImsClient) -> None:
    tagged = ready_image(emu, ims, policy="daily")
    other = ready_image(emu, ims, policy="weekly")
    body = BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[ResourceTag(key="dr", value="copy"), ResourceTag(key="run", value="r1")]
    )
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=tagged, body=body))
    assert emu.model.get_image(ACCOUNT, NORTH4, tagged).tags == {"policy": "daily", "dr": "copy", "run": "r1"}

    def by_tags(action: str, *tags: Tags, **extra: Any) -> Any:
        return ims.list_image_by_tags(
            ListImageByTagsRequest(body=ListImageByTagsRequestBody(action=action, tags=list(tags), **extra))
        )

    found = by_tags("filter", Tags(key="policy", values=["daily", "weekly"]), limit="10", offset="0")
    assert sorted(r.resource_id for r in found.resources) == sorted([tagged, other])
    assert found.total_count == 2
    only = by_tags("filter", Tags(key="dr", values=[]))
    assert [(r.resource_id, r.resource_detail.status) for r in only.resources] == [(tagged, "active")]
    assert {(t.key, t.value) for t in only.resources[0].tags} == {
        ("policy", "daily"),
        ("dr", "copy"),
        ("run", "r1"),
    }
    assert by_tags("count", Tags(key="policy", values=["weekly"])).total_count == 1

    delete = BatchAddOrDeleteTagsRequestBody(action="delete", tags=[ResourceTag(key="dr", value="copy")])
    ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=tagged, body=delete))
    assert by_tags("count", Tags(key="dr", values=[])).total_count == 0
    refused(
        lambda: ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id="nope", body=body)),
        404,
        "IMG.0027",
    )


# ---- IMS: cross-region copy and delete --------------------------------------------------------


def test_cross_region_copy_lands_in_destination(emu: EmulatorHandle, ims: ImsClient) -> None:
    source = ready_image(emu, ims)
    job_id = copy(ims, source, name="web-dr").job_id
    # The job belongs to the source project: the destination project does not know it.
    refused(lambda: job(client(emu, region=EAST3), job_id), 404, "IMS.0404")
    running = job(ims, job_id)
    assert (running.status, running.job_type) == ("INIT", "imsCrossRegionCopyImageJob")
    copy_id = running.entities.image_id
    dest = emu.model.get_image(ACCOUNT, EAST3, copy_id)
    assert (dest.status, dest.source_image_id, dest.source_region, dest.kind) == (
        "creating",
        source,
        NORTH4,
        "whole",
    )
    assert dest.vault_id == "vault-1"

    emu.clock.advance(200)
    assert job(ims, job_id).status == "SUCCESS"
    listed = list_images(client(emu, region=EAST3), id=copy_id)[0]
    assert (listed.status, listed.name, listed.tags) == ("active", "web-dr", [])  # copies carry no tags
    assert (
        json.loads(client(emu, region=EAST3).list_images(ListImagesRequest(id=copy_id)).raw_content)["images"][0][
            "__originalimagename"
        ]
        == source
    )


def test_copy_rules_refused(emu: EmulatorHandle, ims: ImsClient) -> None:
    whole = ready_image(emu, ims)
    refused(lambda: copy(ims, whole, vault_id=None), 400, "IMG.0001")  # whole images need a vault
    refused(lambda: copy(ims, whole, dest=SG), 400, "IMG.0001")  # not a whole-image region
    refused(lambda: copy(ims, whole, dest=NORTH4), 400, "IMG.0001")  # same region
    refused(lambda: copy(ims, ISO_ID), 400, "IMG.0001")
    secure = ready_image(emu, ims, "secure")
    refused(lambda: copy(ims, secure), 400, "IMG.0001")
    pending = job(ims, whole_image(ims)).entities.image_id
    refused(lambda: copy(ims, pending), 400, "IMG.0046")
    refused(lambda: copy(ims, "no-such-image"), 400, "IMG.0027")

    # 140 GB is over the 128 GB limit of cn-north-1 but not the 300 GB of cn-north-4 (web: 200 GB).
    north1 = client(emu, region=NORTH1)
    mid = ready_image(emu, north1, "mid")
    exc = refused(lambda: copy(north1, mid, dest=NORTH4), 400, "IMG.0059")
    assert "128" in exc.error_msg
    assert copy(ims, whole).job_id

    sg = client(emu, region=SG)
    refused(lambda: copy(sg, ready_image(emu, sg, "sg"), dest=NORTH4), 400, "IMG.0001")
    statuses = [e["status"] for e in emu.request_log.entries() if e["action"] == "CopyImageCrossRegion"]
    assert statuses.count(200) == 1


def test_sixth_concurrent_copy_refused(emu: EmulatorHandle, ims: ImsClient) -> None:
    body = CreateImageRequestBody(name="sys", instance_id="web")
    system_job = ims.create_image(CreateImageRequest(body=body)).job_id
    emu.clock.advance(100)
    source = job(ims, system_job).entities.image_id
    for n in range(5):
        copy(ims, source, name=f"dr-{n}", vault_id=None)  # a system image needs no vault
    exc = refused(lambda: copy(ims, source, name="dr-5", vault_id=None), 400, "IMG.0060")
    assert "5" in exc.error_msg
    emu.clock.advance(200)
    assert copy(ims, source, name="dr-5", vault_id=None).job_id
    assert len(emu.model.list_images(ACCOUNT, EAST3)) == 6


def test_delete_blocked_while_copying(emu: EmulatorHandle, ims: ImsClient) -> None:
    source = ready_image(emu, ims)
    copy(ims, source)

    def delete(image_id: str) -> Any:
        body = GlanceDeleteImageRequestBody(delete_backup=True)
        return ims.glance_delete_image(GlanceDeleteImageRequest(image_id=image_id, body=body))

    refused(lambda: delete(source), 400, "IMG.0046")
    emu.clock.advance(200)
    assert delete(source).status_code == 204
    with pytest.raises(CloudError):
        emu.model.get_image(ACCOUNT, NORTH4, source)
    refused(lambda: delete(source), 404, "IMG.0027")


# ---- errors -----------------------------------------------------------------------------------


def test_throttling_on_post_keeps_code_and_request_id(emu: EmulatorHandle, ims: ImsClient) -> None:
    emu.faults.set({"vendor": "huawei", "action": "CreateWholeImage", "throttle_next": 1})
    exc = refused(lambda: whole_image(ims), 429, "APIGW.0308")
    assert isinstance(exc, ClientRequestException)
    assert exc.request_id in {e["request_id"] for e in emu.request_log.entries()}
    assert whole_image(ims)  # the next call goes through


def test_throttling_on_get_loses_the_body_code(emu: EmulatorHandle, ims: ImsClient) -> None:
    """The SDK's GET/DELETE 429 quirk: urllib3 eats the body, only the status survives."""
    emu.faults.set({"vendor": "huawei", "action": "ListImages", "throttle_next": 1})
    with pytest.raises(ClientRequestException) as info:
        list_images(ims)
    assert (info.value.status_code, info.value.error_code, info.value.request_id) == (429, "429", "")
    assert emu.counters.get("huawei", "ListImages") == 1


def test_server_errors_are_server_response_exceptions(emu: EmulatorHandle, ims: ImsClient) -> None:
    emu.faults.set({"vendor": "huawei", "action": "ShowImageQuota", "error_next": 1, "error_status": 503})
    exc = refused(lambda: ims.show_image_quota(ShowImageQuotaRequest()), 503, "IMG.0061")
    assert isinstance(exc, ServerResponseException)
    emu.faults.set({"vendor": "huawei", "action": "ListVolumes", "error_next": 1, "error_status": 500})
    refused(lambda: client(emu, EvsClient).list_volumes(ListVolumesRequest()), 500, "EVS.9999")


@pytest.mark.parametrize(
    ("ak", "secret", "words"),
    [(AK, "wrong-secret", "signature"), ("AKUNKNOWN", SK, "not exist")],
)
def test_bad_signature_and_unknown_key(emu: EmulatorHandle, ak: str, secret: str, words: str) -> None:
    bad = client(emu, ak=ak, secret=secret)
    exc = refused(lambda: bad.show_image_quota(ShowImageQuotaRequest()), 401, "APIGW.0301")
    assert words in exc.error_msg
    assert secret not in exc.error_msg


def test_unknown_project_is_refused(emu: EmulatorHandle) -> None:
    stranger = (
        ImsClient.new_builder()
        .with_http_config(_config())
        .with_credentials(BasicCredentials(AK, SK, "project-of-someone-else"))
        .with_endpoint(emu.endpoint)
        .build()
    )
    refused(lambda: stranger.show_image_quota(ShowImageQuotaRequest()), 401, "APIGW.0301")


def test_sdk_without_project_id_resolves_it_through_iam(emu: EmulatorHandle) -> None:
    creds = BasicCredentials("AKIAMLOOKUP", "iam-lookup-secret").with_iam_endpoint(emu.endpoint)
    emu.model.add_account(
        Account(
            name="hw-iam",
            provider="huawei",
            access_key_id="AKIAMLOOKUP",
            secret="iam-lookup-secret",
            projects={EAST3: "project-iam-east3"},
            regions=[EAST3],
        )
    )
    ims = (
        ImsClient.new_builder()
        .with_http_config(_config())
        .with_credentials(creds)
        .with_region(Region(EAST3, emu.endpoint))
        .build()
    )
    (quota,) = ims.show_image_quota(ShowImageQuotaRequest()).quotas.resources
    assert (quota.used, quota.quota) == (0, 100)
    assert creds.project_id == "project-iam-east3"
    assert emu.counters.get("huawei", "KeystoneListProjects") == 1


def test_unknown_api_is_a_gateway_404(emu: EmulatorHandle, ims: ImsClient) -> None:
    exc = refused(lambda: ims.list_os_versions(ListOsVersionsRequest()), 404, "APIGW.0101")
    assert "does not exist" in exc.error_msg
    assert emu.counters.get("huawei", "UnknownApi") == 1


# ---- conformance (issue #8): rules from the IMS API reference, SDK docstrings, Terraform --------


def test_whole_image_from_an_ecs_needs_a_cbr_vault(emu: EmulatorHandle, ims: ImsClient) -> None:
    """SDK CreateWholeImageRequestBody.vault_id: "如果这个备份为CBR，vault_id为必填项"."""
    exc = refused(lambda: whole_image(ims, vault_id=None), 400, "IMG.0001")
    assert "vault_id" in str(exc.error_msg)
    assert [i.image_type for i in emu.model.list_images(ACCOUNT, NORTH4)] == ["iso"]  # nothing was made
    assert whole_image(ims, vault_id="vault-1")


def test_list_images_tag_filter_is_key_equals_value(emu: EmulatorHandle, ims: ImsClient) -> None:
    """Terraform huaweicloud_images_images: tag "in Key=Value format"; the older key.value matches nothing."""
    image_id = ready_image(emu, ims, policy="daily")
    assert [i.id for i in list_images(ims, tag="policy=daily")] == [image_id]
    assert list_images(ims, tag="policy.daily") == []


def test_tag_keys_and_values_follow_the_tag_format(emu: EmulatorHandle, ims: ImsClient) -> None:
    """IMS 镜像标签数据格式: key 1-36 of [A-Za-z0-9_-], value 0-43 of [A-Za-z0-9_.-]; 10 tags per image."""
    refused(lambda: whole_image(ims, policy="每日备份"), 400, "IMG.0001")
    refused(lambda: whole_image(ims, policy="x" * 44), 400, "IMG.0001")
    refused(lambda: whole_image(ims, **{"k" * 37: "v"}), 400, "IMG.0001")
    both = CreateImageRequestBody(
        name="both", instance_id="web", image_tags=[TagKeyValue(key="a", value="b")], tags=["c.d"]
    )
    refused(lambda: ims.create_image(CreateImageRequest(body=both)), 400, "IMG.0001")  # tags or image_tags
    image_id = ready_image(emu, ims, **{f"k{n}": "v" for n in range(9)})
    body = BatchAddOrDeleteTagsRequestBody(
        action="create", tags=[ResourceTag(key="k9", value="v"), ResourceTag(key="k10", value="v")]
    )
    refused(lambda: ims.batch_add_or_delete_tags(BatchAddOrDeleteTagsRequest(image_id=image_id, body=body)), 400,
            "IMG.0001")  # fmt: skip
    assert len(emu.model.get_image(ACCOUNT, NORTH4, image_id).tags) == 9
    assert whole_image(ims, policy="daily_2026.v-1")


def test_image_names_are_at_most_128_characters(emu: EmulatorHandle, ims: ImsClient) -> None:
    """IMS error codes: IMG.0002 (more than 128 characters), IMG.0003 (invalid name format)."""
    refused(lambda: whole_image(ims, name="n" * 129), 400, "IMG.0002")
    refused(lambda: whole_image(ims, name="bad/name"), 400, "IMG.0003")
    refused(lambda: whole_image(ims, name=" leading-space"), 400, "IMG.0003")
    assert whole_image(ims, name="每日备份 web_01.v-2" + "n" * 100)


def test_busy_or_transient_ecs_is_img_0010(emu: EmulatorHandle, ims: ImsClient) -> None:
    """IMG.0010: the ECS has in-progress tasks; an image needs a running or stopped ECS (seed 002)."""
    emu.model.set_instance_state(ACCOUNT, NORTH4, "web", task="resize")
    refused(lambda: whole_image(ims), 400, "IMG.0010")
    emu.model.set_instance_state(ACCOUNT, NORTH4, "web", status="stopping", task=None)
    refused(lambda: whole_image(ims), 400, "IMG.0010")
    emu.model.set_instance_state(ACCOUNT, NORTH4, "web", status="stopped")
    assert whole_image(ims)


def test_show_job_progress_answers_like_show_job(emu: EmulatorHandle, ims: ImsClient) -> None:
    """ShowJob is deprecated (ims_03_0905_1); ShowJobProgress is GET /v1/cloudimages/job/{job_id}."""
    job_id = whole_image(ims)
    progress = ims.show_job_progress(ShowJobProgressRequest(job_id=job_id))
    assert (progress.status, progress.job_id) == ("INIT", job_id)
    emu.clock.advance(101)
    done = ims.show_job_progress(ShowJobProgressRequest(job_id=job_id))
    assert (done.status, done.entities.process_percent) == ("SUCCESS", 1.0)
    assert done.entities.image_id == job(ims, job_id).entities.image_id
    refused(lambda: ims.show_job_progress(ShowJobProgressRequest(job_id="0" * 32)), 404, "IMS.0404")
    assert emu.counters.get("huawei", "ShowJobProgress") == 3


def test_copy_size_limit_is_per_image(emu: EmulatorHandle) -> None:
    """IMS CopyImageCrossRegion: each image copied (the system image, each data image) is within 128 GB."""
    north1 = client(emu, region=NORTH1)
    body = CreateImageRequestBody(
        name="mid", instance_id="mid", data_images=[CreateDataImage(name="mid-vdb", volume_id=_disk(emu, "mid", "vdb"))]
    )
    job_id = north1.create_image(CreateImageRequest(body=body)).job_id
    emu.clock.advance(101)
    done = job(north1, job_id)
    system, data = done.entities.image_id, done.entities.sub_jobs_result[0].entities.image_id
    assert copy(north1, system, dest=NORTH4).job_id  # 40 GB
    assert copy(north1, data, dest=NORTH4).job_id  # 100 GB: each image is under 128 GB


def test_copy_to_a_sub_project_of_the_destination(emu: EmulatorHandle, ims: ImsClient) -> None:
    image_id = ready_image(emu, ims)
    body = CopyImageCrossRegionRequestBody(name="dr", region=EAST3, project_name=f"{EAST3}_dr", vault_id="v")
    assert ims.copy_image_cross_region(CopyImageCrossRegionRequest(image_id=image_id, body=body)).job_id
    wrong = CopyImageCrossRegionRequestBody(name="dr", region=EAST3, project_name=NORTH4, vault_id="v")
    refused(lambda: ims.copy_image_cross_region(CopyImageCrossRegionRequest(image_id=image_id, body=wrong)), 400,
            "IMG.0001")  # fmt: skip


def test_list_by_tags_pages_ten_by_default_and_refuses_empty_tags(emu: EmulatorHandle, ims: ImsClient) -> None:
    """SDK ListImageByTagsRequestBody: limit defaults to 10 (at most 1000); tags may not be an empty list."""
    for n in range(12):
        whole_image(ims, name=f"n{n}", policy="many")
    body = ListImageByTagsRequestBody(action="filter", tags=[Tags(key="policy", values=["many"])])
    page = ims.list_image_by_tags(ListImageByTagsRequest(body=body))
    assert (len(page.resources), page.total_count) == (10, 12)
    empty = ListImageByTagsRequestBody(action="filter", tags=[])
    refused(lambda: ims.list_image_by_tags(ListImageByTagsRequest(body=empty)), 400, "IMG.0001")
    huge = ListImageByTagsRequestBody(action="filter", tags=[Tags(key="policy", values=[])], limit="1001")
    refused(lambda: ims.list_image_by_tags(ListImageByTagsRequest(body=huge)), 400, "IMG.0001")


def test_new_images_can_be_hidden_from_lists_for_a_while(emu: EmulatorHandle, ims: ImsClient) -> None:
    """The eventual-consistency switch: a new image is missing from ListImages and ListImageByTags."""
    emu.model.hide_new(60, "huawei")
    job_id = whole_image(ims, policy="lag")
    by_tags = ListImageByTagsRequestBody(action="filter", tags=[Tags(key="policy", values=["lag"])])
    assert list_images(ims, tag="policy=lag") == []
    assert ims.list_image_by_tags(ListImageByTagsRequest(body=by_tags)).resources == []
    assert job(ims, job_id).status == "INIT"  # the job itself is known at once
    emu.clock.advance(61)
    assert len(list_images(ims, tag="policy=lag")) == 1
    assert len(ims.list_image_by_tags(ListImageByTagsRequest(body=by_tags)).resources) == 1


def _disk(emu: EmulatorHandle, instance_id: str, device: str) -> str:
    region = emu.model.list_instances(ACCOUNT, NORTH1, [instance_id])[0].region
    inst = emu.model.get_instance(ACCOUNT, region, instance_id)
    return next(d.disk_id for d in inst.disks if d.device == device)


def test_list_images_created_at_filter(emu: EmulatorHandle, ims: ImsClient) -> None:
    """huaweicloudsdkims ListImagesRequest.created_at: "operator:UTC time", gt/gte/lt/lte/eq/neq."""
    first = ready_image(emu, ims, policy="a")
    emu.clock.advance(3600)
    boundary = emu.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    later = job(ims, whole_image(ims, name="later", policy="b")).entities.image_id
    assert [i.id for i in list_images(ims, created_at=f"gte:{boundary}")] == [later]
    assert first in [i.id for i in list_images(ims, created_at=f"lt:{boundary}")]
    assert later not in [i.id for i in list_images(ims, created_at=f"lt:{boundary}")]
    refused(lambda: list_images(ims, created_at="after:yesterday"), 400, "IMG.0001")
