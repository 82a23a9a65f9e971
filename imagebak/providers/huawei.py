"""Huawei Cloud adapter: IMS for images, jobs, tags and quota; ECS and EVS for an instance's disks.

Huawei carries no region on the wire, only a project id, so every client is built with the
region's project id from the account's ``projects:``. That also keeps the SDK from ever asking
IAM for one (and, without keys, the ECS metadata service for credentials).

Refs returned by ``create_image``/``copy_images``: ``job:<job_id>@<region>`` — an IMS job is
owned by the project (and regional endpoint) that submitted it, which for a cross-region copy is
the *source* region, so the ref says where to ask — or a plain image id when an earlier
submission was adopted instead of re-submitted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

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
    ListImagesRequest,
    ResourceTag,
    ShowImageQuotaRequest,
    ShowJobRequest,
    TagKeyValue,
)
from huaweicloudsdkims.v2.region.ims_region import ImsRegion

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
)
from imagebak.providers.retry import call_with_retry, classified

T = TypeVar("T")
VENDOR = "huawei"

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
    "IMG.0027": ErrorKind.NOT_FOUND,  # image does not exist
    "IMG.0005": ErrorKind.NOT_FOUND,  # ECS does not exist
    "IMG.0023": ErrorKind.NOT_FOUND,  # job query failed / unknown job
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


def build(settings: ProviderSettings) -> Provider:
    return HuaweiProvider(settings)


def _short_device(device: str | None) -> str:
    """``/dev/vdb`` -> ``vdb``; Xen (``xvd*``) and SCSI (``sd*``) names map onto ``vd*``."""
    name = (device or "").rsplit("/", 1)[-1]
    for prefix in ("xvd", "sd"):
        if name.startswith(prefix):
            return "vd" + name[len(prefix) :]
    return name


def _tag_strings(tags: Mapping[str, str]) -> list[str]:
    """IMS's older tag form, ``key.value``, used by data images and the ListImages filter."""
    return [f"{key}.{value}" for key, value in tags.items()]


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
        config = HttpConfig.get_default_config()
        timeout = self.settings.timeout_seconds
        config.timeout = (min(5.0, timeout), timeout)
        config.retry_times = 0  # retrying is call_with_retry's job, with backoff and a deadline
        creds = self.settings.credentials
        builder = (
            client_cls.new_builder()
            .with_http_config(config)
            .with_credentials(BasicCredentials(creds.access_key_id, creds.secret, self._project_id(region)))
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

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        return call_with_retry(fn, classify=lambda exc: classify(exc, action), policy=self.settings.retry)

    def _ims(self, region: str, action: str, method: str, request: Any) -> Any:
        client = self._client("ims", region)
        return self._call(action, lambda: getattr(client, method)(request))

    def _ims_submit(self, job_region: str, action: str, method: str, request: Any) -> str:
        """Submit a create/copy job once; its ref names the job and the region that owns it (a copy's source)."""
        client = self._client("ims", job_region)

        def submit() -> str:
            return f"job:{getattr(client, method)(request).job_id}@{job_region}"

        return classified(submit, lambda exc: classify(exc, action))

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

    def find_submitted(self, region: str, key: str, name: str) -> str | None:
        """A create wears the key tag from the start (the system image is preferred over its data images);
        a copy takes no tags, so it is found by name and proven by the key in its description."""
        tagged = [i for i in self._list_images(region, tag=f"{TAG_KEY}.{key}") if i.status != "killed"]
        tagged.sort(key=lambda i: i.virtual_env_type == "DataImage")
        if tagged:
            return str(tagged[0].id)
        named = self._list_images(region, name=name)
        return next((str(i.id) for i in named if i.status != "killed" and key in (i.description or "")), None)

    def create_image(self, spec: ImageSpec) -> str:
        """Whole-machine image for every cloud disk; otherwise a system image plus data-disk images."""
        tags = {**spec.tags, TAG_KEY: spec.idempotency_key}
        image_tags = [TagKeyValue(key=k, value=v) for k, v in tags.items()]
        instance_id = spec.instance.instance_id
        if spec.all_disks:
            body = CreateWholeImageRequestBody(
                name=spec.name, instance_id=instance_id, description=spec.description, image_tags=image_tags
            )
            action, method, request = "CreateWholeImage", "create_whole_image", CreateWholeImageRequest(body=body)
        else:
            wanted = set(spec.devices)
            data_images = [
                CreateDataImage(
                    name=f"{spec.name}-{d.device}",
                    volume_id=d.disk_id,
                    description=spec.description,
                    tags=_tag_strings(tags),
                )
                for d in spec.instance.disks
                if d.device in wanted and not d.is_system and d.category == "cloud"
            ]
            body = CreateImageRequestBody(
                name=spec.name,
                instance_id=instance_id,
                description=spec.description,
                image_tags=image_tags,
                data_images=data_images or None,
            )
            action, method, request = "CreateImage", "create_image", CreateImageRequest(body=body)
        return self._ims_submit(spec.region, action, method, request)

    def find_images(self, region: str, tags: Mapping[str, str], name: str | None = None) -> Sequence[ImageStatus]:
        """ListImages filters on one ``key.value`` tag; the other tags are matched here."""
        wanted = set(_tag_strings(tags))
        first = next(iter(wanted), None)
        images = self._list_images(region, tag=first, name=name)
        return [self._image_status(i.id, i) for i in images if wanted <= set(i.tags or [])]

    def image_status(self, region: str, refs: Sequence[str]) -> Mapping[str, ImageStatus]:
        """One ShowJob per job ref, one ListImages per image id (its ``id`` filter takes one id)."""
        return {
            ref: self._job_status(ref, region) if ref.startswith("job:") else self._plain_status(region, ref)
            for ref in refs
        }

    def _job_status(self, ref: str, region: str) -> ImageStatus:
        job_id, _, job_region = ref[len("job:") :].partition("@")
        try:
            job = self._ims(job_region or region, "ShowJob", "show_job", ShowJobRequest(job_id=job_id))
        except ProviderError as exc:
            if exc.kind is ErrorKind.NOT_FOUND:
                return ImageStatus(ref, ImageState.MISSING, detail=exc.message)
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
        return ImageStatus(
            ref,
            state,
            image_id=entities.image_id if entities else None,
            progress=progress,
            detail=detail or job.status or "",
            extra_image_ids=extra,
        )

    def _plain_status(self, region: str, image_id: str) -> ImageStatus:
        found = self._list_images(region, id=image_id)
        if not found:
            return ImageStatus(image_id, ImageState.MISSING, detail="no such image")
        status = self._image_status(image_id, found[0])
        key = next((t.split(".", 1)[1] for t in found[0].tags or [] if t.startswith(TAG_KEY + ".")), None)
        if key is None or found[0].virtual_env_type == "DataImage":
            return status
        # An adopted system image: its data-disk images wear the same key.
        siblings = self._list_images(region, tag=f"{TAG_KEY}.{key}")
        extra = tuple(i.id for i in siblings if i.virtual_env_type == "DataImage")
        return ImageStatus(
            status.ref, status.state, status.image_id, status.progress, status.size_gb, status.detail, extra
        )

    @staticmethod
    def _image_status(ref: str, image: Any) -> ImageStatus:
        state = _IMAGE_STATES.get(image.status or "", ImageState.PENDING)
        return ImageStatus(
            ref,
            state,
            image_id=image.id,
            progress=100 if state is ImageState.AVAILABLE else None,
            size_gb=image.min_disk,
            detail=image.status or "",
        )

    def copy_images(self, specs: Sequence[CopySpec]) -> Mapping[str, str]:
        """One CopyImageCrossRegion per image. The copy takes no tags: its description carries the key."""
        refs: dict[str, str] = {}
        for spec in specs:
            body = CopyImageCrossRegionRequestBody(
                name=spec.name,
                region=spec.dest_region,
                project_name=spec.dest_region,
                agency_name=self.settings.agency,
                vault_id=spec.vault_id,
                description=f"{spec.description} [{spec.idempotency_key}]",
            )
            request = CopyImageCrossRegionRequest(image_id=spec.image_id, body=body)
            refs[spec.idempotency_key] = self._ims_submit(
                spec.source_region, "CopyImageCrossRegion", "copy_image_cross_region", request
            )
        return refs

    def tag_image(self, region: str, image_id: str, tags: Mapping[str, str]) -> None:
        body = BatchAddOrDeleteTagsRequestBody(
            action="create", tags=[ResourceTag(key=k, value=v) for k, v in tags.items()]
        )
        self._ims(
            region,
            "BatchAddOrDeleteTags",
            "batch_add_or_delete_tags",
            BatchAddOrDeleteTagsRequest(image_id=image_id, body=body),
        )

    def delete_image(self, region: str, image_id: str) -> None:
        """Glance delete; ``delete_backup`` also removes a whole image's backup (its snapshots)."""
        request = GlanceDeleteImageRequest(image_id=image_id, body=GlanceDeleteImageRequestBody(delete_backup=True))
        self._ims(region, "GlanceDeleteImage", "glance_delete_image", request)
