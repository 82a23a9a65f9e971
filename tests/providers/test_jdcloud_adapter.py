"""The JD Cloud adapter against the emulator, through the real jdcloud_sdk."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from submission import copy as copy_through_engine
from submission import submit

from imagebak.emulator.rules import Latency
from imagebak.emulator.server import EmulatorHandle
from imagebak.providers import ProviderSettings, make_provider
from imagebak.providers.base import (
    NOT_VISIBLE,
    CopySpec,
    ErrorKind,
    ImageSpec,
    ImageState,
    InstanceInfo,
    Provider,
    ProviderError,
    Quota,
)
from imagebak.providers.credentials import Credentials
from imagebak.providers.jdcloud import STUCK_AFTER, name_problems, parse_marker, render_name
from imagebak.providers.retry import RetryPolicy

REGION, DEST = "cn-north-1", "cn-south-1"
ACCOUNT, AK, SK = "jd-adapter", "AKJDADAPTERTEST", "fake-jd-adapter-secret"
FAST_RETRY = RetryPolicy(max_attempts=4, initial_wait=0.001, max_wait=0.005, deadline_seconds=30)

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
                    "instance_id": "i-app",
                    "region": REGION,
                    "name": "app-01",
                    "disks": [
                        {"device": "vda", "size_gb": 40, "is_system": True},
                        {"device": "vdb", "size_gb": 60},
                        {"device": "vdc", "size_gb": 100, "category": "local"},
                    ],
                },
                {
                    "instance_id": "i-secure",
                    "region": REGION,
                    "name": "secure-01",
                    "disks": [{"device": "vda", "size_gb": 40, "is_system": True, "encrypted": True}],
                },
            ],
        }
    ],
    "latencies": {
        "jdcloud": {
            "image": {"base_seconds": 100},
            "snapshot": {"base_seconds": 100},
            "copy": {"base_seconds": 100},
        }
    },
}


@pytest.fixture
def emu(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory(FIXTURE)


def settings(endpoint: str, secret: str = SK) -> ProviderSettings:
    return ProviderSettings(ACCOUNT, Credentials(AK, secret), endpoint=endpoint, retry=FAST_RETRY, timeout_seconds=5)


@pytest.fixture
def jd(emu: EmulatorHandle) -> Provider:
    provider = make_provider("jdcloud", settings(emu.endpoint))
    provider.submissions.clock = emu.clock.now  # the adapter's sense of "now" is the emulated cloud's
    return provider


def calls(emu: EmulatorHandle, action: str) -> int:
    return emu.counters.get("jdcloud", action)


def spec(instance: InstanceInfo, key: str, devices: tuple[str, ...] = ("vda", "vdb"), policy: str = "nightly"):
    return ImageSpec(
        region=REGION,
        instance=instance,
        devices=devices,
        all_disks=devices == ("vda", "vdb"),
        name=f"{policy}-app-01-20240101T0000",
        description="imagebak nightly backup",
        tags={"imagebak:policy": policy, "imagebak:instance": instance.instance_id},
        idempotency_key=key,
    )


def copy_spec(image_id: str, key: str, name: str = "dr-app") -> CopySpec:
    return CopySpec(REGION, image_id, DEST, name, "dr copy", {"imagebak:policy": "nightly"}, key)


def ready_images(emu: EmulatorHandle, jd: Provider, n: int) -> list[str]:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    ids = [jd.create_image(spec(instance, f"key-{i}", ("vda",))) for i in range(n)]
    emu.clock.advance(100)
    return ids


# -- reading -----------------------------------------------------------------------------------


def test_get_instance_maps_disks_and_missing_is_none(emu: EmulatorHandle, jd: Provider) -> None:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None and (instance.name, instance.status) == ("app-01", "running")
    model_ids = {d.device: d.disk_id for d in emu.model.get_instance(ACCOUNT, REGION, "i-app").disks}
    assert [(d.device, d.category, d.size_gb, d.is_system) for d in instance.disks] == [
        ("vda", "cloud", 40, True),
        ("vdb", "cloud", 60, False),
        ("vdc", "local", 100, False),
    ]
    assert instance.system_disk is not None and instance.system_disk.disk_id == model_ids["vda"]
    assert jd.get_instance(REGION, "i-gone") is None
    assert calls(emu, "describeInstance") == 2  # not found is not retried


def test_get_instances_describes_many_in_one_call(emu: EmulatorHandle, jd: Provider) -> None:
    found = jd.get_instances(REGION, ["i-app", "i-gone", "i-app"])
    assert (calls(emu, "describeInstances"), calls(emu, "describeInstance")) == (1, 0)
    assert list(found) == ["i-app", "i-gone"] and found["i-gone"] is None
    assert found["i-app"] == jd.get_instance(REGION, "i-app")  # the listing carries the same disks


def test_quotas_report_image_and_snapshot(emu: EmulatorHandle, jd: Provider) -> None:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    jd.create_image(spec(instance, "k1"))
    assert list(jd.quotas(REGION)) == [Quota("image", 1, 100), Quota("snapshot", 2, 256)]


# -- creating ----------------------------------------------------------------------------------


def test_create_all_cloud_disks_and_a_subset(emu: EmulatorHandle, jd: Provider) -> None:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    whole = jd.create_image(spec(instance, "k-all"))
    subset = jd.create_image(spec(instance, "k-sub", ("vda",)))
    whole_image = emu.model.get_image(ACCOUNT, REGION, whole)
    assert [d.device for d in whole_image.disks] == ["vda", "vdb"]  # never the local vdc
    assert [d.device for d in emu.model.get_image(ACCOUNT, REGION, subset).disks] == ["vda"]
    assert whole_image.name == "nightly-app-01-20240101T0000"
    assert whole_image.description.startswith("imagebak nightly backup [imagebak key=k-all ")
    assert parse_marker(whole_image.description) == (
        "k-all",
        {"imagebak:policy": "nightly", "imagebak:instance": "i-app"},
    )


def test_resubmission_with_the_same_key_adopts_the_image(emu: EmulatorHandle, jd: Provider) -> None:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    first = jd.create_image(spec(instance, "run-7-i-app"))
    restarted = make_provider("jdcloud", settings(emu.endpoint))  # a resumed run: a fresh adapter
    restarted.submissions.clock = emu.clock.now
    assert submit(restarted, spec(instance, "run-7-i-app"), resumed=True) == first
    assert calls(emu, "createImage") == 1
    assert [img.image_id for img in emu.model.list_images(ACCOUNT, REGION)] == [first]
    assert jd.create_image(spec(instance, "run-8-i-app")) != first


def test_quota_exhaustion_is_a_quota_error(emu: EmulatorHandle, jd: Provider) -> None:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    emu.model.set_quota(ACCOUNT, REGION, "snapshot", 1)
    with pytest.raises(ProviderError) as caught:
        jd.create_image(spec(instance, "k-quota"))
    err = caught.value
    assert (err.kind, err.code, err.http_status) == (ErrorKind.QUOTA, "QUOTA_EXCEEDED", 429)
    assert err.request_id and not err.transient
    assert calls(emu, "createImage") == 1
    assert emu.model.list_images(ACCOUNT, REGION) == []


# -- statuses and discovery ----------------------------------------------------------------------


def test_image_status_is_batched_and_tracks_progress(emu: EmulatorHandle, jd: Provider) -> None:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    refs = [jd.create_image(spec(instance, f"k{i}", ("vda",))) for i in range(3)]
    emu.model.fail_image(ACCOUNT, REGION, refs[2], "disk error")
    emu.counters.reset()
    emu.clock.advance(40)
    statuses = jd.image_status(REGION, [*refs, "img-unknown1"])
    assert calls(emu, "describeImages") == 1
    assert [(statuses[r].state, statuses[r].progress) for r in refs[:2]] == [(ImageState.PENDING, 40)] * 2
    assert (statuses[refs[2]].state, statuses[refs[2]].detail) == (ImageState.FAILED, "error")
    assert statuses["img-unknown1"].state is ImageState.MISSING
    emu.clock.advance(60)
    done = jd.image_status(REGION, refs[:2])
    assert all(s.state is ImageState.AVAILABLE and s.size_gb == 40 for s in done.values())


def test_find_images_uses_the_description_marker(emu: EmulatorHandle, jd: Provider) -> None:
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    nightly = jd.create_image(spec(instance, "k-n"))
    weekly = jd.create_image(spec(instance, "k-w", policy="weekly"))
    emu.model.create_image(ACCOUNT, REGION, "i-app", name="manual", description="made by hand")
    assert [s.image_id for s in jd.find_images(REGION, {"imagebak:policy": "nightly"})] == [nightly]
    found = jd.find_images(REGION, {"imagebak:instance": "i-app"})
    assert sorted(s.image_id for s in found) == sorted([nightly, weekly])
    named = jd.find_images(REGION, {}, name="weekly-app-01-20240101T0000")
    assert [s.image_id for s in named] == [weekly]
    assert jd.find_images(REGION, {}, name="app-01-20240101T0000") == []  # exact names, not substrings


# -- copying and deleting --------------------------------------------------------------------------


def test_copies_are_batched_ten_per_call(emu: EmulatorHandle, jd: Provider) -> None:
    sources = ready_images(emu, jd, 12)
    emu.counters.reset()
    copies = copy_through_engine(jd, [copy_spec(s, f"copy-{s}") for s in sources])
    assert calls(emu, "copyImages") == 2
    assert set(copies) == set(sources)
    dest = {img.image_id: img for img in emu.model.list_images(ACCOUNT, DEST)}
    assert {dest[d].source_image_id for d in copies.values()} == set(sources)
    assert all(img.name == "dr-app" for img in dest.values())


def test_copies_with_their_own_names_are_not_merged_and_single_copies_adopt(emu: EmulatorHandle, jd: Provider) -> None:
    first, second = ready_images(emu, jd, 2)
    specs = [copy_spec(first, "c1", "dr-one"), copy_spec(second, "c2", "dr-two")]
    copies = copy_through_engine(jd, specs)
    assert calls(emu, "copyImages") == 2
    assert {emu.model.get_image(ACCOUNT, DEST, d).name for d in copies.values()} == {"dr-one", "dr-two"}
    resubmitted = copy_through_engine(jd, specs[:1], resumed=True)
    assert resubmitted == {first: copies[first]}  # adopted, no new copy
    assert calls(emu, "copyImages") == 2
    emu.clock.advance(100)
    assert jd.image_status(DEST, [copies[first]])[copies[first]].state is ImageState.AVAILABLE


def test_delete_removes_the_image_and_its_snapshots(emu: EmulatorHandle, jd: Provider) -> None:
    (image_id,) = ready_images(emu, jd, 1)
    jd.delete_image(REGION, image_id)
    assert emu.model.list_images(ACCOUNT, REGION) == []
    assert emu.model.quota(ACCOUNT, REGION, "snapshot")[0] == 0
    with pytest.raises(ProviderError) as caught:
        jd.delete_image(REGION, image_id)
    assert caught.value.kind is ErrorKind.NOT_FOUND
    assert calls(emu, "deleteImage") == 2  # the not-found delete was not retried


# -- faults ---------------------------------------------------------------------------------------


def test_throttling_storm_and_server_errors_are_retried(emu: EmulatorHandle, jd: Provider) -> None:
    emu.faults.set({"vendor": "jdcloud", "action": "describeInstance", "throttle_next": 3})
    assert jd.get_instance(REGION, "i-app") is not None
    assert calls(emu, "describeInstance") == 4

    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    emu.faults.set({"vendor": "jdcloud", "action": "createImage", "error_next": 2, "error_status": 503})
    image_id = submit(jd, spec(instance, "k-storm"))
    assert calls(emu, "createImage") == 3
    assert [img.image_id for img in emu.model.list_images(ACCOUNT, REGION)] == [image_id]


def test_persistent_throttling_gives_up_as_throttled(emu: EmulatorHandle, jd: Provider) -> None:
    emu.faults.set({"vendor": "jdcloud", "action": "describeImages", "throttle_rate": 1.0})
    with pytest.raises(ProviderError) as caught:
        jd.image_status(REGION, ["img-x"])
    err = caught.value
    assert (err.kind, err.code, err.http_status) == (ErrorKind.THROTTLED, "RATE_LIMIT", 429)
    assert calls(emu, "describeImages") == FAST_RETRY.max_attempts


def test_bad_credentials_fail_at_once_and_unreachable_endpoints_time_out(emu: EmulatorHandle) -> None:
    wrong = make_provider("jdcloud", settings(emu.endpoint, secret="wrong-secret"))
    with pytest.raises(ProviderError) as caught:
        wrong.get_instance(REGION, "i-app")
    assert (caught.value.kind, caught.value.code) == (ErrorKind.AUTH, "UNAUTHENTICATED")
    assert calls(emu, "describeInstance") == 1

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = make_provider("jdcloud", replace(settings(closed), retry=replace(FAST_RETRY, max_attempts=2)))
    with pytest.raises(ProviderError) as caught:
        unreachable.quotas(REGION)
    assert caught.value.kind is ErrorKind.TIMEOUT and caught.value.transient


def test_nothing_secret_reaches_stdout_or_logs(
    emu: EmulatorHandle, jd: Provider, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    image_id = jd.create_image(spec(instance, "k-quiet"))
    jd.image_status(REGION, [image_id])
    emu.faults.set({"vendor": "jdcloud", "action": "describeQuotas", "throttle_rate": 1.0})
    with pytest.raises(ProviderError) as caught:
        jd.quotas(REGION)
    wrong = make_provider("jdcloud", settings(emu.endpoint, secret="another-wrong-secret"))
    with pytest.raises(ProviderError) as denied:
        wrong.get_instance(REGION, "i-app")
    out, err = capsys.readouterr()
    seen = "\n".join([out, err, caplog.text, str(caught.value), str(denied.value)])
    for secret_or_header in (SK, "another-wrong-secret", "Authorization", "JDCLOUD3-HMAC", "Signature="):
        assert secret_or_header not in seen


def test_a_lost_reply_is_adopted_on_retry_not_duplicated(
    emu: EmulatorHandle, jd: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    real = jd._vm.send  # type: ignore[attr-defined]
    lost: list[str] = []

    def send(request: Any) -> Any:
        response = real(request)
        if type(request).__name__ == "CreateImageRequest" and not lost:
            lost.append("createImage")  # the cloud made the image, the reply was lost
            raise requests.ConnectionError("connection reset by peer")
        return response

    monkeypatch.setattr(jd._vm, "send", send)  # type: ignore[attr-defined]
    image_id = submit(jd, spec(instance, "lost-reply"))
    assert lost == ["createImage"]
    assert calls(emu, "createImage") == 1
    assert [img.image_id for img in emu.model.list_images(ACCOUNT, REGION)] == [image_id]


# -- conformance (issue #8) ------------------------------------------------------------------------


def test_names_keep_the_time_so_two_runs_a_day_differ(emu: EmulatorHandle, jd: Provider) -> None:
    """JD names are at most 32 characters: the policy/instance part is shortened, never the time."""
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    names = []
    for hour in ("01", "02"):
        long = replace(spec(instance, f"k-{hour}"), name=f"jd-weekly-i-7phkqdlmtt-20261122T{hour}00Z")
        image_id = jd.create_image(long)
        names.append(emu.model.get_image(ACCOUNT, REGION, image_id).name)
        assert jd.image_status(REGION, [image_id])[image_id].name == names[-1]
        assert submit(jd, long, resumed=True) == image_id  # adoption looks it up under the same name
    assert names[0] != names[1] and all(len(n) <= 32 and name_problems(n) == [] for n in names)
    assert [n[-14:] for n in names] == ["20261122T0100Z", "20261122T0200Z"]
    assert render_name("每日备份-web") == "每日备份-web" and name_problems("x" * 33) != []


@pytest.mark.parametrize(
    ("status", "state"),
    [("ready", "available"), ("error", "failed"), ("error_copy", "failed"), ("create_failed", "failed"),
     ("copying", "pending"), ("converting", "pending"), ("mystery", "pending")],
)  # fmt: skip
def test_only_ready_is_available_and_failure_words_are_failed(
    emu: EmulatorHandle, jd: Provider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    status: str, state: str,
) -> None:  # fmt: skip
    """JD documents only "ready"; statuses starting with "error" or containing "fail" are failures, and an
    undocumented one is logged and taken as in progress."""
    import imagebak.emulator.frontends.jdcloud as front

    (image_id,) = ready_images(emu, jd, 1)
    monkeypatch.setattr(front, "image_status", lambda img: status)
    assert jd.image_status(REGION, [image_id])[image_id].state.value == state
    assert ("undocumented status" in caplog.text) == (status == "mystery")


def test_an_image_not_ready_long_after_its_creation_is_failed(emu: EmulatorHandle, jd: Provider) -> None:
    emu.model.set_latency("jdcloud", "image", Latency(base_seconds=3 * 86400))
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    image_id = jd.create_image(spec(instance, "slow"))
    emu.clock.advance(STUCK_AFTER.total_seconds() - 60)
    assert jd.image_status(REGION, [image_id])[image_id].state is ImageState.PENDING
    emu.clock.advance(120)
    stuck = jd.image_status(REGION, [image_id])[image_id]
    assert stuck.state is ImageState.FAILED and "not ready 24 h after its creation" in stuck.detail
    assert stuck.created_at is not None


def test_an_instance_with_a_task_in_progress_is_busy(emu: EmulatorHandle, jd: Provider) -> None:
    emu.model.set_instance_state(ACCOUNT, REGION, "i-app", task="resize")
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    with pytest.raises(ProviderError) as info:
        jd.create_image(spec(instance, "busy"))
    assert (info.value.kind, info.value.code) == (ErrorKind.CONFLICT, "FAILED_PRECONDITION")


def test_an_encrypted_image_never_shares_a_batch_and_nothing_is_left_untracked(
    emu: EmulatorHandle, jd: Provider
) -> None:
    """Today two copies of a healthy image were left behind when it shared a batch with an encrypted one."""
    secure = jd.get_instance(REGION, "i-secure")
    assert secure is not None
    (healthy,) = ready_images(emu, jd, 1)
    encrypted = jd.create_image(replace(spec(secure, "enc", ("vda",)), all_disks=True))
    emu.clock.advance(100)
    same = {"name": "dr-app"}  # one name, description and tags: one copyImages call if both were sent
    specs = [copy_spec(healthy, "c-healthy", **same), copy_spec(encrypted, "c-encrypted", **same)]
    refs = copy_through_engine(jd, specs)
    assert set(refs) == {healthy}
    assert [i.source_image_id for i in emu.model.list_images(ACCOUNT, DEST)] == [healthy]
    with pytest.raises(ProviderError) as info:
        jd.copy_images([specs[1]])  # alone, it is refused without a call
    assert (info.value.kind, calls(emu, "copyImages")) == (ErrorKind.INVALID, 1)


def test_a_refused_batch_leaves_no_copies_even_if_jd_kept_some(emu: EmulatorHandle, jd: Provider) -> None:
    """The other reading of copyImages (not all or nothing): the adapter deletes what the refused call left."""
    emu.model.set_quirk("jd_copy_batch_partial")
    first, second = ready_images(emu, jd, 2)
    emu.model.set_quota(ACCOUNT, DEST, "image", 1)  # room for one copy: the call is refused at the second
    with pytest.raises(ProviderError) as info:
        jd.copy_images([copy_spec(first, "c-1"), copy_spec(second, "c-2")])
    assert info.value.kind is ErrorKind.QUOTA
    assert emu.model.list_images(ACCOUNT, DEST) == []


def test_tag_image_puts_back_a_dropped_ownership_marker(emu: EmulatorHandle, jd: Provider) -> None:
    emu.model.set_quirk("jd_copy_drops_description")
    (source,) = ready_images(emu, jd, 1)
    copy_id = jd.copy_images([copy_spec(source, "c-marker")])["c-marker"]
    assert parse_marker(emu.model.get_image(ACCOUNT, DEST, copy_id).description) is None
    tags = {"imagebak:policy": "nightly", "imagebak-key": "c-marker"}
    jd.tag_image(DEST, copy_id, tags)
    marker = parse_marker(emu.model.get_image(ACCOUNT, DEST, copy_id).description)
    assert marker is not None and marker[0] == "c-marker"
    jd.tag_image(DEST, copy_id, tags)  # already there: nothing to change
    assert calls(emu, "modifyImageAttribute") == 1
    assert jd.find_submitted(DEST, "c-marker", "dr-app") == copy_id


def test_new_images_not_listed_yet_are_pending(emu: EmulatorHandle, jd: Provider) -> None:
    emu.model.hide_new(60, "jdcloud")
    instance = jd.get_instance(REGION, "i-app")
    assert instance is not None
    image_id = jd.create_image(spec(instance, "lag"))
    status = jd.image_status(REGION, [image_id])[image_id]
    assert (status.state, status.detail) == (ImageState.PENDING, NOT_VISIBLE)
    jd.submissions.record("lost")
    with pytest.raises(ProviderError) as info:
        jd.find_submitted(REGION, "lost", "nightly-app-01-20240101T0000")
    assert info.value.code == "NotVisibleYet"
