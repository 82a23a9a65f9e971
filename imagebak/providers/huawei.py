"""Huawei Cloud adapter: IMS for images, jobs, tags and quota; ECS and EVS for an instance's disks.

Huawei carries no region on the wire, only a project id, so every client is built with the
region's project id from the account's ``projects:``. That also keeps the SDK from ever asking
IAM for one. Credentials found by the SDK's own chain (``providers/credentials.py``) are its
credentials object, copied per client with that project id: a temporary key from the ECS agency,
OIDC or federation keeps renewing itself (and sends its ``X-Security-Token``).

Refs returned by ``create_image``/``copy_images``: ``job:<job_id>@<region>`` — an IMS job is
owned by the project (and regional endpoint) that submitted it, which for a cross-region copy is
the *source* region, so the ref says where to ask — or a plain image id when an earlier
submission was adopted instead of re-submitted. The images of the jobs a run submitted are followed
in one ListImages of the region: each wears its submission's key (a create's images as a tag, a
copy in its description), so a job is asked (ShowJobProgress; ShowJob is deprecated, IMS API
reference ims_03_0905_1) only for a failure's reason, when the listing does not show its images, or
for its progress, which a listing lacks: the oldest job in the making, each time it is twice as old.

IMS rules honoured here (docs/emulator-huawei.md, "Conformance"): a whole-machine image from an
ECS needs a CBR vault (an account on CSBS needs none; refused for want of one, the same disks become
a system image plus data images); a system disk alone is a system image; names are 1-128
characters with any ``-vdb`` suffix kept; tag values are ASCII (``ownership.tag_value``); images
are found by tag with ListImageByTags.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, TypeVar

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import (
    ConnectionException,
    RequestTimeoutException,
    ServiceResponseException,
    SslHandShakeException,
)
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkecs.v2 import EcsClient, ListServerBlockDevicesRequest, ShowServerRequest
from huaweicloudsdkecs.v2.region.ecs_region import EcsRegion
from huaweicloudsdkevs.v2 import EvsClient, ListVolumesRequest
from huaweicloudsdkevs.v2.region.evs_region import EvsRegion
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
    ResourceTag,
    ShowImageQuotaRequest,
    ShowJobProgressRequest,
    ShowJobRequest,
    TagKeyValue,
    Tags,
)
from huaweicloudsdkims.v2.region.ims_region import ImsRegion

from imagebak.ownership import TAG_KEY, tag_value
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
from imagebak.providers.names import TextRule
from imagebak.providers.retry import call_with_retry, classified

T = TypeVar("T")
VENDOR = "huawei"
log = logging.getLogger(__name__)

# Image names (SDK CreateWholeImageRequestBody.name; IMG.0002/IMG.0003): 1-128 characters of letters,
# digits, '-', '.', '_', spaces and Chinese characters, no space first or last.
NAME_RULE = TextRule("image name", 1, 128, re.compile(r"[A-Za-z0-9\-._ \u4e00-\u9fff]"), strip=" ")
# Descriptions: at most 1024 characters, no line breaks, '<' or '>' (SDK CreateImageRequestBody.description).
DESCRIPTION_RULE = TextRule("description", 0, 1024, re.compile(r"[^\r\n<>]"), fill=" ")
_BY_TAGS_PAGE = 100  # ListImageByTags pages (limit 1-1000, offset) as strings
_WHOLE_JOB = "imsCreateWholeImageByInstanceJob"
# Images being made are polled with one windowed ListImages; the window opens this long before the
# earliest submission, for clocks that disagree.
LISTING_MARGIN = timedelta(minutes=10)
_DESCRIBED_KEY = re.compile(r" \[([^\[\]\s]+)\]$")  # the key ``_with_key`` puts at the end of a copy's description


def render_name(text: str, suffix: str = "") -> str:
    """Any requested name as an IMS image name; ``suffix`` (a data image's ``-vdb``) is never cut."""
    return NAME_RULE.render(text, suffix)


def name_problems(name: str) -> list[str]:
    """Why IMS would refuse ``name`` as an image name (empty if it would not)."""
    return NAME_RULE.problems(name)


# Source regions whose images may be up to 300 GB for a cross-region copy; elsewhere 128 GB.
_LARGE_COPY_REGIONS = frozenset({"cn-south-1", "cn-east-2", "cn-east-3", "cn-north-4"})

_SERVICES: dict[str, tuple[Any, Any]] = {
    "ims": (ImsClient, ImsRegion),
    "ecs": (EcsClient, EcsRegion),
    "evs": (EvsClient, EvsRegion),
}

# IMS job and image statuses -> neutral states.
_JOB_STATES = {
    "INIT": ImageState.PENDING,
    "RUNNING": ImageState.PENDING,
    "SUCCESS": ImageState.AVAILABLE,
    "FAIL": ImageState.FAILED,
}
_IMAGE_STATES = {
    "queued": ImageState.PENDING,
    "saving": ImageState.PENDING,
    "active": ImageState.AVAILABLE,
    "killed": ImageState.FAILED,
    "deleted": ImageState.MISSING,
}

# Error codes whose meaning does not follow from the HTTP status (IMS answers most errors with 400).
_CODE_KINDS: dict[str, ErrorKind] = {
    "APIGW.0308": ErrorKind.THROTTLED,  # API gateway flow control
    "IMG.0060": ErrorKind.CONFLICT,  # too many concurrent image tasks (e.g. 5 cross-region copies)
    "IMG.0010": ErrorKind.CONFLICT,  # the ECS has tasks in progress: create the image later
    "IMG.0027": ErrorKind.NOT_FOUND,  # image does not exist
    "IMG.0005": ErrorKind.NOT_FOUND,  # ECS does not exist
    "IMG.0023": ErrorKind.UNAVAILABLE,  # "an exception occurred during job query": a server fault, retry
    "Ecs.0114": ErrorKind.NOT_FOUND,
    "Ecs.0614": ErrorKind.NOT_FOUND,
    "EVS.5404": ErrorKind.NOT_FOUND,
    "IMG.0015": ErrorKind.QUOTA,  # private image quota reached
    "APIGW.0301": ErrorKind.AUTH,  # AK unknown or signature mismatch
    "APIGW.0302": ErrorKind.AUTH,
    "APIGW.0303": ErrorKind.AUTH,
    "APIGW.0305": ErrorKind.AUTH,
    "APIGW.0306": ErrorKind.AUTH,
    "IMG.0026": ErrorKind.AUTH,  # operator lacks the rights
    "IMG.0030": ErrorKind.AUTH,  # project id and token invalid
}


def classify(exc: BaseException, action: str = "call") -> ProviderError:
    """Turn a Huawei SDK exception into a ProviderError; only the server's text, never a credential."""
    if isinstance(exc, ServiceResponseException):
        status = exc.status_code
        code = str(exc.error_code or status)
        kind = _CODE_KINDS.get(code) or _kind_for_status(status)
        return ProviderError(
            VENDOR,
            action,
            kind,
            code,
            str(exc.error_msg or "").strip()[:500] or code,
            request_id=exc.request_id or None,
            http_status=status,
        )
    if isinstance(exc, SslHandShakeException):  # a TLS misconfiguration does not heal by retrying
        return ProviderError(VENDOR, action, ErrorKind.UNKNOWN, "SslHandShake", str(exc.error_msg))
    if isinstance(exc, (ConnectionException, RequestTimeoutException)):
        return ProviderError(VENDOR, action, ErrorKind.TIMEOUT, type(exc).__name__, str(exc.error_msg))
    return ProviderError(VENDOR, action, ErrorKind.UNKNOWN, type(exc).__name__, str(exc))


def _kind_for_status(status: int) -> ErrorKind:
    if status == 429:  # also the GET/DELETE quirk: the SDK loses the body code and keeps only "429"
        return ErrorKind.THROTTLED
    if status >= 500:
        return ErrorKind.UNAVAILABLE
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status == 408:
        return ErrorKind.TIMEOUT
    if status == 409:
        return ErrorKind.CONFLICT
    return ErrorKind.INVALID if 400 <= status < 500 else ErrorKind.UNKNOWN


def _quiet_sdk_logger(client_name: str) -> None:
    """The SDK's logger has no handler and does not propagate, so Python prints its errors (which imagebak
    classifies and reports itself) straight to stderr, into a cron job's JSON log. Route it through
    ``logging`` instead, where imagebak shows vendor SDK messages only with -vv."""
    logger = logging.getLogger(f"HuaweiCloud-SDK-{client_name}")
    logger.propagate = True
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def build(settings: ProviderSettings) -> Provider:
    return HuaweiProvider(settings)


def _short_device(device: str | None) -> str:
    """``/dev/vdb`` -> ``vdb``; Xen (``xvd*``) and SCSI (``sd*``) names map onto ``vd*``."""
    name = (device or "").rsplit("/", 1)[-1]
    for prefix in ("xvd", "sd"):
        if name.startswith(prefix):
            return "vd" + name[len(prefix) :]
    return name


def _tag_values(tags: Mapping[str, str]) -> dict[str, str]:
    """Tag values IMS accepts (ASCII letters, digits, ``_ . -``, at most 43): ``ownership.tag_value``."""
    return {key: tag_value(value) for key, value in tags.items()}


def _tag_strings(tags: Mapping[str, str]) -> list[str]:
    """IMS's older tag form, ``key.value``, the only one data images take."""
    return [f"{key}.{value}" for key, value in tags.items()]


def _with_key(description: str, key: str) -> str:
    """A copy's description carrying its idempotency key (IMS copies take no tags)."""
    marker = f" [{key}]"
    return DESCRIPTION_RULE.render(description)[: DESCRIPTION_RULE.max_len - len(marker)] + marker


class HuaweiProvider(Provider):
    vendor = VENDOR

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.retry_policy = settings.retry
        self.limits = ProviderLimits(
            max_concurrent_copies=5,
            max_images_per_copy_call=1,
            copy_size_limit_gb={r: 300 if r in _LARGE_COPY_REGIONS else 128 for r in settings.projects},
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.submissions = Submissions(VENDOR)
        self._job_images: dict[str, str] = {}  # job ref -> the image id its job (or a listing) showed
        # The jobs this process submitted: their images are known in a listing by the key, so the job
        # itself need not be asked.
        self._submitted: dict[str, _Submitted] = {}
        # (region, copies?) -> the age of the job last asked for its progress: see ``_sample_progress``
        self._sampled_at_age: dict[tuple[str, bool], float] = {}
        self.clock: Callable[[], float] = time.monotonic  # the ages of jobs (a test moves it)

    # -- plumbing -------------------------------------------------------------------------------

    def _project_id(self, region: str) -> str:
        project_id = self.settings.projects.get(region)
        if not project_id:
            raise ProviderError(
                VENDOR,
                "configuration",
                ErrorKind.INVALID,
                "MissingProjectId",
                f"account {self.settings.account}: no project id for region {region}; add "
                f"'{region}: <project id>' under the account's projects: in policies.yaml",
            )
        return project_id

    def _client(self, service: str, region: str) -> Any:
        """One SDK client per (service, region), built on first use and shared by threads."""
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                client = self._clients[(service, region)] = self._build_client(service, region)
            return client

    def _build_client(self, service: str, region: str) -> Any:
        client_cls, region_cls = _SERVICES[service]
        _quiet_sdk_logger(client_cls.__name__)
        config = HttpConfig.get_default_config()
        timeout = self.settings.timeout_seconds
        config.timeout = (min(5.0, timeout), timeout)
        config.retry_times = 0  # retrying is call_with_retry's job, with backoff and a deadline
        builder = (
            client_cls.new_builder()
            .with_http_config(config)
            .with_credentials(self._credentials(self._project_id(region)))
        )
        if self.settings.endpoint:
            return builder.with_endpoint(self.settings.endpoint).build()
        try:
            return builder.with_region(region_cls.value_of(region)).build()
        except KeyError:
            raise ProviderError(
                VENDOR,
                "configuration",
                ErrorKind.INVALID,
                "UnknownRegion",
                f"Huawei Cloud {service.upper()} has no region {region!r}",
            ) from None

    def _credentials(self, project_id: str) -> BasicCredentials:
        """The SDK's credentials for one project: the chain's own object (it renews temporary keys), or keys."""
        creds = self.settings.credentials
        if isinstance(creds.live, BasicCredentials):
            found = copy.copy(creds.live)
            found.project_id = project_id
            return found
        return BasicCredentials(creds.access_key_id, creds.secret, project_id).with_security_token(creds.token)

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        return call_with_retry(fn, classify=lambda exc: classify(exc, action), policy=self.settings.retry)

    def _ims(self, region: str, action: str, method: str, request: Any) -> Any:
        client = self._client("ims", region)
        return self._call(action, lambda: getattr(client, method)(request))

    def _ims_submit(
        self, job_region: str, action: str, method: str, request: Any, key: str, data_images: int = 0
    ) -> str:
        """Submit a create/copy job once; its ref names the job and the region that owns it (a copy's source)."""
        client = self._client("ims", job_region)

        def submit() -> str:
            return f"job:{getattr(client, method)(request).job_id}@{job_region}"

        try:
            ref = classified(submit, lambda exc: classify(exc, action))
        except ProviderError as error:
            self.submissions.uncertain(key, error)
            raise
        self.submissions.record(ref)
        copy = action == "CopyImageCrossRegion"
        self._submitted[ref] = _Submitted(key, action == "CreateWholeImage", data_images, copy, self.clock())
        return ref

    # -- instances and quota --------------------------------------------------------------------

    def get_instance(self, region: str, instance_id: str) -> InstanceInfo | None:
        """ECS for the server and its block devices, EVS for sizes and encryption.

        A block device EVS does not know is a local disk (the emulator models them that way:
        attached to the server, never an EVS volume); ``bootIndex`` 0 is the system disk.
        """
        ecs = self._client("ecs", region)
        try:
            server = self._call("ShowServer", lambda: ecs.show_server(ShowServerRequest(server_id=instance_id))).server
        except ProviderError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return None
            raise
        devices = self._call(
            "ListServerBlockDevices",
            lambda: ecs.list_server_block_devices(ListServerBlockDevicesRequest(server_id=instance_id)),
        )
        evs = self._client("evs", region)
        volumes = self._call("ListVolumes", lambda: evs.list_volumes(ListVolumesRequest(server_id=instance_id)))
        by_id = {v.id: v for v in volumes.volumes or []}
        disks = []
        for dev in devices.volume_attachments or []:
            volume = by_id.get(dev.volume_id)
            disks.append(
                DiskInfo(
                    device=_short_device(dev.device),
                    disk_id=dev.volume_id,
                    category="cloud" if volume is not None else "local",
                    size_gb=int(volume.size if volume is not None and volume.size is not None else dev.size or 0),
                    is_system=dev.boot_index == 0,
                    encrypted=bool(volume is not None and volume.encrypted),
                )
            )
        disks.sort(key=lambda d: d.device)
        return InstanceInfo(instance_id, region, server.name or instance_id, server.status or "", tuple(disks))

    def quotas(self, region: str) -> Sequence[Quota]:
        resp = self._ims(region, "ShowImageQuota", "show_image_quota", ShowImageQuotaRequest())
        resources = resp.quotas.resources if resp.quotas else []
        return [Quota("image", int(r.used or 0), int(r.quota or 0)) for r in resources or [] if r.type == "image"]

    # -- images ---------------------------------------------------------------------------------

    def _list_images(self, region: str, **filters: Any) -> list[Any]:
        """Every private image matching ``filters`` (ListImages pages with limit + marker)."""
        images: list[Any] = []
        marker = None
        while True:
            request = ListImagesRequest(imagetype="private", limit=100, marker=marker, **filters)
            page = self._ims(region, "ListImages", "list_images", request).images or []
            images.extend(page)
            if len(page) < 100:
                return images
            marker = page[-1].id

    def _by_tags(self, region: str, tags: Mapping[str, str]) -> list[Any]:
        """Every image carrying all ``tags`` (ListImageByTags, paged): id, name, status and tags only."""
        body_tags = [Tags(key=k, values=[v]) for k, v in _tag_values(tags).items()]
        found: list[Any] = []
        while True:
            body = ListImageByTagsRequestBody(
                action="filter", tags=body_tags, limit=str(_BY_TAGS_PAGE), offset=str(len(found))
            )
            page = self._ims(region, "ListImageByTags", "list_image_by_tags", ListImageByTagsRequest(body=body))
            resources = page.resources or []
            found.extend(resources)
            if not resources or len(found) >= int(page.total_count or 0):
                return found

    def find_submitted(self, region: str, key: str, name: str, attempted_at: datetime | None = None) -> str | None:
        """A create wears the key tag from the start: its system image is the one named as submitted, the
        data images of the same submission wear the key too and come with it (failed or not); a copy takes
        no tags, so it is found by name and proven by the key in its description."""
        own = render_name(name)
        tagged = self._by_tags(region, {TAG_KEY: key})
        if tagged:
            system = [r for r in tagged if r.resource_name == own] or tagged
            return adoptable([(str(r.resource_id), _status_of(r) == "killed") for r in system])
        named = [i for i in self._list_images(region, name=own) if key in (i.description or "")]
        found = adoptable([(str(i.id), i.status == "killed") for i in named])
        if found is None:
            self.submissions.nothing_found("ListImageByTags", key, attempted_at)
        return found

    def create_image(self, spec: ImageSpec) -> str:
        """Every cloud disk: a whole-machine image (CreateWholeImage). A CBR-backed one needs the vault
        (``spec.vault_id``); without one the call is tried as a CSBS-backed account takes it, and if IMS
        refuses it for the vault, the same disks become a system image plus data images. A subset, or a
        system disk alone: a system image plus one data image per included data disk (CreateImage)."""
        tags = _tag_values({**spec.tags, TAG_KEY: spec.idempotency_key})
        wanted = set(spec.devices)
        data_disks = [
            d for d in spec.instance.disks if d.device in wanted and not d.is_system and d.category == "cloud"
        ]
        if spec.all_disks and data_disks:
            try:
                return self._create_whole(spec, tags)
            except ProviderError as error:
                if spec.vault_id or error.code != "IMG.0001" or "vault" not in error.message.lower():
                    raise
                log.warning(
                    "%s %s: a whole-machine image of %s needs a CBR vault and none is configured; "
                    "making a system image and %d data image(s) instead (%s)",
                    VENDOR, spec.region, spec.instance.instance_id, len(data_disks), error.describe(),
                )  # fmt: skip
        description = DESCRIPTION_RULE.render(spec.description)
        data_images = [
            CreateDataImage(
                name=render_name(spec.name, suffix=f"-{d.device}"),
                volume_id=d.disk_id,
                description=description,
                tags=_tag_strings(tags),
            )
            for d in data_disks
        ]
        body = CreateImageRequestBody(
            name=render_name(spec.name),
            instance_id=spec.instance.instance_id,
            description=description,
            image_tags=[TagKeyValue(key=k, value=v) for k, v in tags.items()],
            data_images=data_images or None,
        )
        request = CreateImageRequest(body=body)
        return self._ims_submit(
            spec.region, "CreateImage", "create_image", request, spec.idempotency_key, len(data_images)
        )

    def _create_whole(self, spec: ImageSpec, tags: Mapping[str, str]) -> str:
        body = CreateWholeImageRequestBody(
            name=render_name(spec.name),
            instance_id=spec.instance.instance_id,
            description=DESCRIPTION_RULE.render(spec.description),
            image_tags=[TagKeyValue(key=k, value=v) for k, v in tags.items()],
            vault_id=spec.vault_id,
        )
        request = CreateWholeImageRequest(body=body)
        return self._ims_submit(spec.region, "CreateWholeImage", "create_whole_image", request, spec.idempotency_key)

    def find_images(self, region: str, tags: Mapping[str, str], name: str | None = None) -> Sequence[ImageStatus]:
        """ListImageByTags on every tag, then each image's details (ListImages takes one id)."""
        own = render_name(name) if name else None
        found = [r for r in self._by_tags(region, tags) if own in (None, r.resource_name)]
        return [self._plain_status(region, str(r.resource_id), extras=False) for r in found]

    def image_status(
        self, region: str, refs: Sequence[str], submitted_at: Mapping[str, datetime] | None = None
    ) -> Mapping[str, ImageStatus]:
        """What one ListImages of the region (``created_at`` from the earliest submission on) shows: an
        image being made, or one made by a job this process submitted (known by its key, with the data
        images wearing the same key). The job, or for a plain id ListImages with that ``id``, is asked
        only for the rest: a failure's reason, or a job whose image the listing does not show (yet);
        and one job now and then for its progress (``_sample_progress``)."""
        since = submitted_at or {}
        listed = self._listed_since(region, [r for r in refs if r in since], since)
        by_key = _by_key(listed.values())
        statuses = {}
        for ref in refs:
            status = self._listed_status(ref, listed, by_key)
            if status is None and ref.startswith("job:"):
                image = listed.get(self._job_images.get(ref, ""))
                status = self._job_status(ref, region, since.get(ref), image)
                if status.state is ImageState.PENDING and status.image_id:
                    self._job_images[ref] = status.image_id  # from now on, seen in the listing
            elif status is None:
                status = self._plain_status(region, ref, since=since.get(ref))
            statuses[ref] = status
        self._sample_progress(region, statuses)
        return statuses

    def _sample_progress(self, region: str, statuses: dict[str, ImageStatus]) -> None:
        """A listing carries no progress; without one the engine has no expected end and polls every
        interval. So the oldest job of those the listing shows in the making is asked for its progress,
        each time it is twice as old as the one asked last (creates and copies apart): a few ShowJobProgress
        per region, and the engine extrapolates one job's progress to the others of its step."""
        making = [
            (self._submitted[ref], ref)
            for ref, status in statuses.items()
            if ref in self._submitted and status.state is ImageState.PENDING and status.progress is None
        ]
        for copies in (False, True):
            jobs = [(job, ref) for job, ref in making if job.copy is copies]
            if not jobs:
                continue
            submitted, oldest = min(jobs, key=lambda pair: pair[0].at)
            age = self.clock() - submitted.at
            if age < 2 * self._sampled_at_age.get((region, copies), 0.0):
                continue
            self._sampled_at_age[(region, copies)] = age
            try:
                status = self._job_status(oldest, region, None)
            except ProviderError as error:  # a sample only: the listing's word stands
                log.debug("%s %s: no progress of %s: %s", VENDOR, region, oldest, error.describe())
                continue
            if status.state is ImageState.PENDING:  # done or failed: the next listing says so
                statuses[oldest] = status

    def _listed_since(self, region: str, refs: Sequence[str], since: Mapping[str, datetime]) -> dict[str, Any]:
        """Private images created since the earliest of these submissions (less a margin for clock skew)."""
        known = [ref for ref in refs if not ref.startswith("job:") or ref in self._job_images or ref in self._submitted]
        if not known:
            return {}
        start = min(since[ref] for ref in known) - LISTING_MARGIN
        created = f"gte:{start.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        return {image.id: image for image in self._list_images(region, created_at=created)}

    def _listed_status(
        self, ref: str, listed: Mapping[str, Any], by_key: Mapping[str, list[Any]]
    ) -> ImageStatus | None:
        """The status the listing alone tells, or None when the job or the image must be asked."""
        submitted = self._submitted.get(ref)
        wearing = by_key.get(submitted.key, []) if submitted else []
        image_id = self._job_images.get(ref) or (None if ref.startswith("job:") else ref) or _main_image(wearing)
        image = listed.get(image_id) if image_id else None
        if image is None:
            return None
        state = _IMAGE_STATES.get(image.status or "")
        if state is ImageState.PENDING:
            if ref.startswith("job:"):
                self._job_images[ref] = image.id
            return ImageStatus(ref, ImageState.PENDING, image_id=image.id, detail=image.status or "")
        data = [i for i in wearing if i.id != image.id]
        if state is not ImageState.AVAILABLE or submitted is None or len(data) != submitted.data_images:
            return None  # a failure's reason, a job not submitted here, data images not listed: ask
        data_states = {_IMAGE_STATES.get(i.status or "") for i in data}
        if data_states - {ImageState.AVAILABLE, ImageState.PENDING}:
            return None  # a data image failed: the job says why
        if ImageState.PENDING in data_states:  # like its job, the image is done when its data images are
            detail = f"its data image(s) {', '.join(sorted(i.status or '' for i in data))}"
            return ImageStatus(ref, ImageState.PENDING, image_id=image.id, detail=detail)
        return ImageStatus(
            ref,
            ImageState.AVAILABLE,
            image_id=image.id,
            progress=100,
            # A copy counts this image's own size (a system image's: its disk); a whole image's is every
            # disk's, which the engine already knows.
            size_gb=None if submitted.whole else image.min_disk,
            detail=image.status or "",
            extra_image_ids=tuple(i.id for i in data),
            name=image.name,
        )

    def _show_job(self, region: str, job_id: str) -> Any:
        """ShowJobProgress where the SDK has it (ShowJob is deprecated), else ShowJob."""
        client = self._client("ims", region)
        if hasattr(client, "show_job_progress"):
            return self._ims(region, "ShowJobProgress", "show_job_progress", ShowJobProgressRequest(job_id=job_id))
        return self._ims(region, "ShowJob", "show_job", ShowJobRequest(job_id=job_id))  # pragma: no cover

    def _job_status(self, ref: str, region: str, since: datetime | None, listed: Any | None = None) -> ImageStatus:
        """The job's view: state, progress, data images; ``listed`` is the image as a listing just showed it."""
        job_id, _, job_region = ref[len("job:") :].partition("@")
        try:
            job = self._show_job(job_region or region, job_id)
        except ProviderError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return self.submissions.unseen(ref, since)
            raise
        entities = job.entities
        state = _JOB_STATES.get(job.status or "", ImageState.PENDING)
        extra = tuple(
            s.entities.image_id
            for s in (entities.sub_jobs_result if entities else None) or []
            if s.entities and s.entities.image_id
        )
        fraction = entities.process_percent if entities else None  # IMS reports 0..1
        progress = 100 if state is ImageState.AVAILABLE else None if fraction is None else round(fraction * 100)
        detail = (job.fail_reason or job.error_code or "") if state is ImageState.FAILED else ""
        image_id = entities.image_id if entities else None
        size_gb = name = None
        if state is ImageState.AVAILABLE and image_id:
            # The size that counts for a copy is this image's own (a system image: its disk);
            # a whole image's is every disk's, which the engine already knows.
            found = [listed] if listed is not None else self._list_images(region, id=image_id)
            if found:
                name = found[0].name
                size_gb = None if job.job_type == _WHOLE_JOB else found[0].min_disk
        return ImageStatus(
            ref,
            state,
            image_id=image_id,
            progress=progress,
            size_gb=size_gb,
            detail=detail or job.status or "",
            extra_image_ids=extra,
            name=name,
        )

    def _plain_status(
        self, region: str, image_id: str, *, extras: bool = True, since: datetime | None = None
    ) -> ImageStatus:
        found = self._list_images(region, id=image_id)
        if not found:
            return self.submissions.unseen(image_id, since)
        image = found[0]
        state = _IMAGE_STATES.get(image.status or "", ImageState.PENDING)
        key = _key_of(image)
        detail = image.status or ""
        extra: tuple[str, ...] = ()
        if extras and key is not None and image.virtual_env_type != "DataImage":
            # An adopted system image: the data images of the same submission wear the same key.
            # Like the job it came from, it is done when they are all done (a copy of a data image
            # still "saving" is refused with IMG.0046).
            siblings = [r for r in self._by_tags(region, {TAG_KEY: key}) if r.resource_id != image_id]
            extra = tuple(str(r.resource_id) for r in siblings)
            sibling_states = {_IMAGE_STATES.get(_status_of(r), ImageState.PENDING) for r in siblings}
            if state is ImageState.AVAILABLE and sibling_states - {ImageState.AVAILABLE}:
                state = ImageState.FAILED if ImageState.FAILED in sibling_states else ImageState.PENDING
                detail = f"its data image(s) {', '.join(sorted(_status_of(r) for r in siblings))}"
        return ImageStatus(
            image_id,
            state,
            image_id=image.id,
            progress=100 if state is ImageState.AVAILABLE else None,
            size_gb=image.min_disk,
            detail=detail,
            extra_image_ids=extra,
            name=image.name,
        )

    def copy_images(self, specs: Sequence[CopySpec]) -> Mapping[str, str]:
        """One CopyImageCrossRegion per image. The copy takes no tags: its description carries the key."""
        refs: dict[str, str] = {}
        for spec in specs:
            body = CopyImageCrossRegionRequestBody(
                name=render_name(spec.name),
                region=spec.dest_region,
                project_name=self.settings.project_names.get(spec.dest_region) or spec.dest_region,
                agency_name=self.settings.agency,
                vault_id=spec.vault_id,
                description=_with_key(spec.description, spec.idempotency_key),
            )
            request = CopyImageCrossRegionRequest(image_id=spec.image_id, body=body)
            refs[spec.idempotency_key] = self._ims_submit(
                spec.source_region, "CopyImageCrossRegion", "copy_image_cross_region", request, spec.idempotency_key
            )
        return refs

    def tag_image(self, region: str, image_id: str, tags: Mapping[str, str]) -> None:
        body = BatchAddOrDeleteTagsRequestBody(
            action="create", tags=[ResourceTag(key=k, value=v) for k, v in _tag_values(tags).items()]
        )
        self._ims(
            region,
            "BatchAddOrDeleteTags",
            "batch_add_or_delete_tags",
            BatchAddOrDeleteTagsRequest(image_id=image_id, body=body),
        )

    def delete_image(self, region: str, image_id: str) -> None:
        """Glance delete; ``delete_backup`` also removes a whole image's backup. The data images made by
        the same submission (same key tag) go with a system image, so a failed job leaves nothing."""
        found = self._list_images(region, id=image_id)
        key = _key_of(found[0]) if found and found[0].virtual_env_type != "DataImage" else None
        siblings = [str(r.resource_id) for r in self._by_tags(region, {TAG_KEY: key})] if key else []
        for target in [image_id, *(i for i in siblings if i != image_id)]:
            request = GlanceDeleteImageRequest(image_id=target, body=GlanceDeleteImageRequestBody(delete_backup=True))
            try:
                self._ims(region, "GlanceDeleteImage", "glance_delete_image", request)
            except ProviderError as exc:
                if target == image_id or exc.kind is not ErrorKind.NOT_FOUND:
                    raise


def _status_of(resource: Any) -> str:
    detail = resource.resource_detail
    return str(detail.status if detail is not None else "")


class _Submitted(NamedTuple):
    """A job this process submitted, as its images show in a listing."""

    key: str  # the idempotency key its images carry
    whole: bool  # a whole image (its size is every disk's)
    data_images: int  # data images beside the system image, each wearing the key
    copy: bool  # a cross-region copy (its image is listed in the destination region)
    at: float  # when it was submitted (``HuaweiProvider.clock``)


def _by_key(images: Iterable[Any]) -> dict[str, list[Any]]:
    """Listed images by the key of the submission that made them: a create's images wear it as a tag, a
    copy's description ends with it (``_with_key``). One pass over the listing, however many refs ask."""
    out: dict[str, list[Any]] = {}
    for image in images:
        described = _DESCRIBED_KEY.search(image.description or "")
        for key in {_key_of(image), described.group(1) if described else None} - {None}:
            out.setdefault(str(key), []).append(image)
    return out


def _main_image(images: Sequence[Any]) -> str | None:
    """Of the images one submission made, the system (or whole, or copied) image: one that is not a
    data image, or a data image alone (a copy of one); None when that is not one image."""
    main = [i for i in images if i.virtual_env_type != "DataImage"] or images
    return str(main[0].id) if len(main) == 1 else None


def _key_of(image: Any) -> str | None:
    """The idempotency key an image wears as its ``imagebak-key`` tag (``key.value`` in ListImages)."""
    prefix = TAG_KEY + "."
    return next((t[len(prefix) :] for t in image.tags or [] if t.startswith(prefix)), None)
