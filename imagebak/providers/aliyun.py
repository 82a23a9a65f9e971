"""Alibaba Cloud ECS adapter over aliyun-python-sdk-core/-ecs (imported only when Aliyun is in use).

SDK quirks handled here (../shared/reference/cloud-wire-protocols.md §1):
- the SDK never adds a ClientToken and retries CreateImage by itself, so its retries are off
  (``auto_retry=False``), tenacity retries instead, and every create/copy carries a ClientToken
  derived from the engine's idempotency key;
- it honours ``HTTP_PROXY`` but not ``NO_PROXY``, so proxies are disabled explicitly;
- it speaks plain http unless told otherwise, so real-cloud calls are switched to https;
- it returns success bodies as raw bytes and raises ``ServerException`` for any non-2xx;
- ``DescribeImages`` without ``Status`` returns only Available images, so every lookup passes
  the full status list;
- its signers take fixed keys (``StsTokenCredential``) or refresh RAM-role keys alone, with IMDSv1 and
  no timeout (``EcsRamRoleCredential``), so each client signs with ``_CurrentKeys`` instead: the keys
  ``alibabacloud_credentials`` holds at that moment, STS token included (``providers/credentials.py``).

Aliyun has no API for the custom-image quota (it lives in Quota Center, whose SDK is not a
dependency): ``quotas`` returns nothing and the engine relies on the ``QuotaExceed.Image`` /
``QuotaExceed.Snapshot`` error of CreateImage/CopyImage, classified as ``ErrorKind.QUOTA``.

ECS rules honoured here (docs/emulator-aliyun.md, "Conformance"): names through ``render_name``
(2-128 characters, a letter or Chinese character first, no http(s)://, aliyun or acs: prefix;
snapshot names never start with "auto"), descriptions 2-256 characters; an instance starting or
stopping, a disk already taking a snapshot and an image still being created are "busy"
(CONFLICT), not broken; snapshots taken for an image that cannot be made are deleted (the cloud
keeps them, and keeps an image's snapshots when the image is deleted, so ``delete_image`` deletes
them too); a new snapshot missing from DescribeSnapshots is pending for a grace period.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.signers.signer import Signer
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

from imagebak.ownership import TAG_KEY
from imagebak.providers import ProviderSettings
from imagebak.providers.base import (
    CopySpec,
    DiskInfo,
    ErrorKind,
    ImageSpec,
    ImageState,
    ImageStatus,
    InstanceInfo,
    Provider,
    ProviderError,
    ProviderLimits,
    Quota,
    Submissions,
    adoptable,
)
from imagebak.providers.credentials import Credentials
from imagebak.providers.names import TextRule
from imagebak.providers.retry import call_with_retry, classified

VENDOR = "aliyun"
log = logging.getLogger(__name__)
PRODUCT = "Ecs"
PAGE_SIZE = 100  # the largest page DescribeImages/DescribeDisks/DescribeSnapshots accept
ALL_IMAGE_STATUSES = "Creating,Waiting,Available,UnAvailable,CreateFailed,Deprecated"
IMAGE_STATES = {
    "Creating": ImageState.PENDING,
    "Waiting": ImageState.PENDING,
    "Available": ImageState.AVAILABLE,
    "Deprecated": ImageState.AVAILABLE,  # still usable to restore from
    "CreateFailed": ImageState.FAILED,
    "UnAvailable": ImageState.FAILED,
}
# Local (instance-store) disk categories: ephemeral, ephemeral_ssd, local_ssd_pro, local_hdd_pro.
# Anything else (cloud, cloud_efficiency, cloud_ssd, cloud_essd, cloud_auto, ...) is a cloud disk.
LOCAL_CATEGORY_PREFIXES = ("ephemeral", "local")
TRANSIENT_CODES = frozenset({"InternalError", "UnknownError", "ServiceUnavailable"})
AUTH_CODE_PREFIXES = (
    "InvalidAccessKeyId",
    "InvalidAccessKeySecret",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingSignature",
    "InvalidSecurityToken",
    "Forbidden",
    "NoPermission",
)
NOT_FOUND_PREFIXES = ("InvalidImageId", "InvalidInstanceId", "InvalidSnapshotId", "InvalidDiskId")
# "Busy, try later": a copy or creation in progress, an instance starting/stopping (Terraform alicloud_image
# retries CreateImage on IncorrectInstanceStatus), a disk already taking a snapshot.
CONFLICT_CODES = frozenset(
    {
        "OperationDenied.ImageCopying",
        "IncorrectInstanceStatus",
        "IncorrectDiskStatus.CreatingSnapshot",
        "ImageIsCreating",
    }
)
_LETTER = re.compile(r"[^\W\d_]")  # a letter of any script: Latin or Chinese
_NAME_CHAR = re.compile(r"[\w:.\-]")
_WEB_PREFIXES = ("http://", "https://")
# ECS API reference CreateImage.ImageName / CopyImage.DestinationImageName (InvalidImageName.Malformed).
NAME_RULE = TextRule(
    "image name", 2, 128, _NAME_CHAR, start=_LETTER, forbidden_prefixes=(*_WEB_PREFIXES, "aliyun", "acs:")
)
# CreateSnapshot.SnapshotName: the same, and never "auto" first (automatic snapshots' names).
SNAPSHOT_NAME_RULE = TextRule(
    "snapshot name", 2, 128, _NAME_CHAR, start=_LETTER,
    forbidden_prefixes=(*_WEB_PREFIXES, "aliyun", "acs:", "auto"), lead="snap-",
)  # fmt: skip
# Description / DestinationDescription: 2-256 characters, not http(s):// first (InvalidDescription.Malformed).
DESCRIPTION_RULE = TextRule("description", 2, 256, re.compile(r"."), forbidden_prefixes=_WEB_PREFIXES, lead="- ")


def render_name(text: str) -> str:
    """Any requested name as an ECS image name (a trailing timestamp is never cut)."""
    return NAME_RULE.render(text)


def name_problems(name: str) -> list[str]:
    """Why ECS would refuse ``name`` as an image name (empty if it would not)."""
    return NAME_RULE.problems(name)


def _description(text: str) -> str | None:
    return DESCRIPTION_RULE.render(text) if text else None


_DEVICE = re.compile(r"^/dev/x?(vd[a-z]+)$")
_SIGNED_QUERY = re.compile(r"(Signature|AccessKeyId|SecurityToken)=[^&\s)'\"]*")


class _CurrentKeys(Signer):
    """Signs each request with the keys of the moment: a refreshing provider (STS via OIDC or a RAM role,
    the ECS RAM role) renews them, and temporary keys carry their token (RPC: ``SecurityToken``)."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def sign(self, region_id: str, request: RpcRequest) -> tuple[Any, Any]:
        creds = self._credentials
        key_id, secret, token = creds.access_key_id, creds.secret, creds.token
        if creds.live is not None:
            now = creds.live.get_credentials()
            key_id, secret, token = now.get_access_key_id(), now.get_access_key_secret(), now.get_security_token()
        if token:
            if request.get_style() == "RPC":
                request.add_query_param("SecurityToken", token)
            else:
                request.add_header("x-acs-security-token", token)
        return request.get_signed_header(region_id, key_id, secret), request.get_url(region_id, key_id, secret)


def build(settings: ProviderSettings) -> AliyunProvider:
    return AliyunProvider(settings)


def classify(action: str, exc: BaseException) -> ProviderError:
    """Turn an SDK exception into a ProviderError whose kind drives retries and reporting."""
    if isinstance(exc, ServerException):
        code = exc.get_error_code() or "Unknown"
        status = exc.get_http_status()
        return ProviderError(
            VENDOR,
            action,
            _server_kind(code, status),
            code,
            exc.get_error_msg() or "",
            exc.get_request_id(),
            status,
        )
    if isinstance(exc, ClientException):
        # SDK.HttpError covers refused/reset connections and connect/read timeouts; other client
        # errors (unknown region, no endpoint, bad parameters) will not heal by retrying.
        kind = ErrorKind.TIMEOUT if exc.get_error_code() == "SDK.HttpError" else ErrorKind.INVALID
        return ProviderError(VENDOR, action, kind, exc.get_error_code(), _scrub(exc.get_error_msg() or ""))
    return ProviderError(VENDOR, action, ErrorKind.UNKNOWN, type(exc).__name__, _scrub(str(exc)))


def _server_kind(code: str, status: int | None) -> ErrorKind:
    if code.startswith("Throttling"):
        return ErrorKind.THROTTLED
    if code in TRANSIENT_CODES or (status is not None and status >= 500):
        return ErrorKind.UNAVAILABLE
    if code.startswith(AUTH_CODE_PREFIXES):
        return ErrorKind.AUTH
    if code.startswith("QuotaExceed"):
        return ErrorKind.QUOTA
    if code in CONFLICT_CODES:
        return ErrorKind.CONFLICT
    if code.endswith(".NotFound") and code.startswith(NOT_FOUND_PREFIXES):
        return ErrorKind.NOT_FOUND
    if status is not None and 400 <= status < 500:
        return ErrorKind.INVALID
    return ErrorKind.UNKNOWN


def _scrub(message: str) -> str:
    """Transport errors quote the signed URL; keep the key id and signature out of logs."""
    return _SIGNED_QUERY.sub(r"\1=***", message)


def _short_device(device: str) -> str:
    """``/dev/xvda`` -> ``vda`` (Aliyun reports xvd* names for what the guest sees as vd*)."""
    match = _DEVICE.match(device)
    return match.group(1) if match else device.removeprefix("/dev/")


def _percent(progress: Any) -> int | None:
    try:
        return int(str(progress).rstrip("%"))
    except ValueError:
        return None


def _tag_params(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _derived_token(key: str, purpose: str) -> str:
    """A stable ClientToken (<= 64 ASCII chars) for a secondary call made under one idempotency key."""
    return f"{purpose}-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def _disk_info(disk: Mapping[str, Any]) -> DiskInfo:
    category = str(disk.get("Category", ""))
    return DiskInfo(
        device=_short_device(str(disk.get("Device", ""))),
        disk_id=str(disk["DiskId"]),
        category="local" if category.startswith(LOCAL_CATEGORY_PREFIXES) else "cloud",
        size_gb=int(disk.get("Size", 0)),
        is_system=disk.get("Type") == "system",
        encrypted=bool(disk.get("Encrypted", False)),
    )


def _image_status(image: Mapping[str, Any]) -> ImageStatus:
    status = str(image.get("Status", ""))
    created = str(image.get("CreationTime") or "")
    return ImageStatus(
        ref=image["ImageId"],
        state=IMAGE_STATES.get(status, ImageState.PENDING),
        image_id=image["ImageId"],
        progress=_percent(image.get("Progress", "")),
        size_gb=image.get("Size"),
        detail=status,
        name=image.get("ImageName"),
        created_at=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
    )


def _final(error: ProviderError) -> bool:
    """A refusal after which this submission is never sent again (so what it made is useless)."""
    return not error.transient and error.kind is not ErrorKind.CONFLICT


class AliyunProvider(Provider):
    """One Aliyun account; one SDK client per region (the endpoint is bound to the client's region)."""

    vendor = VENDOR
    # Aliyun runs five copies per region at once and queues the rest: no limit to respect.
    limits = ProviderLimits(max_images_per_copy_call=1, default_concurrency=4, instances_per_describe=PAGE_SIZE)

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        snapshot_timeout_seconds: float = 3600.0,
        snapshot_poll_seconds: tuple[float, float] = (2.0, 60.0),
    ) -> None:
        """``sleep`` paces retries and snapshot polling; tests pass the emulator clock's ``advance``."""
        self._settings = settings
        self._sleep = sleep
        self.retry_policy = settings.retry
        self._snapshot_timeout = snapshot_timeout_seconds
        self._poll_first, self._poll_max = snapshot_poll_seconds
        endpoint = urlsplit(settings.endpoint) if settings.endpoint else None
        self._host = endpoint.netloc if endpoint else None
        self._protocol = endpoint.scheme if endpoint else "https"
        self._clients: dict[str, AcsClient] = {}
        self._lock = threading.Lock()
        self.submissions = Submissions(VENDOR)

    # ---- plumbing ----------------------------------------------------------------------------

    def _client(self, region: str) -> AcsClient:
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                creds = self._settings.credentials
                client = AcsClient(
                    creds.access_key_id,
                    creds.secret,
                    region,
                    auto_retry=False,
                    connect_timeout=min(5.0, self._settings.timeout_seconds),
                    timeout=self._settings.timeout_seconds,
                    proxy={"http": None, "https": None},
                    pool_size=16,
                )
                client._signer = _CurrentKeys(creds)  # AcsClient takes no signer as an argument
                if self._host:
                    client.add_endpoint(region, PRODUCT, self._host)
                self._clients[region] = client
            return client

    def pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def _call(self, region: str, request: RpcRequest) -> dict[str, Any]:
        """Send one request with classified, bounded retries; return the parsed body."""
        return self._send(region, request, retry=True)

    def _send(self, region: str, request: RpcRequest, *, retry: bool) -> dict[str, Any]:
        """One request, retried or not (creates and copies: ``actions.adoption`` retries them)."""
        request.set_protocol_type(self._protocol)
        client = self._client(region)
        action = request.get_action_name()

        def send() -> Any:
            return client.do_action_with_exception(request)

        def classify_action(exc: BaseException) -> ProviderError:
            return classify(action, exc)

        if retry:
            body = call_with_retry(send, classify=classify_action, policy=self._settings.retry, sleep=self._sleep)
        else:
            body = classified(send, classify_action)
        return json.loads(body)

    def _describe_images(
        self,
        region: str,
        *,
        ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Own images in every status, all pages (at most ``PAGE_SIZE`` ids cost one call)."""
        images: list[dict[str, Any]] = []
        page = 1
        while True:
            request = DescribeImagesRequest()
            request.set_ImageOwnerAlias("self")
            request.set_Status(ALL_IMAGE_STATUSES)
            if ids:
                request.set_ImageId(",".join(ids))
            if tags:
                request.set_Tags(_tag_params(tags))
            if name:
                request.set_ImageName(name)
            request.set_PageSize(PAGE_SIZE)
            request.set_PageNumber(page)
            body = self._call(region, request)
            batch = body.get("Images", {}).get("Image", [])
            images.extend(batch)
            if not batch or page * PAGE_SIZE >= int(body.get("TotalCount", 0)):
                return images
            page += 1

    # ---- Provider ----------------------------------------------------------------------------

    def get_instance(self, region: str, instance_id: str) -> InstanceInfo | None:
        return self.get_instances(region, [instance_id])[instance_id]

    def get_instances(self, region: str, instance_ids: Sequence[str]) -> Mapping[str, InstanceInfo | None]:
        """DescribeInstances takes up to 100 ids per call; their disks come from ``_disks_of``."""
        wanted = list(dict.fromkeys(instance_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), PAGE_SIZE):
            request = DescribeInstancesRequest()
            request.set_InstanceIds(json.dumps(wanted[start : start + PAGE_SIZE]))
            request.set_PageSize(PAGE_SIZE)
            for item in self._call(region, request).get("Instances", {}).get("Instance", []):
                found[str(item.get("InstanceId"))] = item
        disks = self._disks_of(region, [i for i in wanted if i in found])
        return {
            instance_id: InstanceInfo(
                instance_id=instance_id,
                region=region,
                name=str(found[instance_id].get("InstanceName", "")),
                status=str(found[instance_id].get("Status", "")),
                disks=tuple(_disk_info(d) for d in disks.get(instance_id, [])),
            )
            if instance_id in found
            else None
            for instance_id in wanted
        }

    def _disks_of(self, region: str, instance_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Each instance's disks. DescribeDisks takes one InstanceId per call, so for many instances the
        region's disk list is read instead when it takes fewer pages than there are instances."""
        listed = self._region_disks(region, most_pages=len(instance_ids)) if len(instance_ids) > 2 else None
        if listed is None:
            return {instance_id: self._instance_disks(region, instance_id) for instance_id in instance_ids}
        wanted = set(instance_ids)
        by_instance: dict[str, list[dict[str, Any]]] = {}
        for disk in listed:
            if disk.get("InstanceId") in wanted:
                by_instance.setdefault(str(disk["InstanceId"]), []).append(disk)
        return by_instance

    def _region_disks(self, region: str, most_pages: int) -> list[dict[str, Any]] | None:
        """Every disk of the region, or None once the first page shows it takes more than ``most_pages``."""
        first = self._call(region, self._disks_request(None, 1))
        pages = -(-int(first.get("TotalCount") or 0) // PAGE_SIZE)
        if pages > most_pages:
            return None
        listed = list(first.get("Disks", {}).get("Disk", []))
        for number in range(2, pages + 1):
            listed += self._call(region, self._disks_request(None, number)).get("Disks", {}).get("Disk", [])
        return listed

    def _instance_disks(self, region: str, instance_id: str) -> list[dict[str, Any]]:
        """One instance's disks (an instance has at most 17: one page)."""
        return list(self._call(region, self._disks_request(instance_id, 1)).get("Disks", {}).get("Disk", []))

    @staticmethod
    def _disks_request(instance_id: str | None, number: int) -> DescribeDisksRequest:
        request = DescribeDisksRequest()
        if instance_id:
            request.set_InstanceId(instance_id)
        request.set_PageSize(PAGE_SIZE)
        request.set_PageNumber(number)
        return request

    def quotas(self, region: str) -> Sequence[Quota]:
        """Nothing: see the module docstring (QuotaExceed.* at create/copy time is the signal)."""
        return []

    def create_image(self, spec: ImageSpec) -> str:
        """Every cloud disk: CreateImage by instance. A subset: snapshots, then DiskDeviceMapping; when the
        image cannot be made from them for good, the snapshots taken for it are deleted (and logged)."""
        request = CreateImageRequest()
        request.set_ImageName(render_name(spec.name))
        description = _description(spec.description)
        if description:
            request.set_Description(description)
        if spec.tags:
            request.set_Tags(_tag_params(spec.tags))
        request.set_ClientToken(spec.idempotency_key)
        if spec.all_disks:
            request.set_InstanceId(spec.instance.instance_id)
            return self._submit(spec.region, request, spec.idempotency_key)
        snapshots: dict[str, str] = {}
        try:
            self._snapshot_disks(spec, snapshots)
            request.set_DiskDeviceMappings(
                [{"SnapshotId": sid, "Device": f"/dev/x{device}"} for device, sid in snapshots.items()]
            )
            return self._submit(spec.region, request, spec.idempotency_key)
        except ProviderError as error:
            if _final(error) and snapshots:
                self._drop_snapshots(spec.region, list(snapshots.values()), f"no image from them: {error.describe()}")
            raise

    def _submit(self, region: str, request: RpcRequest, key: str) -> str:
        """A create or copy, sent once; what may have reached the cloud is remembered (eventual consistency).

        Image names are unique per region (InvalidImageName.Duplicated): refused because another image
        already has the name (a second run within the same minute), the call is sent once more under
        the name plus a short suffix from the key. A refused call made nothing, and the renamed one
        has its own ClientToken; the name the image got is in ``ImageStatus.name``.
        """
        try:
            try:
                image_id = str(self._send(region, request, retry=False)["ImageId"])
            except ProviderError as error:
                if error.code != "InvalidImageName.Duplicated":
                    raise
                self._rename(request, key)
                image_id = str(self._send(region, request, retry=False)["ImageId"])
        except ProviderError as error:
            self.submissions.uncertain(key, error)
            raise
        self.submissions.record(image_id)
        return image_id

    @staticmethod
    def _rename(request: RpcRequest, key: str) -> None:
        params = request.get_query_params()
        param = "DestinationImageName" if "DestinationImageName" in params else "ImageName"
        name = str(params[param])
        renamed = NAME_RULE.render(name, suffix="-" + hashlib.sha256(key.encode()).hexdigest()[:6])
        log.info("%s: image name %s is taken; using %s", VENDOR, name, renamed)
        request.add_query_param(param, renamed)
        request.set_ClientToken(_derived_token(key, "renamed"))

    def _snapshot_disks(self, spec: ImageSpec, snapshots: dict[str, str]) -> None:
        """Snapshot each included cloud disk (idempotently, into ``snapshots``) and wait until all are done."""
        for disk in spec.instance.disks:
            if disk.device not in spec.devices or disk.category != "cloud":
                continue
            request = CreateSnapshotRequest()
            request.set_DiskId(disk.disk_id)
            request.set_SnapshotName(SNAPSHOT_NAME_RULE.render(spec.name, suffix=f"-{disk.device}"))
            if spec.tags:
                request.set_Tags(_tag_params(spec.tags))
            request.set_ClientToken(_derived_token(spec.idempotency_key, f"snap-{disk.device}"))
            snapshots[disk.device] = snapshot_id = str(self._call(spec.region, request)["SnapshotId"])
            self.submissions.record(snapshot_id)
        self._wait_snapshots(spec.region, list(snapshots.values()))

    def _wait_snapshots(self, region: str, snapshot_ids: list[str]) -> None:
        """Poll DescribeSnapshots with growing intervals, bounded by ``snapshot_timeout_seconds``. A snapshot
        not listed yet is pending while it is new (eventual consistency), gone after that."""
        waited, interval = 0.0, self._poll_first
        while True:
            request = DescribeSnapshotsRequest()
            request.set_SnapshotIds(json.dumps(snapshot_ids))
            request.set_PageSize(PAGE_SIZE)
            found = self._call(region, request).get("Snapshots", {}).get("Snapshot", [])
            status = {s["SnapshotId"]: s.get("Status") for s in found}
            for sid in snapshot_ids:
                if sid not in status:
                    status[sid] = "progressing" if self.submissions.recent(sid) else "failed"
            broken = [sid for sid in snapshot_ids if status[sid] == "failed"]
            if broken:
                raise ProviderError(
                    VENDOR, "CreateSnapshot", ErrorKind.UNKNOWN, "SnapshotFailed",
                    f"snapshot(s) {', '.join(broken)} failed or disappeared before the image could be made",
                )  # fmt: skip
            if all(status[sid] == "accomplished" for sid in snapshot_ids):
                return
            if waited >= self._snapshot_timeout:
                raise ProviderError(
                    VENDOR, "DescribeSnapshots", ErrorKind.TIMEOUT, "SnapshotTimeout",
                    f"snapshot(s) {', '.join(snapshot_ids)} not accomplished after {waited:.0f} s",
                )  # fmt: skip
            self._sleep(interval)
            waited += interval
            interval = min(interval * 2, self._poll_max)

    def _drop_snapshots(self, region: str, snapshot_ids: Sequence[str], why: str) -> None:
        """Delete snapshots imagebak took (best effort): the cloud keeps them, and charges for them."""
        for snapshot_id in snapshot_ids:
            request = DeleteSnapshotRequest()
            request.set_SnapshotId(snapshot_id)
            try:
                self._call(region, request)
            except ProviderError as exc:
                if exc.kind is not ErrorKind.NOT_FOUND:
                    log.warning("%s %s: snapshot %s kept (%s): %s", VENDOR, region, snapshot_id, why, exc.describe())
                continue
            log.info("%s %s: deleted snapshot %s (%s)", VENDOR, region, snapshot_id, why)

    def find_images(self, region: str, tags: Mapping[str, str], name: str | None = None) -> Sequence[ImageStatus]:
        return [_image_status(img) for img in self._describe_images(region, tags=tags, name=name)]

    def find_submitted(self, region: str, key: str, name: str, attempted_at: datetime | None = None) -> str | None:
        """Images and copies carry the key tag from their creation on (CreateImage/CopyImage ``Tags``)."""
        found = self.find_images(region, {TAG_KEY: key})
        image_id = adoptable([(s.image_id, s.state is ImageState.FAILED) for s in found])
        if image_id is None:
            self.submissions.nothing_found("DescribeImages", key, attempted_at)
        return image_id

    def image_status(
        self, region: str, refs: Sequence[str], submitted_at: Mapping[str, datetime] | None = None
    ) -> Mapping[str, ImageStatus]:
        """One DescribeImages call per ``PAGE_SIZE`` ids; ids the cloud does not list are pending while
        their submission is recent (eventual consistency), MISSING after that."""
        since = submitted_at or {}
        unique = list(dict.fromkeys(refs))
        result: dict[str, ImageStatus] = {}
        for start in range(0, len(unique), PAGE_SIZE):
            chunk = unique[start : start + PAGE_SIZE]
            found = {img["ImageId"]: img for img in self._describe_images(region, ids=chunk)}
            for ref in chunk:
                result[ref] = (
                    _image_status(found[ref]) if ref in found else self.submissions.unseen(ref, since.get(ref))
                )
        return result

    def copy_images(self, specs: Sequence[CopySpec]) -> Mapping[str, str]:
        """One CopyImage per spec (RegionId = source region); tags travel with the copy."""
        copies: dict[str, str] = {}
        for spec in specs:
            request = CopyImageRequest()
            request.set_ImageId(spec.image_id)
            request.set_DestinationRegionId(spec.dest_region)
            request.set_DestinationImageName(render_name(spec.name))
            description = _description(spec.description)
            if description:
                request.set_DestinationDescription(description)
            if spec.tags:
                request.set_Tags(_tag_params(spec.tags))
            request.set_ClientToken(spec.idempotency_key)
            copies[spec.idempotency_key] = self._submit(spec.source_region, request, spec.idempotency_key)
        return copies

    def delete_image(self, region: str, image_id: str) -> None:
        """Delete one image and then the snapshots it was made of (ECS keeps them); an image already gone
        counts as deleted. A copy still in progress is cancelled (CancelCopyImage) instead: DeleteImage
        refuses it (ImageIsCreating), as it refuses an image still being created (CONFLICT: later)."""
        found = self._describe_images(region, ids=[image_id])
        if not found:
            return
        mappings = found[0].get("DiskDeviceMappings", {}).get("DiskDeviceMapping", [])
        snapshot_ids = [str(m["SnapshotId"]) for m in mappings if m.get("SnapshotId")]
        request = DeleteImageRequest()
        request.set_ImageId(image_id)
        try:
            self._call(region, request)
        except ProviderError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return
            if exc.code != "ImageIsCreating" or not found[0].get("IsCopied"):
                raise
            cancel = CancelCopyImageRequest()
            cancel.set_ImageId(image_id)
            self._call(region, cancel)  # RegionId is the copy's (destination) region
            return
        self._drop_snapshots(region, snapshot_ids, f"image {image_id} deleted")
