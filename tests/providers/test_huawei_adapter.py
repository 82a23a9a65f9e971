"""The Huawei adapter (imagebak.providers.huawei) against the emulator, through the real SDKs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, RequestTimeoutException, SdkError
from submission import copy as copy_through_engine
from submission import submit

from imagebak.emulator.rules import Latency
from imagebak.emulator.server import EmulatorHandle
from imagebak.ownership import TAG_KEY as KEY_TAG
from imagebak.ownership import tag_value
from imagebak.providers import ProviderSettings, make_provider
from imagebak.providers.base import (
    NOT_VISIBLE,
    CopySpec,
    ErrorKind,
    ImageSpec,
    ImageState,
    InstanceInfo,
    ProviderError,
    utcnow,
)
from imagebak.providers.credentials import Credentials
from imagebak.providers.huawei import HuaweiProvider, classify, name_problems
from imagebak.providers.retry import RetryPolicy

pytestmark = pytest.mark.filterwarnings("ignore:Method 'show_job' of ImsClient is deprecated")

ACCOUNT, AK, SK = "hw-adapter", "AKHWADAPTER", "fake-adapter-secret"
NORTH4, EAST3 = "cn-north-4", "cn-east-3"
PROJECTS = {NORTH4: "project-adapter-north4", EAST3: "project-adapter-east3"}
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
                        {"disk_id": "vol-a", "device": "vda", "size_gb": 40, "is_system": True},
                        {"disk_id": "vol-b", "device": "vdb", "size_gb": 100, "volume_type": "SAS"},
                        {"disk_id": "vol-c", "device": "vdc", "size_gb": 60},
                        {"disk_id": "vol-d", "device": "vdd", "size_gb": 200, "category": "local"},
                    ],
                },
                {
                    "instance_id": "secure",
                    "region": NORTH4,
                    "status": "stopped",
                    "disks": [
                        {
                            "disk_id": "vol-s",
                            "device": "vda",
                            "size_gb": 40,
                            "is_system": True,
                            "encrypted": True,
                        }
                    ],
                },
            ],
        }
    ],
    "latencies": {
        "huawei": {
            "image": {"base_seconds": 100},
            "snapshot": {"base_seconds": 100},
            "copy": {"base_seconds": 200},
        }
    },
}
FAST_RETRY = RetryPolicy(max_attempts=5, initial_wait=0.001, max_wait=0.005, deadline_seconds=10)


@pytest.fixture
def emu(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(FIXTURE)


def settings(emu: EmulatorHandle, **overrides: Any) -> ProviderSettings:
    base = ProviderSettings(
        account=ACCOUNT,
        credentials=Credentials(AK, SK),
        endpoint=emu.endpoint,
        projects=PROJECTS,
        agency="ims_admin_agency",
        retry=FAST_RETRY,
        timeout_seconds=10,
    )
    return replace(base, **overrides)


@pytest.fixture
def hw(emu: EmulatorHandle) -> HuaweiProvider:
    provider = make_provider("huawei", settings(emu))
    assert isinstance(provider, HuaweiProvider)
    return provider


@pytest.fixture
def web(hw: HuaweiProvider) -> InstanceInfo:
    instance = hw.get_instance(NORTH4, "web")
    assert instance is not None
    return instance


def spec(
    instance: InstanceInfo,
    devices: tuple[str, ...] = ("vda", "vdb", "vdc"),
    key: str = "key-1",
    vault_id: str | None = "vault-north4",
) -> ImageSpec:
    return ImageSpec(
        region=NORTH4,
        instance=instance,
        devices=devices,
        all_disks=devices == ("vda", "vdb", "vdc"),
        name=f"daily-web-{key}",
        description="imagebak nightly",
        tags={"imagebak-policy": "daily", "imagebak-instance": "web"},
        idempotency_key=key,
        vault_id=vault_id,
    )


def available(emu: EmulatorHandle, hw: HuaweiProvider, ref: str, region: str = NORTH4, wait: float = 100) -> Any:
    emu.clock.advance(wait)
    status = hw.image_status(region, [ref])[ref]
    assert status.state is ImageState.AVAILABLE, status
    return status


def test_get_instance_maps_disks(hw: HuaweiProvider, web: InstanceInfo) -> None:
    assert (web.instance_id, web.region, web.name, web.status) == ("web", NORTH4, "ecs-web-01", "ACTIVE")
    assert [(d.device, d.disk_id, d.category, d.size_gb, d.is_system, d.encrypted) for d in web.disks] == [
        ("vda", "vol-a", "cloud", 40, True, False),
        ("vdb", "vol-b", "cloud", 100, False, False),
        ("vdc", "vol-c", "cloud", 60, False, False),
        ("vdd", "vol-d", "local", 200, False, False),
    ]
    assert web.system_disk is not None and web.system_disk.device == "vda"
    secure = hw.get_instance(NORTH4, "secure")
    assert secure is not None and secure.status == "SHUTOFF"
    assert [(d.device, d.encrypted) for d in secure.disks] == [("vda", True)]
    assert hw.get_instance(NORTH4, "nope") is None
    assert hw.get_instance(EAST3, "web") is None  # instances are regional


def test_quotas_and_limits(emu: EmulatorHandle, hw: HuaweiProvider) -> None:
    (quota,) = hw.quotas(NORTH4)
    assert (quota.resource, quota.used, quota.limit) == ("image", 0, 100)
    emu.model.set_quota(ACCOUNT, NORTH4, "image", 3)
    assert hw.quotas(NORTH4)[0].remaining == 3
    assert hw.limits.max_concurrent_copies == 5
    assert dict(hw.limits.copy_size_limit_gb) == {NORTH4: 300, EAST3: 300}


def test_whole_image_job_to_available(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo) -> None:
    ref = hw.create_image(spec(web))
    assert ref.startswith("job:") and ref.endswith(f"@{NORTH4}")
    pending = hw.image_status(NORTH4, [ref])[ref]
    assert (pending.state, pending.progress) == (ImageState.PENDING, 0)
    emu.clock.advance(30)
    assert hw.image_status(NORTH4, [ref])[ref].progress == 30
    done = available(emu, hw, ref, wait=70)
    image = emu.model.get_image(ACCOUNT, NORTH4, done.image_id)
    assert (image.kind, image.size_gb, done.progress, done.extra_image_ids) == ("whole", 200, 100, ())
    assert image.tags == {"imagebak-policy": "daily", "imagebak-instance": "web", KEY_TAG: "key-1"}
    assert image.description == "imagebak nightly"


def test_create_image_adopts_instead_of_duplicating(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo):
    first = submit(hw, spec(web))
    again = submit(hw, spec(web), resumed=True)  # a run resumed after a crash
    image_id = hw.image_status(NORTH4, [first])[first].image_id
    assert again == image_id
    assert emu.counters.get("huawei", "CreateWholeImage") == 1
    assert hw.image_status(NORTH4, [again])[again].state is ImageState.PENDING
    assert available(emu, hw, again).image_id == image_id
    assert len(emu.model.list_images(ACCOUNT, NORTH4)) == 1


def test_subset_image_is_system_plus_data_images(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo):
    ref = hw.create_image(spec(web, ("vda", "vdc", "vdd")))  # the local vdd is never imaged
    done = available(emu, hw, ref)
    (data_id,) = done.extra_image_ids
    system = emu.model.get_image(ACCOUNT, NORTH4, done.image_id)
    data = emu.model.get_image(ACCOUNT, NORTH4, data_id)
    assert (system.kind, [d.device for d in system.disks]) == ("system", ["vda"])
    assert (data.kind, [d.device for d in data.disks], data.name) == ("data", ["vdc"], "daily-web-key-1-vdc")
    assert data.tags[KEY_TAG] == "key-1"
    # Adopted later by a resumed run, the plain image id still reports its data image.
    adopted = submit(hw, spec(web, ("vda", "vdc", "vdd")), resumed=True)
    assert adopted == done.image_id
    assert hw.image_status(NORTH4, [adopted])[adopted].extra_image_ids == (data_id,)
    assert emu.counters.get("huawei", "CreateImage") == 1


def test_a_failed_system_image_is_adopted_with_its_data_image_not_the_data_image_alone(
    emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo
):
    """Reliability campaign: the system image of a killed run's submission had failed and its data image
    had not; the look-up adopted the data image as the image, and the failed one stayed untracked."""
    emu.model.fail_next_creations(1)  # the system image, made first
    submit(hw, spec(web, ("vda", "vdc")))
    emu.clock.advance(3600)
    system, data = sorted(emu.model.list_images(ACCOUNT, NORTH4), key=lambda i: i.kind != "system")
    assert (system.status, data.status) == ("failed", "available")
    adopted = submit(hw, spec(web, ("vda", "vdc")), resumed=True)
    assert adopted == system.image_id
    status = hw.image_status(NORTH4, [adopted])[adopted]
    assert (status.state, status.extra_image_ids) == (ImageState.FAILED, (data.image_id,))


def test_an_adopted_system_image_waits_for_its_data_image(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo):
    """The job of a system + data image call succeeds when both are made; an adopted system image
    (its id, no job) must not be reported done sooner, or its data image's copy is refused (IMG.0046)."""
    emu.model.set_latency("huawei", "image", Latency(base_seconds=60, per_gb_seconds=1))
    submit(hw, spec(web, ("vda", "vdc")))
    adopted = submit(hw, spec(web, ("vda", "vdc")), resumed=True)
    system = emu.model.get_image(ACCOUNT, NORTH4, adopted)
    (data,) = [i for i in emu.model.list_images(ACCOUNT, NORTH4) if i.image_id != adopted]
    assert system.ready_at < data.ready_at  # 40 GB against 60 GB
    emu.clock.advance((system.ready_at - emu.clock.now()).total_seconds() + 1)
    assert emu.model.get_image(ACCOUNT, NORTH4, adopted).status == "available"
    status = hw.image_status(NORTH4, [adopted])[adopted]
    assert (status.state, status.extra_image_ids, status.detail) == (
        ImageState.PENDING, (data.image_id,), "its data image(s) saving"
    )  # fmt: skip
    assert available(emu, hw, adopted).extra_image_ids == (data.image_id,)


def test_failed_image_reports_reason(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo) -> None:
    emu.model.fail_next_creations(1, reason="snapshot backend error")
    ref = hw.create_image(spec(web))
    emu.clock.advance(100)
    failed = hw.image_status(NORTH4, [ref])[ref]
    assert (failed.state, failed.detail) == (ImageState.FAILED, "snapshot backend error")
    plain = hw.image_status(NORTH4, [failed.image_id])[failed.image_id]
    assert (plain.state, plain.detail) == (ImageState.FAILED, "killed")
    # A killed image is adopted (then deleted and made again under a new key by the engine), never left
    # behind untracked while the same key is submitted again.
    assert submit(hw, spec(web), resumed=True) == failed.image_id


def test_image_status_of_unknown_refs(hw: HuaweiProvider) -> None:
    statuses = hw.image_status(NORTH4, ["job:" + "0" * 32, "no-such-image"])
    assert {ref: s.state for ref, s in statuses.items()} == {
        "job:" + "0" * 32: ImageState.MISSING,
        "no-such-image": ImageState.MISSING,
    }


def test_find_images_by_tags_and_name(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo) -> None:
    whole = available(emu, hw, hw.create_image(spec(web, key="k1"))).image_id
    weekly = replace(spec(web, key="k2"), tags={"imagebak-policy": "weekly", "imagebak-instance": "web"})
    other = hw.create_image(weekly)
    other_id = hw.image_status(NORTH4, [other])[other].image_id
    found = hw.find_images(NORTH4, {"imagebak-policy": "daily", "imagebak-instance": "web"})
    assert [(s.image_id, s.state, s.size_gb) for s in found] == [(whole, ImageState.AVAILABLE, 40)]
    both = hw.find_images(NORTH4, {"imagebak-instance": "web"})
    assert [s.image_id for s in both] == [other_id, whole]
    assert [s.image_id for s in hw.find_images(NORTH4, {"imagebak-instance": "web"}, name="daily-web-k1")] == [whole]
    assert hw.find_images(EAST3, {"imagebak-instance": "web"}) == []


def test_copy_then_tag_then_delete(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo) -> None:
    source = available(emu, hw, hw.create_image(spec(web))).image_id
    copy = CopySpec(
        source_region=NORTH4,
        image_id=source,
        dest_region=EAST3,
        name="daily-web-dr",
        description="DR copy",
        tags={"imagebak-policy": "daily"},
        idempotency_key="copy-1",
        vault_id="vault-east3",
    )
    ref = hw.copy_images([copy])[copy.idempotency_key]
    # The engine asks with the copy's destination region; the ref knows the job's home.
    done = available(emu, hw, ref, region=EAST3, wait=200)
    dest = emu.model.get_image(ACCOUNT, EAST3, done.image_id)
    assert (dest.name, dest.description, dest.source_image_id, dest.vault_id) == (
        "daily-web-dr",
        "DR copy [copy-1]",  # a copy takes no tags: the key in its description proves whose it is
        source,
        "vault-east3",
    )
    assert dest.tags == {}
    hw.tag_image(EAST3, done.image_id, copy.tags)
    assert emu.model.get_image(ACCOUNT, EAST3, done.image_id).tags == {"imagebak-policy": "daily"}
    # A resumed run adopts the destination image by name, proven by the key in its description.
    assert copy_through_engine(hw, [copy], resumed=True) == {source: done.image_id}
    other_run = replace(copy, idempotency_key="copy-2")  # same name, another execution: never adopted
    assert copy_through_engine(hw, [other_run], resumed=True)[source].startswith("job:")
    assert emu.counters.get("huawei", "CopyImageCrossRegion") == 2
    emu.clock.advance(200)

    hw.delete_image(EAST3, done.image_id)
    assert hw.image_status(EAST3, [done.image_id])[done.image_id].state is ImageState.MISSING


def test_copy_refusal_is_classified(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo) -> None:
    source = available(emu, hw, hw.create_image(spec(web))).image_id
    copy = CopySpec(NORTH4, source, EAST3, "dr", "", {}, "copy-x", vault_id=None)
    with pytest.raises(ProviderError) as info:
        hw.copy_images([copy])
    assert (info.value.kind, info.value.code, info.value.http_status) == (ErrorKind.INVALID, "IMG.0001", 400)
    assert emu.counters.get("huawei", "CopyImageCrossRegion") == 1


def test_throttling_storm_is_ridden_out(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo) -> None:
    emu.faults.set({"vendor": "huawei", "action": "ShowImageQuota", "throttle_next": 3})  # GET: bare 429s
    assert hw.quotas(NORTH4)[0].limit == 100
    assert emu.counters.get("huawei", "ShowImageQuota") == 4
    emu.faults.set({"vendor": "huawei", "action": "CreateWholeImage", "throttle_next": 2})  # POST: APIGW.0308
    assert submit(hw, spec(web)).startswith("job:")
    assert emu.counters.get("huawei", "CreateWholeImage") == 3
    assert len(emu.model.list_images(ACCOUNT, NORTH4)) == 1


def test_server_errors_are_retried(emu: EmulatorHandle, hw: HuaweiProvider) -> None:
    emu.faults.set({"vendor": "huawei", "action": "ShowServer", "error_next": 2, "error_status": 503})
    emu.faults.set({"vendor": "huawei", "action": "ListVolumes", "error_next": 1, "error_status": 500})
    instance = hw.get_instance(NORTH4, "web")
    assert instance is not None and len(instance.disks) == 4
    assert emu.counters.get("huawei", "ShowServer") == 3
    assert emu.counters.get("huawei", "ListVolumes") == 2


def test_throttling_beyond_the_budget_fails_as_throttled(emu: EmulatorHandle, hw: HuaweiProvider) -> None:
    emu.faults.set({"vendor": "huawei", "action": "ListImageByTags", "throttle_rate": 1.0})
    with pytest.raises(ProviderError) as info:
        hw.find_images(NORTH4, {"a": "b"})
    assert (info.value.kind, info.value.transient) == (ErrorKind.THROTTLED, True)
    assert emu.counters.get("huawei", "ListImageByTags") == FAST_RETRY.max_attempts


def test_not_found_is_not_retried(emu: EmulatorHandle, hw: HuaweiProvider) -> None:
    with pytest.raises(ProviderError) as info:
        hw.delete_image(NORTH4, "no-such-image")
    error = info.value
    assert (error.kind, error.code, error.http_status, error.action) == (
        ErrorKind.NOT_FOUND,
        "IMG.0027",
        404,
        "GlanceDeleteImage",
    )
    assert error.request_id
    assert emu.counters.get("huawei", "GlanceDeleteImage") == 1


def test_quota_exhausted_is_quota_kind(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo) -> None:
    emu.model.set_quota(ACCOUNT, NORTH4, "image", 0)
    with pytest.raises(ProviderError) as info:
        hw.create_image(spec(web))
    assert (info.value.kind, info.value.code) == (ErrorKind.QUOTA, "IMG.0015")
    assert emu.counters.get("huawei", "CreateWholeImage") == 1


def test_wrong_secret_is_auth_and_never_echoed(emu: EmulatorHandle) -> None:
    hw = make_provider("huawei", settings(emu, credentials=Credentials(AK, "not-the-secret")))
    with pytest.raises(ProviderError) as info:
        hw.quotas(NORTH4)
    assert (info.value.kind, info.value.code, info.value.http_status) == (ErrorKind.AUTH, "APIGW.0301", 401)
    assert "not-the-secret" not in str(info.value)
    assert emu.counters.get("huawei", "ShowImageQuota") == 1


def test_missing_project_id_is_a_clear_error(emu: EmulatorHandle) -> None:
    hw = make_provider("huawei", settings(emu, projects={NORTH4: PROJECTS[NORTH4]}))
    with pytest.raises(ProviderError) as info:
        hw.get_instance(EAST3, "web")
    assert info.value.kind is ErrorKind.INVALID
    assert "projects:" in info.value.message and EAST3 in info.value.message
    assert SK not in str(info.value)
    assert emu.counters.snapshot().get("huawei", {}) == {}  # nothing was sent


def test_demo_world_local_disks(emulator: EmulatorHandle) -> None:
    """The packaged demo fixture's Huawei account, as `imagebak run` against the embedded emulator sees it."""
    account = emulator.model.account("huawei-demo")
    hw = make_provider(
        "huawei",
        ProviderSettings(
            account=account.name,
            credentials=Credentials(account.access_key_id, account.secret),
            endpoint=emulator.endpoint,
            projects=account.projects,
            retry=FAST_RETRY,
        ),
    )
    local_system = hw.get_instance(NORTH4, "77bd891f-f7b1-43df-a323-1e1ee2015522")
    assert local_system is not None and local_system.system_disk is not None
    assert local_system.system_disk.category == "local"
    local_data = hw.get_instance(NORTH4, "29acf1a5-7cbd-4f5a-a28a-f60465f42986")
    assert local_data is not None
    assert [(d.device, d.category) for d in local_data.disks] == [
        ("vda", "cloud"),
        ("vdb", "local"),
        ("vdc", "local"),
    ]


def test_a_lost_reply_is_adopted_on_retry_not_duplicated(
    emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huaweicloudsdkcore.exceptions.exceptions import ConnectionException

    client = hw._client("ims", NORTH4)
    real = client.create_whole_image
    calls: list[int] = []

    def reply_lost(request: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            real(request)  # the cloud accepted it...
            raise ConnectionException("connection reset by peer")  # ...but the reply never arrived
        return real(request)

    monkeypatch.setattr(client, "create_whole_image", reply_lost)
    ref = submit(hw, spec(web))
    assert calls == [1]  # the retry adopted instead of submitting again
    assert emu.counters.get("huawei", "CreateWholeImage") == 1
    assert [i.image_id for i in emu.model.list_images(ACCOUNT, NORTH4)] == [ref]


# ---- conformance (issue #8) -------------------------------------------------------------------


def test_whole_image_carries_the_vault_and_without_one_becomes_system_plus_data(
    emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo, caplog: pytest.LogCaptureFixture
) -> None:
    whole = available(emu, hw, hw.create_image(spec(web, key="with-vault")))
    assert emu.model.get_image(ACCOUNT, NORTH4, whole.image_id).kind == "whole"
    assert emu.counters.get("huawei", "CreateWholeImage") == 1
    # A CBR account refuses a whole image without a vault: the same disks as system + data images.
    fallback = available(emu, hw, hw.create_image(spec(web, key="no-vault", vault_id=None)))
    assert emu.model.get_image(ACCOUNT, NORTH4, fallback.image_id).kind == "system"
    assert len(fallback.extra_image_ids) == 2  # vdb and vdc
    assert (emu.counters.get("huawei", "CreateWholeImage"), emu.counters.get("huawei", "CreateImage")) == (2, 1)
    assert "needs a CBR vault" in caplog.text


def test_a_csbs_account_makes_whole_images_without_a_vault(emulator_factory: Callable[..., EmulatorHandle]):
    emu = emulator_factory({**FIXTURE, "accounts": [{**FIXTURE["accounts"][0], "whole_image_backup": "csbs"}]})
    hw = make_provider("huawei", settings(emu))
    web = hw.get_instance(NORTH4, "web")
    assert web is not None
    done = available(emu, hw, hw.create_image(spec(web, vault_id=None)))
    assert emu.model.get_image(ACCOUNT, NORTH4, done.image_id).kind == "whole"


def test_a_system_disk_alone_is_a_system_image_never_a_whole_one(emu: EmulatorHandle, hw: HuaweiProvider) -> None:
    secure = hw.get_instance(NORTH4, "secure")
    assert secure is not None
    only_vda = replace(spec(secure, devices=("vda",)), all_disks=True)
    done = available(emu, hw, hw.create_image(only_vda))
    assert (emu.model.get_image(ACCOUNT, NORTH4, done.image_id).kind, done.extra_image_ids) == ("system", ())
    assert emu.counters.get("huawei", "CreateWholeImage") == 0


def test_chinese_policy_names_become_ascii_tag_values(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo):
    chinese = replace(spec(web), tags={"imagebak-policy": "每日备份-web", "imagebak-instance": "web"})
    done = available(emu, hw, hw.create_image(chinese))
    tags = emu.model.get_image(ACCOUNT, NORTH4, done.image_id).tags
    assert tags["imagebak-policy"] == tag_value("每日备份-web") and tags["imagebak-policy"].isascii()
    found = hw.find_images(NORTH4, {"imagebak-policy": "每日备份-web"})
    assert [s.image_id for s in found] == [done.image_id]


def test_a_system_image_reports_its_own_size_and_name(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo):
    """The copy limit is per image: a 40 GB system image of a 40 + 100 GB instance is 40 GB."""
    done = available(emu, hw, hw.create_image(spec(web, ("vda", "vdb"))))
    assert (done.size_gb, done.name) == (40, "daily-web-key-1")


def test_long_names_are_shortened_but_keep_time_and_suffix(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo):
    long = replace(spec(web, ("vda", "vdb")), name="p" * 120 + "-20261201T0200Z")
    done = available(emu, hw, hw.create_image(long))
    system = emu.model.get_image(ACCOUNT, NORTH4, done.image_id)
    data = emu.model.get_image(ACCOUNT, NORTH4, done.extra_image_ids[0])
    assert len(system.name) <= 128 and system.name.endswith("-20261201T0200Z")
    assert len(data.name) <= 128 and data.name.endswith("-20261201T0200Z-vdb")
    assert name_problems(system.name) == [] and name_problems("x" * 129) != []
    assert submit(hw, long, resumed=True) == done.image_id  # adoption finds it under its shortened name


def test_busy_ecs_is_a_conflict_and_a_job_query_fault_is_transient(emu: EmulatorHandle, hw: HuaweiProvider, web):
    emu.model.set_instance_state(ACCOUNT, NORTH4, "web", task="resize")
    with pytest.raises(ProviderError) as info:
        hw.create_image(spec(web))
    assert (info.value.kind, info.value.code) == (ErrorKind.CONFLICT, "IMG.0010")
    fault = ClientRequestException(400, SdkError("req-1", "IMG.0023", "An exception occurred during job query."))
    assert classify(fault, "ShowJobProgress").kind is ErrorKind.UNAVAILABLE


def test_copies_name_the_destination_sub_project(emu: EmulatorHandle, web: InstanceInfo) -> None:
    hw = make_provider("huawei", settings(emu, project_names={EAST3: f"{EAST3}_dr"}))
    source = available(emu, hw, hw.create_image(spec(web))).image_id
    copy = CopySpec(NORTH4, source, EAST3, "dr", "DR copy", {}, "copy-sub", vault_id="vault-east3")
    assert hw.copy_images([copy])["copy-sub"].startswith("job:")
    wrong = make_provider("huawei", settings(emu, project_names={EAST3: "other"}))
    with pytest.raises(ProviderError) as info:
        wrong.copy_images([replace(copy, idempotency_key="copy-wrong")])
    assert info.value.code == "IMG.0001"


def test_jobs_are_followed_with_show_job_progress(emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo):
    available(emu, hw, hw.create_image(spec(web)))
    assert emu.counters.get("huawei", "ShowJobProgress") >= 1
    assert emu.counters.get("huawei", "ShowJob") == 0


def test_jobs_submitted_here_are_followed_in_one_listing_by_their_key(
    emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo
) -> None:
    """With the submission times the engine passes, a job's system and data images and its copy are seen
    in one ListImages of their region by the key they carry: a job is asked for its progress only as a
    sample (the first time here), and for a failure's reason."""
    ages = iter([0.0, 1.0, 1.5, 1.5, 1.5, 1.5, 1.6, 1.7, 1.7])  # submissions and status calls: never twice as old
    hw.clock = lambda: next(ages)
    emu.model.set_latency("huawei", "image", Latency(base_seconds=60, per_gb_seconds=1))
    ref = hw.create_image(spec(web, ("vda", "vdc")))
    at = {ref: emu.clock.now()}
    pending = hw.image_status(NORTH4, [ref], submitted_at=at)[ref]
    system, data = sorted(emu.model.list_images(ACCOUNT, NORTH4), key=lambda i: i.kind != "system")
    assert (pending.state, pending.image_id, pending.progress) == (ImageState.PENDING, system.image_id, 0)
    emu.clock.advance((system.ready_at - emu.clock.now()).total_seconds() + 1)  # 40 GB: before the 60 GB
    waiting = hw.image_status(NORTH4, [ref], submitted_at=at)[ref]
    assert (waiting.state, waiting.detail) == (ImageState.PENDING, "its data image(s) saving")
    emu.clock.advance(30)
    done = hw.image_status(NORTH4, [ref], submitted_at=at)[ref]
    assert (done.state, done.image_id, done.extra_image_ids) == (
        ImageState.AVAILABLE,
        system.image_id,
        (data.image_id,),
    )
    assert (done.size_gb, done.name) == (40, system.name)
    assert emu.counters.get("huawei", "ShowJobProgress") == 1
    copy = CopySpec(NORTH4, system.image_id, EAST3, "daily-web-dr", "DR copy", {}, "copy-1", vault_id="vault-east3")
    copy_ref = hw.copy_images([copy])["copy-1"]
    copy_at = {copy_ref: emu.clock.now()}
    assert hw.image_status(EAST3, [copy_ref], submitted_at=copy_at)[copy_ref].state is ImageState.PENDING
    emu.clock.advance(200)
    copied = hw.image_status(EAST3, [copy_ref], submitted_at=copy_at)[copy_ref]
    (dest,) = emu.model.list_images(ACCOUNT, EAST3)
    assert (copied.state, copied.image_id, copied.size_gb) == (ImageState.AVAILABLE, dest.image_id, 40)
    assert emu.counters.get("huawei", "ShowJobProgress") == 2  # the copy's sample
    emu.model.fail_next_creations(1, reason="snapshot backend error")
    failing = hw.create_image(spec(web, key="key-2"))
    emu.clock.advance(400)
    failed = hw.image_status(NORTH4, [failing], submitted_at={failing: emu.clock.now()})[failing]
    assert (failed.state, failed.detail) == (ImageState.FAILED, "snapshot backend error")
    assert emu.counters.get("huawei", "ShowJobProgress") == 3


def test_the_oldest_job_in_the_making_is_asked_for_its_progress_each_time_it_is_twice_as_old(
    emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo
) -> None:
    """A listing carries no progress: one job's, sampled as its age doubles, gives the engine an estimate."""
    now = [100.0]
    hw.clock = lambda: now[0]
    emu.model.set_latency("huawei", "image", Latency(base_seconds=1000))
    old = hw.create_image(spec(web, key="old"))
    now[0] = 110.0
    young = hw.create_image(spec(web, ("vda",), key="young"))
    at = {old: emu.clock.now(), young: emu.clock.now()}
    samples = []
    for age, sim_seconds in [(15, 15), (25, 10), (30, 5), (59, 29), (60, 1), (120, 60)]:
        now[0], before = 100.0 + age, emu.counters.get("huawei", "ShowJobProgress")
        emu.clock.advance(sim_seconds)
        statuses = hw.image_status(NORTH4, [young, old], submitted_at=at)
        if emu.counters.get("huawei", "ShowJobProgress") > before:
            samples.append((age, statuses[old].progress, statuses[young].progress))
    # the old job at 15 s, then at 30, 60 and 120 s of age; the young one never (the listing has no progress)
    assert samples == [(15, 1, None), (30, 3, None), (60, 6, None), (120, 12, None)]


def test_not_yet_listed_images_are_pending_and_never_submitted_twice(
    emu: EmulatorHandle, hw: HuaweiProvider, web: InstanceInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eventual consistency: right after a create, the lists do not show the image yet."""
    done = available(emu, hw, hw.create_image(spec(web, key="seen")))
    emu.clock.advance(300)
    emu.model.hide_new(300, "huawei")
    fresh = hw.create_image(spec(web, key="fresh"))
    fresh_id = emu.model.list_images(ACCOUNT, NORTH4)[0].image_id
    status = hw.image_status(NORTH4, [fresh_id, done.image_id], submitted_at={fresh_id: utcnow()})
    assert (status[fresh_id].state, status[fresh_id].detail) == (ImageState.PENDING, NOT_VISIBLE)
    assert status[done.image_id].state is ImageState.AVAILABLE
    assert hw.image_status(NORTH4, [fresh])[fresh].state is ImageState.PENDING  # the job is known at once
    # The reply of a create was lost; the retry's look-up finds nothing yet and must not resubmit.
    client = hw._client("ims", NORTH4)
    real = client.create_whole_image

    def reply_lost(request: Any) -> Any:
        real(request)
        raise RequestTimeoutException("read timed out")

    monkeypatch.setattr(client, "create_whole_image", reply_lost)
    with pytest.raises(ProviderError) as info:
        submit(hw, spec(web, key="lost"))
    assert (info.value.code, info.value.kind) == ("NotVisibleYet", ErrorKind.UNAVAILABLE)
    assert emu.counters.get("huawei", "CreateWholeImage") == 3  # seen, fresh, lost: never twice
    emu.clock.advance(301)
    assert submit(hw, spec(web, key="lost"), resumed=True) == emu.model.list_images(ACCOUNT, NORTH4)[0].image_id
    assert emu.counters.get("huawei", "CreateWholeImage") == 3
    # Past the grace period an image the cloud does not list is missing.
    hw.submissions.grace_seconds = 0
    assert hw.image_status(NORTH4, ["gone"])["gone"].state is ImageState.MISSING


def test_discarding_a_failed_job_also_deletes_its_data_images(emu: EmulatorHandle, hw: HuaweiProvider, web):
    emu.model.fail_next_creations(1, reason="backend error")
    failed = hw.image_status(NORTH4, [ref := hw.create_image(spec(web, ("vda", "vdb")))])[ref]
    emu.clock.advance(100)
    failed = hw.image_status(NORTH4, [ref])[ref]
    assert failed.state is ImageState.FAILED
    assert len(emu.model.list_images(ACCOUNT, NORTH4)) == 2  # the killed system image, an active data image
    hw.delete_image(NORTH4, failed.image_id or "")
    assert emu.model.list_images(ACCOUNT, NORTH4) == []
