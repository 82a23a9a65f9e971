"""JD Cloud VM adapter over the official ``jdcloud_sdk`` (vm + disk services).

SDK quirks handled here, not in the engine:

- the SDK never raises for API errors: ``resp.error`` is turned into a ``ProviderError`` in ``_once``;
- its default logger prints every request's headers (Authorization included) to stdout, so the
  clients always get a logger that prints nothing;
- ``Config`` takes ``host:port`` and a separate scheme, not a URL;
- JD images have no tags and createImage/copyImages take no client token, so ownership and the
  idempotency key travel in the image description as a trailing ``[imagebak key=... tag=...]``
  marker, by which ``find_submitted`` finds what an earlier submission made;
- image names are 2–32 characters of letters, digits, CJK, ``_``, ``-`` and ``.``: ``render_name``
  shortens the policy/instance part and keeps the time, so two runs of a day differ; the name the
  image got is ``ImageStatus.name``;
- snapshot quota lives in the disk service (vm ``describeQuotas`` has no snapshot type);
- only ``ready`` is a documented image status: ``error...``/``...fail...`` are failed, anything
  else is in progress (unknown values are logged), and an image not ready a day after its creation
  is failed;
- ``FAILED_PRECONDITION`` "Conflict with underlay task" / "busy" / "请稍后" is "busy, try later";
- copyImages: an image that cannot be copied (not ready, encrypted) is never sent in a batch; a
  refused call's copies, if JD kept any, are deleted; a copy whose description lost the ownership
  marker gets it back (``tag_image``, modifyImageAttribute).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import requests
from jdcloud_sdk.core.config import Config
from jdcloud_sdk.core.credential import Credential
from jdcloud_sdk.core.jdcloudclient import JDCloudClient
from jdcloud_sdk.core.logger import Logger
from jdcloud_sdk.services.common.models.Filter import Filter
from jdcloud_sdk.services.disk.apis.DescribeQuotaRequest import DescribeQuotaParameters, DescribeQuotaRequest
from jdcloud_sdk.services.disk.client.DiskClient import DiskClient
from jdcloud_sdk.services.vm.apis.CopyImagesRequest import CopyImagesParameters, CopyImagesRequest
from jdcloud_sdk.services.vm.apis.CreateImageRequest import CreateImageParameters, CreateImageRequest
from jdcloud_sdk.services.vm.apis.DeleteImageRequest import DeleteImageParameters, DeleteImageRequest
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
    utcnow,
)
from imagebak.providers.names import TextRule
from imagebak.providers.retry import call_with_retry, classified

T = TypeVar("T")

VENDOR = "jdcloud"
log = logging.getLogger(__name__)
COPY_BATCH = 10  # copyImages: at most 10 source images per call
INSTANCES_PAGE = 100  # describeInstances: pageSize at most 100 (its SDK docstring: [10, 100])
DESCRIBE_BATCH = 100  # describeImages: at most 100 images per page / ids per call
DESCRIPTION_MAX = 256
NAME_MAX = 32

# Image statuses: JD documents only "ready" (the image_status page is not retrievable). Values
# starting with "error" or containing "fail" are failures; these are known to be in progress (the
# emulator's pending/copying, JD task statuses); any other value is logged and counted as in progress,
# until the image is older than STUCK_AFTER.
_IN_PROGRESS = frozenset({"pending", "creating", "copying", "converting", "importing", "running", "queued"})
STUCK_AFTER = timedelta(hours=24)
# FAILED_PRECONDITION messages that mean "busy, try again later" (createImage error table: "Conflict with
# underlay task" 云主机实例正在执行其它任务，请稍后再试; "Disk 'xx' busy in 'xx'").
_BUSY = ("busy", "underlay task", "请稍后")
# createImage / copyImages name (SDK CreateImageParameters.name): 2-32 of letters, digits, CJK, '_', '-', '.'.
NAME_RULE = TextRule("image name", 2, NAME_MAX, re.compile(r"[\w.\-]"))

# JD's common error table (docs.jdcloud.com/cn/common-declaration/api/error-codes): status -> kind.
_STATUS_KINDS: Mapping[str, ErrorKind] = {
    "RATE_LIMIT": ErrorKind.THROTTLED,
    "QUOTA_EXCEEDED": ErrorKind.QUOTA,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "INVALID_ARGUMENT": ErrorKind.INVALID,
    "FAILED_PRECONDITION": ErrorKind.INVALID,
    "OUT_OF_RANGE": ErrorKind.INVALID,
    "UNAUTHENTICATED": ErrorKind.AUTH,
    "HTTP_FORBIDDEN": ErrorKind.AUTH,
    "PERMISSION_DENIED": ErrorKind.AUTH,
    "ABORTED": ErrorKind.CONFLICT,
    "ALREADY_EXISTS": ErrorKind.CONFLICT,
    "INTERNAL": ErrorKind.UNAVAILABLE,
    "UNKNOWN": ErrorKind.UNAVAILABLE,
    "UNAVAILABLE": ErrorKind.UNAVAILABLE,
    "SOURCE_UNAVAILABLE": ErrorKind.UNAVAILABLE,
}

_CODE_KINDS: Mapping[int, ErrorKind] = {
    401: ErrorKind.AUTH,
    403: ErrorKind.AUTH,
    404: ErrorKind.NOT_FOUND,
    409: ErrorKind.CONFLICT,
    429: ErrorKind.THROTTLED,
}

_MARKER_RE = re.compile(r"\[imagebak key=(\S+)((?: \S+=\S*)*)\]\s*$")


class _SilentLogger(Logger):
    """The SDK logs request headers (with the signature) and tracebacks to stdout: drop everything."""

    def __init__(self) -> None:
        super().__init__(0)

    def log(self, level: int, message: object) -> None:
        return None


def build(settings: ProviderSettings) -> Provider:
    return JdcloudProvider(settings)


class JdcloudProvider(Provider):
    vendor = VENDOR
    limits = ProviderLimits(max_images_per_copy_call=COPY_BATCH, instances_per_describe=INSTANCES_PAGE)

    def __init__(self, settings: ProviderSettings) -> None:
        credential = Credential(settings.credentials.access_key_id, settings.credentials.secret)
        logger = _SilentLogger()
        self._retry = self.retry_policy = settings.retry
        self._vm = VmClient(credential, _config(settings, "vm.jdcloud-api.com"), logger=logger)
        self._disk = DiskClient(credential, _config(settings, "disk.jdcloud-api.com"), logger=logger)
        self.submissions = Submissions(VENDOR)

    # -- Provider interface ------------------------------------------------------------------

    def get_instance(self, region: str, instance_id: str) -> InstanceInfo | None:
        request = DescribeInstanceRequest(DescribeInstanceParameters(region, instance_id))
        try:
            result = self._call(self._vm, request, "describeInstance")
        except ProviderError as err:
            if err.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        return _instance_info(region, result["instance"])

    def get_instances(self, region: str, instance_ids: Sequence[str]) -> Mapping[str, InstanceInfo | None]:
        """describeInstances with up to ``INSTANCES_PAGE`` ids in its ``instanceId`` filter per call
        (the listing carries the same disks as describeInstance)."""
        wanted = list(dict.fromkeys(instance_ids))
        found: dict[str, InstanceInfo] = {}
        for start in range(0, len(wanted), INSTANCES_PAGE):
            params = DescribeInstancesParameters(region)
            params.setFilters([Filter("instanceId", wanted[start : start + INSTANCES_PAGE])])
            params.setPageSize(INSTANCES_PAGE)
            result = self._call(self._vm, DescribeInstancesRequest(params), "describeInstances")
            for instance in result.get("instances") or []:
                found[instance["instanceId"]] = _instance_info(region, instance)
        return {instance_id: found.get(instance_id) for instance_id in wanted}

    def quotas(self, region: str) -> Sequence[Quota]:
        """Image quota from vm describeQuotas; snapshot quota from the disk service (JD ties both)."""
        params = DescribeQuotasParameters(region)
        params.setFilters([Filter("resourceTypes", ["image"])])
        result = self._call(self._vm, DescribeQuotasRequest(params), "describeQuotas")
        quotas = [
            Quota("image", int(q.get("used") or 0), int(q.get("limit") or 0))
            for q in result.get("quotas") or []
            if q.get("resourceType") == "image"
        ]
        snap = self._call(
            self._disk, DescribeQuotaRequest(DescribeQuotaParameters(region, "snapshot")), "describeQuota"
        )
        quota = snap.get("quota") or {}
        quotas.append(Quota("snapshot", int(quota.get("used") or 0), int(quota.get("limit") or 0)))
        return quotas

    def create_image(self, spec: ImageSpec) -> str:
        """createImage once, the key in the description marker."""
        params = CreateImageParameters(spec.region, spec.instance.instance_id, render_name(spec.name))
        params.setDescription(with_marker("createImage", spec.description, spec.idempotency_key, spec.tags))
        excluded = [
            InstanceDiskAttachmentSpec(deviceName=disk.device, noDevice=True)
            for disk in spec.instance.disks
            if disk.category == "cloud" and not disk.is_system and disk.device not in spec.devices
        ]
        if excluded:
            params.setDataDisks(excluded)
        return str(self._submit(self._vm, CreateImageRequest(params), "createImage", spec.idempotency_key)["imageId"])

    def find_submitted(self, region: str, key: str, name: str, attempted_at: datetime | None = None) -> str | None:
        """The image whose description marker carries the key (looked up by name, so a region is not listed)."""

        def lookup() -> str | None:
            found = (
                _status(i["imageId"], i, self.submissions.clock()) for i in self._images_with_key(region, key, name)
            )
            image_id = adoptable([(s.ref, s.state is ImageState.FAILED) for s in found])
            if image_id is None:
                self.submissions.nothing_found("describeImages", key, attempted_at)
            return image_id

        return self._retrying("describeImages", lookup)

    def find_images(self, region: str, tags: Mapping[str, str], name: str | None = None) -> Sequence[ImageStatus]:
        """Private images whose description marker carries every given tag (and the name, if given)."""
        wanted_name = render_name(name) if name else None

        def matching() -> list[ImageStatus]:
            found = []
            for image in self._private_images(region, wanted_name):  # imageName matches substrings
                marker = parse_marker(image.get("desc") or "")
                if (
                    marker
                    and wanted_name in (None, image.get("name"))
                    and all(marker[1].get(k) == v for k, v in tags.items())
                ):
                    found.append(_status(image["imageId"], image, self.submissions.clock()))
            return found

        return self._retrying("describeImages", matching)

    def image_status(
        self, region: str, refs: Sequence[str], submitted_at: Mapping[str, datetime] | None = None
    ) -> Mapping[str, ImageStatus]:
        """describeImages with up to 100 ids per call; ids the region does not list are pending while
        their submission is recent (eventual consistency), MISSING after that."""
        since = submitted_at or {}
        statuses: dict[str, ImageStatus] = {}
        unique = list(dict.fromkeys(refs))
        for start in range(0, len(unique), DESCRIBE_BATCH):
            batch = unique[start : start + DESCRIBE_BATCH]
            by_id = {image["imageId"]: image for image in self._describe(region, batch)}
            for ref in batch:
                image = by_id.get(ref)
                statuses[ref] = (
                    _status(ref, image, self.submissions.clock())
                    if image
                    else self.submissions.unseen(ref, since.get(ref))
                )
        return statuses

    def copy_images(self, specs: Sequence[CopySpec]) -> Mapping[str, str]:
        """copyImages, ≤10 sources per call; one call names and describes all its copies alike.

        Sources that cannot be copied (not ready, encrypted: the copyImages interface notes) are
        never sent; the rest are grouped by regions, name, description and tags. A one-image batch
        carries the spec's own key, so ``find_submitted`` finds its copy; a bigger batch carries a key
        derived from its members' keys. Copies a call made are returned even when a later call is
        refused (they are never left untracked); a refused call's own copies, should JD have kept any
        (its documentation does not say a call is all or nothing), are deleted.
        """
        groups: dict[tuple[Any, ...], list[CopySpec]] = {}
        copyable, refusal = self._copyable(specs)
        for spec in copyable:
            groups.setdefault(_copy_group(spec), []).append(spec)
        copies: dict[str, str] = {}
        for members in groups.values():
            for start in range(0, len(members), COPY_BATCH):
                try:
                    copies.update(self._copy_batch(members[start : start + COPY_BATCH]))
                except ProviderError as error:
                    refusal = refusal or error
        if refusal is not None and not copies:
            raise refusal
        return copies

    def _copyable(self, specs: Sequence[CopySpec]) -> tuple[list[CopySpec], ProviderError | None]:
        """The specs whose source is ready and unencrypted, and the refusal for the first that is not."""
        if not specs:
            return [], None
        found = {
            image["imageId"]: image for image in self._describe(specs[0].source_region, [s.image_id for s in specs])
        }
        copyable: list[CopySpec] = []
        refusal: ProviderError | None = None
        for spec in specs:
            problem = _copy_problem(found.get(spec.image_id))
            if problem is None:
                copyable.append(spec)
            elif refusal is None:
                kind = ErrorKind.CONFLICT if problem == "not ready" else ErrorKind.INVALID
                refusal = ProviderError(
                    VENDOR, "copyImages", kind, "FAILED_PRECONDITION", f"image {spec.image_id} is {problem}: not copied"
                )
        return copyable, refusal

    def tag_image(self, region: str, image_id: str, tags: Mapping[str, str]) -> None:
        """JD images have no tags: make sure the description carries the ownership marker (a copy's may
        have been replaced by JD's own), and put it back with modifyImageAttribute if not."""
        key = tags.get(TAG_KEY)
        (image,) = self._describe(region, [image_id]) or [{}]
        description = str(image.get("desc") or "")
        marker = parse_marker(description)
        if marker is not None and (key is None or marker[0] == key):
            return
        base = _MARKER_RE.sub("", description).rstrip()
        params = ModifyImageAttributeParameters(region, image_id)
        params.setDescription(with_marker("modifyImageAttribute", base, key or "", tags))
        self._call(self._vm, ModifyImageAttributeRequest(params), "modifyImageAttribute")

    def delete_image(self, region: str, image_id: str) -> None:
        params = DeleteImageParameters(region, image_id)
        params.setDeleteSnapshot(True)
        self._call(self._vm, DeleteImageRequest(params), "deleteImage")

    # -- helpers -----------------------------------------------------------------------------

    def _copy_batch(self, batch: list[CopySpec]) -> dict[str, str]:
        first = batch[0]
        sources = [spec.image_id for spec in batch]
        key = first.idempotency_key if len(batch) == 1 else _batch_key(batch)
        params = CopyImagesParameters(first.source_region, sources, first.dest_region)
        name = render_name(first.name)
        params.setName(name)
        params.setDescription(with_marker("copyImages", first.description, key, first.tags))
        try:
            result = self._submit(self._vm, CopyImagesRequest(params), "copyImages", key)
        except ProviderError as error:
            if not error.transient:
                self._drop_copies(first.dest_region, key, name, error)
            raise
        copies = {c["sourceImageId"]: c["destinationImageId"] for c in result.get("copyImages") or []}
        self.submissions.record(*copies.values())
        return {spec.idempotency_key: copies[spec.image_id] for spec in batch if spec.image_id in copies}

    def _drop_copies(self, region: str, key: str, name: str, error: ProviderError) -> None:
        """A refused copyImages call: delete any copy it left (found by its marker key), best effort."""
        try:
            left = [image["imageId"] for image in self._images_with_key(region, key, name)]
        except ProviderError as exc:
            log.warning("%s %s: could not look for copies of a refused copyImages: %s", VENDOR, region, exc.describe())
            return
        for image_id in left:
            try:
                self.delete_image(region, image_id)
                log.warning("%s %s: deleted copy %s left by a refused copyImages (%s)", VENDOR, region, image_id,
                            error.describe())  # fmt: skip
            except ProviderError as exc:
                log.warning("%s %s: copy %s left by a refused copyImages: %s", VENDOR, region, image_id, exc.describe())

    def _describe(self, region: str, ids: Sequence[str]) -> list[dict[str, Any]]:
        params = DescribeImagesParameters(region)
        params.setIds(list(ids))
        params.setPageSize(DESCRIBE_BATCH)
        return list(self._call(self._vm, DescribeImagesRequest(params), "describeImages").get("images") or [])

    def _images_with_key(self, region: str, key: str, name: str) -> Iterator[dict[str, Any]]:
        """Images carrying the key; filtered by name on the server, so a full region is not listed."""
        for image in self._private_images(region, render_name(name)):
            marker = parse_marker(image.get("desc") or "")
            if marker and marker[0] == key:
                yield image

    def _private_images(self, region: str, name: str | None = None) -> Iterator[dict[str, Any]]:
        """Every private image of the region (one page of 100 per call), unretried: callers retry."""
        page = 1
        while True:
            params = DescribeImagesParameters(region)
            params.setImageSource("private")
            params.setPageNumber(page)
            params.setPageSize(DESCRIBE_BATCH)
            if name:
                params.setImageName(name)
            result = self._once(self._vm, DescribeImagesRequest(params), "describeImages")
            images = result.get("images") or []
            yield from images
            if not images or page * DESCRIBE_BATCH >= int(result.get("totalCount") or 0):
                return
            page += 1

    def _call(self, client: JDCloudClient, request: Any, action: str) -> dict[str, Any]:
        return self._retrying(action, lambda: self._once(client, request, action))

    def _retrying(self, action: str, fn: Callable[[], T]) -> T:
        return call_with_retry(fn, classify=lambda exc: classify_exception(action, exc), policy=self._retry)

    def _submit(self, client: JDCloudClient, request: Any, action: str, key: str) -> dict[str, Any]:
        """One mutating call, classified and not retried (``actions.adoption`` retries it); a call that may
        have reached the cloud is remembered (eventual consistency), an accepted image too."""
        try:
            result = classified(
                lambda: self._once(client, request, action), lambda exc: classify_exception(action, exc)
            )
        except ProviderError as error:
            self.submissions.uncertain(key, error)
            raise
        if result.get("imageId"):
            self.submissions.record(str(result["imageId"]))
        return result

    @staticmethod
    def _once(client: JDCloudClient, request: Any, action: str) -> dict[str, Any]:
        """One SDK call; the only place ``resp.error`` becomes an exception."""
        resp = client.send(request)
        if resp.error is not None:
            raise api_error(action, resp.error, resp.request_id)
        return resp.result or {}


def _config(settings: ProviderSettings, default_host: str) -> Config:
    if not settings.endpoint:
        return Config(default_host, scheme="https", timeout=settings.timeout_seconds)
    url = urlsplit(settings.endpoint if "://" in settings.endpoint else f"http://{settings.endpoint}")
    return Config(url.netloc, scheme=url.scheme, timeout=settings.timeout_seconds)


def api_error(action: str, error: Any, request_id: str | None) -> ProviderError:
    """Classify a JD error body: status string first, HTTP code as the fallback; a precondition that
    only says "busy, try later" is a conflict."""
    status = str(error.status or "")
    code = error.code if isinstance(error.code, int) else None
    message = str(error.message or "")
    kind = _STATUS_KINDS.get(status) or _CODE_KINDS.get(code or 0)
    if status == "FAILED_PRECONDITION" and any(word in message.lower() for word in _BUSY):
        kind = ErrorKind.CONFLICT
    if kind is None:
        kind = ErrorKind.UNAVAILABLE if code and code >= 500 else ErrorKind.UNKNOWN
    return ProviderError(VENDOR, action, kind, status or str(code), message, request_id or None, code)


def classify_exception(action: str, exc: BaseException) -> ProviderError:
    """Transport failures the SDK lets through raw."""
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return ProviderError(VENDOR, action, ErrorKind.TIMEOUT, type(exc).__name__, str(exc))
    if isinstance(exc, json.JSONDecodeError):  # a gateway's HTML error page
        return ProviderError(VENDOR, action, ErrorKind.UNAVAILABLE, "NonJsonResponse", str(exc))
    return ProviderError(VENDOR, action, ErrorKind.UNKNOWN, type(exc).__name__, str(exc))


def render_name(text: str) -> str:
    """Any requested name as a JD image name (2-32 characters): the policy/instance part is shortened
    (with a short hash of what was cut), the trailing timestamp never."""
    return NAME_RULE.render(text)


def name_problems(name: str) -> list[str]:
    """Why JD would refuse ``name`` as an image name (empty if it would not)."""
    return NAME_RULE.problems(name)


def with_marker(action: str, description: str, key: str, tags: Mapping[str, str]) -> str:
    """The description with the ownership marker appended, trimmed to JD's 256 characters."""
    parts = [f"key={_escape(key)}", *(f"{_escape(k)}={_escape(v)}" for k, v in tags.items())]
    marker = "[imagebak " + " ".join(parts) + "]"
    room = DESCRIPTION_MAX - len(marker) - 1
    if room < 0:
        raise ProviderError(
            VENDOR,
            action,
            ErrorKind.INVALID,
            "MarkerTooLong",
            f"ownership tags need {len(marker)} characters; JD descriptions hold {DESCRIPTION_MAX}",
        )
    text = description[:room].rstrip()
    return f"{text} {marker}" if text else marker


def _escape(text: str) -> str:
    """Escape only what delimits the marker, so CJK policy names cost one character, not nine."""
    return re.sub(r"[%\s\]=]", lambda m: quote(m.group(0), safe=""), text)


def parse_marker(description: str) -> tuple[str, dict[str, str]] | None:
    """(idempotency key, tags) from a description written by ``with_marker``; None if foreign."""
    match = _MARKER_RE.search(description)
    if not match:
        return None
    pairs = (token.partition("=") for token in match.group(2).split())
    return unquote(match.group(1)), {unquote(key): unquote(value) for key, _, value in pairs}


def _batch_key(batch: Sequence[CopySpec]) -> str:
    digest = hashlib.sha256("\n".join(spec.idempotency_key for spec in batch).encode()).hexdigest()
    return f"batch-{digest[:24]}"


def _copy_group(spec: CopySpec) -> tuple[Any, ...]:
    """Specs that can share one copyImages call: same regions, and the same name/description/tags."""
    return (
        spec.source_region,
        spec.dest_region,
        spec.name,
        spec.description,
        tuple(sorted(spec.tags.items())),
    )


def _instance_info(region: str, instance: Mapping[str, Any]) -> InstanceInfo:
    attachments = [(instance.get("systemDisk"), True)]
    attachments += [(disk, False) for disk in instance.get("dataDisks") or []]
    return InstanceInfo(
        instance_id=instance["instanceId"],
        region=region,
        name=instance.get("instanceName") or "",
        status=instance.get("status") or "",
        disks=tuple(_disk_info(att, is_system) for att, is_system in attachments if att),
    )


def _disk_info(attachment: Mapping[str, Any], is_system: bool) -> DiskInfo:
    device = str(attachment.get("deviceName") or "").removeprefix("/dev/")
    if attachment.get("diskCategory") == "local":
        local = attachment.get("localDisk") or {}
        return DiskInfo(device, "", "local", int(local.get("diskSizeGB") or 0), is_system)
    cloud = attachment.get("cloudDisk") or {}
    return DiskInfo(
        device,
        cloud.get("diskId") or "",
        "cloud",
        int(cloud.get("diskSizeGB") or 0),
        is_system,
        bool(cloud.get("encrypted")),
    )


def _copy_problem(image: Mapping[str, Any] | None) -> str | None:
    """Why copyImages would refuse this source (its notes: only ready images; "不支持复制带有加密快照的镜像")."""
    if image is None:
        return "not found"
    if image.get("status") != "ready":
        return "not ready"
    disks = [image.get("systemDisk"), *(image.get("dataDisks") or [])]
    if any(((d or {}).get("cloudDisk") or {}).get("encrypted") for d in disks):
        return "encrypted"
    return None


def _created(image: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(image.get("createTime") or "").replace("Z", "+00:00"))
    except ValueError:
        return None


def _state(status: str, created: datetime | None, image_id: str, now: datetime) -> tuple[ImageState, str]:
    lowered = status.lower()
    if lowered == "ready":
        return ImageState.AVAILABLE, status
    if lowered.startswith("error") or "fail" in lowered:
        return ImageState.FAILED, status
    if lowered not in _IN_PROGRESS:
        log.warning("%s: image %s has the undocumented status %r; taken as in progress", VENDOR, image_id, status)
    if created is not None and created.tzinfo is not None and now - created > STUCK_AFTER:
        return ImageState.FAILED, f"{status}: not ready {STUCK_AFTER.total_seconds() / 3600:.0f} h after its creation"
    return ImageState.PENDING, status


def _status(ref: str, image: Mapping[str, Any], now: datetime | None = None) -> ImageStatus:
    """``now`` (the adapter's clock) bounds how long an image may stay not ready (``STUCK_AFTER``)."""
    created = _created(image)
    state, detail = _state(str(image.get("status") or ""), created, str(image.get("imageId") or ref), now or utcnow())
    disks = [image.get("systemDisk"), *(image.get("dataDisks") or [])]
    size = sum(int(((d or {}).get("cloudDisk") or {}).get("diskSizeGB") or 0) for d in disks)
    progress = str(image.get("progress") or "")
    return ImageStatus(
        ref=ref,
        state=state,
        image_id=image.get("imageId") or ref,
        progress=100 if state is ImageState.AVAILABLE else (int(progress) if progress.isdigit() else None),
        size_gb=size or None,
        detail=detail,
        name=image.get("name"),
        created_at=created,
    )
