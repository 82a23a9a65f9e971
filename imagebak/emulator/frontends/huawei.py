"""Huawei Cloud front-end: the IMS calls imagebak makes, plus the ECS, EVS and IAM calls around them.

Only wire formats live here; every rule is the model's. Huawei quirks handled here:
- no region on the wire: the region is the one whose project id the request names (the
  ``{project_id}`` path segment, else ``X-Project-Id``), looked up in the account's projects;
- SDK-HMAC-SHA256 signatures are verified exactly as the SDK's signer computes them;
- IMS errors are nested ``{"error": {"code", "message"}}`` (ECS too); EVS, IAM and the API gateway
  (throttling, authentication, unknown API) answer ``{"error_code", "error_msg"}``; every error
  carries the request id in ``X-Request-Id``;
- IMS extension APIs answer most refusals with 400, the Glance-native ones (delete, tags) and
  ShowJob with 404 for a missing resource;
- local disks are attached to the server (ShowServer, ListServerBlockDevices) but are not EVS
  volumes: ShowVolume/ListVolumes never show them.
See docs/emulator-huawei.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote

from imagebak.emulator.model import Account, CloudError, Disk, Image, Instance
from imagebak.emulator.wire import Route, RouteMatch, VendorFrontEnd, WireRequest, WireResponse, route

VENDOR = "huawei"
_SIGNING_ALGORITHM = "SDK-HMAC-SHA256"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Two documented forms: ``Access=AK`` (huaweicloudsdkcore, the API signing guide), signed with the
# secret itself, and ``Credential=AK/date/region/service/sdk_request`` (the older huaweicloud-sdk-python,
# openstack/aksksession.py), signed with a key derived from "SDK" + secret over that scope.
_AUTH_RE = re.compile(
    r"SDK-HMAC-SHA256\s+(?:Access=(?P<ak>[^,\s/]+)|Credential=(?P<cak>[^,\s/]+)/(?P<scope>[^,\s]+))\s*,"
    r"\s*SignedHeaders=(?P<headers>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*"
)
_SCOPE_TERMINATOR = "sdk_request"
_DEFAULT_PAGE = 25  # ListImages page size when the request names no limit
_MAX_PAGE = 1000
_BY_TAGS_PAGE = 10  # ListImageByTags: "如果action为filter默认为10，limit最多为1000" (SDK ListImageByTagsRequestBody)
_GIB = 1024**3
# Image names (SDK CreateWholeImageRequestBody.name): 1-128 characters of letters, digits, '-', '.',
# '_', spaces and Chinese characters, neither starting nor ending with a space.
_NAME_MAX = 128
_NAME_RE = re.compile(r"[A-Za-z0-9\-._ \u4e00-\u9fff]+")
# Image tags (IMS "镜像标签数据格式", the strict form of the regional API references): a key of 1-36
# letters, digits, '_' and '-', a value of 0-43 letters, digits, '_', '.' and '-'; 10 tags per image
# (AddImageTag constraints).
_TAG_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,36}")
_TAG_VALUE_RE = re.compile(r"[A-Za-z0-9_.-]{0,43}")
_TAGS_PER_IMAGE = 10


@dataclass(frozen=True)
class _Service:
    """How one Huawei service shapes its errors."""

    nested: bool  # {"error": {"code", "message"}} rather than {"error_code", "error_msg"}
    not_found: str
    invalid: str
    server_error: str


_SERVICES = {
    "ims": _Service(True, "IMG.0027", "IMG.0001", "IMG.0061"),
    "ecs": _Service(True, "Ecs.0114", "Ecs.0005", "Ecs.9999"),
    "evs": _Service(False, "EVS.5404", "EVS.2001", "EVS.9999"),
    "iam": _Service(False, "IAM.0004", "IAM.0001", "IAM.0001"),
}

# IMS codes finer than the service default, by (kind, detail or resource); the meanings are those of
# the IMS error-code table (support.huaweicloud.com/api-ims/ims_03_0908.html).
_IMS_CODES = {
    ("not_found", "instance"): "IMG.0005",  # The ECS does not exist.
    # An unknown job: no documented code (IMG.0023 means the job query itself failed, a server fault).
    ("not_found", "job"): "IMS.0404",
    ("not_found", "disk"): "IMG.0031",  # The resource ID in the request is incorrect.
    ("invalid_parameter", "name_too_long"): "IMG.0002",  # The image name contains more than 128 characters.
    ("invalid_parameter", "name_format"): "IMG.0003",  # The image name format is invalid.
    ("invalid_status", "instance_transient"): "IMG.0010",  # The ECS ... has in-progress tasks.
    ("invalid_status", "instance_busy"): "IMG.0010",
    ("invalid_status", "local_system_disk"): "IMG.0006",  # The ECS system disk cannot be used...
    ("invalid_status", "local_disk"): "IMG.0022",  # A disk in the current state cannot be used...
    ("invalid_status", None): "IMG.0046",  # The image is unavailable.
    ("unsupported", "copy_size_limit"): "IMG.0059",  # The size of the image file exceeds the maximum.
    ("quota_exceeded", None): "IMG.0015",  # The number of private images has reached the quota.
    ("limit_exceeded", None): "IMG.0060",  # The number of tasks exceeds the flow control limit.
}

# Refusals by the API gateway, before any service: always the flat shape.
_GATEWAY = {"throttled": (429, "APIGW.0308"), "auth_failed": (401, "APIGW.0301")}
_STATUS = {"not_found": 404, "internal": 500, "unavailable": 503}


@dataclass
class _Context:
    """One authenticated request: who, where, and the path parameters."""

    request: WireRequest
    account: Account
    params: dict[str, str]
    region: str = ""
    project_id: str = ""
    body: dict[str, Any] = field(default_factory=dict)


def _ts(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def _image_status(img: Image) -> str:
    """Model status -> IMS image status (queued until the first progress, then saving)."""
    if img.status == "available":
        return "active"
    if img.status == "failed":
        return "killed"
    return "queued" if img.progress == 0 else "saving"


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise CloudError("invalid_parameter", f"{name} is required and must be a non-empty string")
    return value


def _tags_from(body: dict[str, Any]) -> dict[str, str]:
    """``image_tags`` ([{key, value}]) or the older ``tags`` (["key.value"]): "tags和image_tags只能使用一个"."""
    if body.get("tags") and body.get("image_tags"):
        raise CloudError("invalid_parameter", "use either tags or image_tags, not both", detail="bad_tag")
    tags: dict[str, str] = {}
    for item in body.get("tags") or []:
        if not isinstance(item, str) or not item:
            raise CloudError("invalid_parameter", "tags must be strings of the form key.value", detail="bad_tag")
        key, _, value = item.partition(".")
        tags[key] = value
    for item in body.get("image_tags") or []:
        if not isinstance(item, dict) or not item.get("key"):
            raise CloudError("invalid_parameter", "image_tags must be objects with a key and a value", detail="bad_tag")
        tags[str(item["key"])] = str(item.get("value") or "")
    _check_tags(tags)
    return tags


def _check_tags(tags: dict[str, str]) -> None:
    for key, value in tags.items():
        if not _TAG_KEY_RE.fullmatch(key) or not _TAG_VALUE_RE.fullmatch(value):
            raise CloudError(
                "invalid_parameter",
                f"tag {key}={value!r}: a key is 1-36 letters, digits, '_' or '-'; "
                "a value is 0-43 letters, digits, '_', '.' or '-'",
                detail="bad_tag",
            )
    if len(tags) > _TAGS_PER_IMAGE:
        raise CloudError("invalid_parameter", f"an image has at most {_TAGS_PER_IMAGE} tags", detail="bad_tag")


def _name(body: dict[str, Any], field: str = "name") -> str:
    """A required image name, checked as IMS checks it (IMG.0002 too long, IMG.0003 bad characters)."""
    name = _required(body, field)
    if len(name) > _NAME_MAX:
        raise CloudError(
            "invalid_parameter", "The image name contains more than 128 characters.", detail="name_too_long"
        )
    if not _NAME_RE.fullmatch(name) or name != name.strip(" "):
        raise CloudError("invalid_parameter", "The image name format is invalid.", detail="name_format")
    return name


def _sub_job_id(task_id: str, index: int) -> str:
    return hashlib.md5(f"{task_id}:{index}".encode(), usedforsecurity=False).hexdigest()


def _device(disk: Disk) -> str:
    return f"/dev/{disk.device}"


@dataclass(frozen=True)
class _Api:
    """What a Huawei route leads to: its handler and how its errors are shaped."""

    service: str  # "ims" | "ecs" | "evs" | "iam": decides the error shape and codes
    call: Callable[[_Context], WireResponse]
    native: bool = False  # a Glance/OpenStack-native path: a missing resource is 404, not 400


class FrontEnd(VendorFrontEnd[_Api]):
    """Huawei IMS/ECS/EVS/IAM over the shared CloudModel; actions are the SDK operation names."""

    vendor = VENDOR
    recognises = "huawei: an SDK-HMAC-SHA256 Authorization or a known IMS/ECS/EVS/IAM path"
    unknown_action = "UnknownApi"
    request_id_header = "X-Request-Id"  # on every answer, as Huawei does

    def routes(self) -> list[Route[_Api]]:
        def ims(call: Callable[[_Context], WireResponse], native: bool = False) -> _Api:
            return _Api("ims", call, native)

        return [
            route("POST", "/v1/cloudimages/wholeimages/action", "CreateWholeImage", ims(self._create_whole_image)),
            route("POST", "/v2/cloudimages/action", "CreateImage", ims(self._create_image)),
            route("GET", "/v2/cloudimages", "ListImages", ims(self._list_images)),
            route("GET", "/v1/cloudimages/quota", "ShowImageQuota", ims(self._show_image_quota)),
            route(
                "POST", "/v1/cloudimages/{image_id}/cross_region_copy", "CopyImageCrossRegion", ims(self._copy_image)
            ),
            route("GET", "/v1/{project_id}/jobs/{job_id}", "ShowJob", ims(self._show_job, native=True)),
            route("DELETE", "/v2/images/{image_id}", "GlanceDeleteImage", ims(self._delete_image, native=True)),
            route("GET", "/v1/cloudimages/job/{job_id}", "ShowJobProgress", ims(self._show_job_progress, native=True)),
            route("GET", "/v2/images", "GlanceListImages", ims(self._glance_list_images, native=True)),
            route("GET", "/v2/images/{image_id}", "GlanceShowImage", ims(self._glance_show_image, native=True)),
            route(
                "POST",
                "/v2/{project_id}/images/resource_instances/action",
                "ListImageByTags",
                ims(self._list_image_by_tags),
            ),
            route(
                "POST",
                "/v2/{project_id}/images/{image_id}/tags/action",
                "BatchAddOrDeleteTags",
                ims(self._batch_tags, native=True),
            ),
            route(
                "GET", "/v1/{project_id}/cloudservers/{server_id}", "ShowServer", _Api("ecs", self._show_server, True)
            ),
            route(
                "GET",
                "/v1/{project_id}/cloudservers/{server_id}/block_device",
                "ListServerBlockDevices",
                _Api("ecs", self._list_block_devices, True),
            ),
            route("GET", "/v2/{project_id}/cloudvolumes/detail", "ListVolumes", _Api("evs", self._list_volumes, True)),
            route(
                "GET", "/v2/{project_id}/cloudvolumes/{volume_id}", "ShowVolume", _Api("evs", self._show_volume, True)
            ),
            route("GET", "/v3/projects", "KeystoneListProjects", _Api("iam", self._list_projects, True)),
        ]

    # ---- protocol --------------------------------------------------------------------------

    def matches(self, request: WireRequest) -> bool:
        auth = request.headers.get("authorization", "")
        return auth.startswith(_SIGNING_ALGORITHM) or self.table.knows(request.path)

    def serve(self, request: WireRequest, found: RouteMatch[_Api] | None) -> WireResponse:
        """An unknown API is the gateway's 404 before any authentication; then the signature, then the project."""
        if found is None:
            raise CloudError(
                "not_found", f"The API does not exist or has not been published: {request.method} {request.path}"
            )
        api = found.route.handler
        ctx = _Context(request, self._authenticate(request), {k: unquote(v) for k, v in found.params.items()})
        if api.service != "iam":
            ctx.project_id = ctx.params.get("project_id") or request.headers.get("x-project-id", "")
            ctx.region = self._region(ctx.account, ctx.project_id)
        return api.call(ctx)

    def format_error(self, request: WireRequest, error: CloudError) -> WireResponse:
        found = self.find(request)
        if error.kind in _GATEWAY or found is None:
            status, code = _GATEWAY.get(error.kind, (404, "APIGW.0101"))
            return WireResponse.json(status, {"error_code": code, "error_msg": error.message})
        api = found.route.handler
        service = _SERVICES[api.service]
        status = _STATUS.get(error.kind, 400)
        if error.kind == "not_found" and api.service == "ims" and not api.native:
            status = 400  # IMS extension APIs report a missing resource as a 400
        if error.kind in ("internal", "unavailable"):
            code = service.server_error
        elif api.service == "ims":
            code = (
                _IMS_CODES.get((error.kind, error.detail or error.resource))
                or _IMS_CODES.get((error.kind, None))
                or (service.not_found if error.kind == "not_found" else service.invalid)
            )
        else:
            code = service.not_found if error.kind == "not_found" else service.invalid
        if service.nested:
            return WireResponse.json(status, {"error": {"code": code, "message": error.message}})
        return WireResponse.json(status, {"error_code": code, "error_msg": error.message})

    # ---- authentication, region ------------------------------------------------------------------

    def _authenticate(self, request: WireRequest) -> Account:
        """Recompute the SDK-HMAC-SHA256 signature (either documented form) with the account's secret."""
        match = _AUTH_RE.fullmatch(request.headers.get("authorization", ""))
        if match is None:
            raise CloudError(
                "auth_failed",
                "Incorrect IAM authentication information: Authorization header is missing or not SDK-HMAC-SHA256",
                detail="missing_signature",
            )
        access_key = match["ak"] or match["cak"]
        account = self.model.account_by_key(VENDOR, access_key)
        if account is None:
            raise CloudError(
                "auth_failed",
                f"Incorrect IAM authentication information: ak {access_key} not exist",
                detail="unknown_key",
            )
        date = request.headers.get("x-sdk-date", "")
        digest = hashlib.sha256(self._canonical_request(request, match["headers"]).encode()).hexdigest()
        if match["scope"] is None:
            key, string_to_sign = account.secret.encode(), f"{_SIGNING_ALGORITHM}\n{date}\n{digest}"
        else:
            key, string_to_sign = (
                self._scoped_key(account.secret, match["scope"], date),
                "\n".join([_SIGNING_ALGORITHM, date, match["scope"], digest]),
            )
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not date or not hmac.compare_digest(expected, match["signature"].lower()):
            raise CloudError(
                "auth_failed",
                "Incorrect IAM authentication information: verify aksk signature fail",
                detail="bad_signature",
            )
        return account

    @staticmethod
    def _scoped_key(secret: str, scope: str, date: str) -> bytes:
        """kDate = HMAC("SDK" + secret, yyyymmdd), then the region, the service and "sdk_request" in turn.

        The scope's date must be X-Sdk-Date's day and it must end in sdk_request; its region and
        service are signed as given (what the gateway checks them against is unconfirmed).
        """
        parts = scope.split("/")
        if len(parts) != 4 or parts[3] != _SCOPE_TERMINATOR or parts[0] != date[:8]:
            raise CloudError(
                "auth_failed",
                "Incorrect IAM authentication information: the credential scope must be "
                "<X-Sdk-Date day>/<region>/<service>/sdk_request",
                detail="bad_signature",
            )
        key = ("SDK" + secret).encode()
        for part in parts:
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return key

    @staticmethod
    def _canonical_request(request: WireRequest, signed_headers: str) -> str:
        """The signer's canonical request (huaweicloudsdkcore/signer/signer.py, openstack/aksksession.py)."""
        segments = [quote(seg, safe="~") for seg in unquote(request.path).split("/")]
        uri = "/".join(segments)
        uri = uri if uri.endswith("/") else uri + "/"
        query = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(request.query))
        names = signed_headers.split(";")
        headers = "".join(f"{name}:{request.headers.get(name, '').strip()}\n" for name in names)
        if not request.body:
            payload_hash = _EMPTY_SHA256
        else:
            payload_hash = request.headers.get("x-sdk-content-sha256") or hashlib.sha256(request.body).hexdigest()
        return "\n".join([request.method.upper(), uri, query, headers, signed_headers, payload_hash])

    def _region(self, account: Account, project_id: str) -> str:
        if not project_id:
            raise CloudError(
                "auth_failed",
                "Incorrect IAM authentication information: X-Project-Id is required",
                detail="missing_project",
            )
        region = self.model.region_for_project(account.name, project_id)
        if region is None:
            raise CloudError(
                "auth_failed",
                f"Incorrect IAM authentication information: project {project_id} is not a project of this account",
                detail="unknown_project",
            )
        return region

    # ---- IMS: create ---------------------------------------------------------------------------

    def _job(self, ctx: _Context, task_type: str, start: Callable[[], list[Image]]) -> WireResponse:
        """Start images and the job over them, all or nothing (a refused part leaves no trace); answer the job id.

        The job belongs to the requesting project (for a copy: the source, which submitted it).
        """
        with self.model.atomic():
            images = start()
            task = self.model.create_task(ctx.account.name, ctx.region, task_type, [i.image_id for i in images])
        return WireResponse.json(200, {"job_id": task.task_id})

    def _create_whole_image(self, ctx: _Context) -> WireResponse:
        """From an ECS only. The backup behind a whole image is a CBR one, whose vault is required, or
        (accounts still on it) a CSBS one, which needs none (SDK CreateWholeImageRequestBody.vault_id:
        "如果这个备份为CBR，vault_id为必填项；如果备份为CSBS，vault_id参数可不填"; Terraform
        huaweicloud_ims_ecs_whole_image: vault_id Required)."""
        body = ctx.request.json()
        name, tags = _name(body), _tags_from(body)
        vault_id = body.get("vault_id")
        if ctx.account.whole_image_backup == "cbr" and (not isinstance(vault_id, str) or not vault_id):
            raise CloudError(
                "invalid_parameter", "vault_id is required to create a whole image from an ECS", detail="vault_required"
            )

        def start() -> list[Image]:
            image = self.model.create_image(
                ctx.account.name,
                ctx.region,
                _required(body, "instance_id"),
                name=name,
                description=body.get("description") or "",
                kind="whole",
                tags=tags,
            )
            return [image]

        return self._job(ctx, "imsCreateWholeImageByInstanceJob", start)

    def _create_image(self, ctx: _Context) -> WireResponse:
        """A system-disk image of ``instance_id`` plus one data image per ``data_images`` entry, one job."""
        body = ctx.request.json()
        instance_id = _required(body, "instance_id")
        data_images = body.get("data_images") or []
        if not isinstance(data_images, list) or not all(isinstance(d, dict) for d in data_images):
            raise CloudError("invalid_parameter", "data_images must be a list of objects")
        acc, region = ctx.account.name, ctx.region
        name, tags = _name(body), _tags_from(body)
        data_specs = [(_name(item), _tags_from({"tags": item.get("tags")})) for item in data_images]

        def start() -> list[Image]:
            instance = self.model.get_instance(acc, region, instance_id)
            volumes = [self._attached_volume(acc, region, instance, _required(d, "volume_id")) for d in data_images]
            system = self.model.create_image(
                acc,
                region,
                instance_id,
                name=name,
                description=body.get("description") or "",
                devices=[instance.system_disk.device],
                tags=tags,
            )
            data = [
                self.model.create_data_image(
                    acc,
                    region,
                    volume.disk_id,
                    name=data_name,
                    description=item.get("description") or "",
                    tags=data_tags,
                )
                for item, volume, (data_name, data_tags) in zip(data_images, volumes, data_specs, strict=True)
            ]
            return [system, *data]

        return self._job(ctx, "imsCreateImageByInstance", start)

    def _attached_volume(self, account: str, region: str, instance: Instance, volume_id: str) -> Disk:
        disk = self.model.get_disk(account, region, volume_id)
        if disk.instance_id != instance.instance_id:
            raise CloudError(
                "invalid_parameter",
                f"volume {volume_id} is not attached to server {instance.instance_id}",
                resource="disk",
                detail="not_attached",
            )
        return disk

    def _copy_image(self, ctx: _Context) -> WireResponse:
        body = ctx.request.json()
        dest = _required(body, "region")
        project_name = _required(body, "project_name")
        # The region's default project is named after it; a sub-project is "<region>_<name>" (unconfirmed).
        if project_name != dest and not project_name.startswith(f"{dest}_"):
            raise CloudError("invalid_parameter", f"project_name {project_name} is not a project of region {dest}")
        name = _name(body)

        def start() -> list[Image]:
            image = self.model.copy_image(
                ctx.account.name,
                ctx.region,
                ctx.params["image_id"],
                dest,
                name=name,
                description=body.get("description") or "",
                vault_id=body.get("vault_id") or None,
            )
            return [image]

        return self._job(ctx, "imsCrossRegionCopyImageJob", start)

    # ---- IMS: read -----------------------------------------------------------------------------

    def _list_images(self, ctx: _Context) -> WireResponse:
        """Filters ``id``, ``name``, ``status``, ``tag``, ``__imagetype``, ``created_at``; newest first; paged.

        ``tag`` is "Key=Value" (Terraform huaweicloud_images_images: 'a specific tag in "Key=Value"
        format'); any other form (such as the older "key.value") matches nothing.
        """
        page, more = self._image_page(ctx)
        payload: dict[str, Any] = {"images": [self._image_json(i, ctx.project_id) for i in page]}
        if more:
            payload["page_info"] = {"next_marker": page[-1].image_id}
        return WireResponse.json(200, payload)

    def _glance_list_images(self, ctx: _Context) -> WireResponse:
        """Glance-native GlanceListImages: the same filters and paging, Glance's ``first``/``next`` links."""
        page, more = self._image_page(ctx)
        query = ctx.request.raw_query
        payload: dict[str, Any] = {
            "images": [self._image_json(i, ctx.project_id) for i in page],
            "first": f"/v2/images?{query}" if query else "/v2/images",
            "schema": "/v2/schemas/images",
        }
        if more:
            limit = self._int_param(ctx.request, "limit", _DEFAULT_PAGE, 1, _MAX_PAGE)
            payload["next"] = f"/v2/images?marker={page[-1].image_id}&limit={limit}"
        return WireResponse.json(200, payload)

    def _glance_show_image(self, ctx: _Context) -> WireResponse:
        """Glance-native GlanceShowImage: the image object itself, unwrapped."""
        image = self.model.get_image(ctx.account.name, ctx.region, ctx.params["image_id"])
        return WireResponse.json(200, self._image_json(image, ctx.project_id))

    def _image_page(self, ctx: _Context) -> tuple[list[Image], bool]:
        """One page of the filtered images, and whether more follow."""
        req = ctx.request
        imagetype = req.param("__imagetype")
        tag = req.param("tag")
        key, equals, value = (tag or "").partition("=")
        tags = {key: value} if tag else None
        image_id, status = req.param("id"), req.param("status")
        images = (
            []
            if imagetype not in (None, "private") or (tag and not equals)
            else self.model.list_images(
                ctx.account.name,
                ctx.region,
                ids=[image_id] if image_id else None,
                tags=tags,
                name=req.param("name"),
                seen=True,
            )
        )
        images = [i for i in images if status is None or _image_status(i) == status]
        created = req.param("created_at")
        if created:
            images = [i for i in images if _time_filter(created)(i.created_at)]
        marker = req.param("marker")
        if marker:
            ids = [i.image_id for i in images]
            if marker not in ids:
                raise CloudError("invalid_parameter", f"marker {marker} could not be found")
            images = images[ids.index(marker) + 1 :]
        limit = self._int_param(req, "limit", _DEFAULT_PAGE, 1, _MAX_PAGE)
        return images[:limit], len(images) > limit

    @staticmethod
    def _int_param(req: WireRequest, name: str, default: int, low: int, high: int) -> int:
        raw = req.param(name)
        try:
            value = default if raw in (None, "") else int(raw)
        except ValueError:
            raise CloudError("invalid_parameter", f"{name} must be an integer") from None
        if not low <= value <= high:
            raise CloudError("invalid_parameter", f"{name} must be between {low} and {high}")
        return value

    @staticmethod
    def _image_json(img: Image, project_id: str) -> dict[str, Any]:
        system = next((d for d in img.disks if d.is_system), img.disks[0] if img.disks else None)
        env = {"data": "DataImage"}.get(img.kind, "IsoImage" if img.image_type == "iso" else "FusionCompute")
        origin = (
            f"image,{img.source_region},{img.source_image_id}"
            if img.source_image_id
            else f"instance,{img.source_instance_id}"
            if img.source_instance_id
            else ""
        )
        data: dict[str, Any] = {
            "id": img.image_id,
            "name": img.name,
            "status": _image_status(img),
            "visibility": "private",
            "protected": False,
            "owner": project_id,
            "__imagetype": "private",
            "__whole_image": "true" if img.kind == "whole" else "false",
            "__os_type": None if img.kind == "data" else "Linux",
            "__description": img.description,
            "__data_origin": origin,
            "__originalimagename": img.source_image_id or "",
            "__image_source_type": "uds",
            "__image_size": str(img.size_gb * _GIB),
            "__isregistered": "true",
            "virtual_env_type": env,
            "disk_format": "iso" if img.image_type == "iso" else "zvhd2",
            "container_format": "bare",
            "min_disk": system.size_gb if system else img.size_gb,
            "min_ram": 0,
            "size": img.size_gb * _GIB,
            "tags": [f"{k}.{v}" for k, v in img.tags.items()],
            "created_at": _ts(img.created_at),
            "updated_at": _ts(img.ready_at if img.status == "available" else img.created_at),
            "active_at": _ts(img.ready_at) if img.status == "available" else None,
            "self": f"/v2/images/{img.image_id}",
            "file": f"/v2/images/{img.image_id}/file",
            "schema": "/v2/schemas/image",
        }
        if img.encrypted:
            data["__system__cmkid"] = "emulated-kms-key"
        return data

    def _show_image_quota(self, ctx: _Context) -> WireResponse:
        used, limit = self.model.quota(ctx.account.name, ctx.region, "image")
        resource = {"type": "image", "used": used, "quota": limit, "min": 1, "max": max(limit, 1000)}
        return WireResponse.json(200, {"quotas": {"resources": [resource]}})

    def _show_job_progress(self, ctx: _Context) -> WireResponse:
        """ShowJobProgress, the SDK's successor of ShowJob: the same job, no project id in the path
        (the project comes from X-Project-Id); its JobProgressEntities carry the same fields."""
        return self._show_job(ctx)

    def _show_job(self, ctx: _Context) -> WireResponse:
        """INIT until any progress, RUNNING, SUCCESS or FAIL; data images are the sub jobs."""
        task = self.model.get_task(ctx.account.name, ctx.params["job_id"])
        if task.region != ctx.region:  # jobs are scoped to the project that submitted them
            raise CloudError("not_found", f"job {task.task_id} does not exist", resource="job")
        outcome, reason = self.model.task_status(task)
        images = [self._find_image(ctx.account.name, i) for i in task.image_ids]
        live = [i for i in images if i is not None]
        status = {"success": "SUCCESS", "failed": "FAIL"}.get(outcome, "RUNNING")
        if status == "RUNNING" and all(i.progress == 0 for i in live):
            status = "INIT"
        progress = 1.0 if status == "SUCCESS" else round(sum(i.progress for i in live) / max(len(live), 1) / 100, 2)
        main = images[0]
        entities: dict[str, Any] = {
            "image_id": task.image_ids[0],
            "image_name": main.name if main else None,
            "process_percent": progress,
        }
        if len(task.image_ids) > 1:
            subs = [
                self._sub_job(task.task_id, n, image_id, img)
                for n, (image_id, img) in enumerate(zip(task.image_ids[1:], images[1:], strict=True), start=1)
            ]
            entities["sub_jobs_result"] = subs
            entities["sub_jobs_list"] = [s["job_id"] for s in subs]
        end = max((i.ready_at for i in live), default=None) if status == "SUCCESS" else None
        return WireResponse.json(
            200,
            {
                "status": status,
                "job_id": task.task_id,
                "job_type": task.task_type,
                "begin_time": _ts(task.created_at),
                "end_time": _ts(end),
                "error_code": "IMG.0014" if status == "FAIL" else None,
                "fail_reason": reason if status == "FAIL" else None,
                "entities": entities,
            },
        )

    @staticmethod
    def _sub_job(task_id: str, index: int, image_id: str, img: Image | None) -> dict[str, Any]:
        status = (
            "FAIL" if img is None or img.status == "failed" else {"available": "SUCCESS"}.get(img.status, "RUNNING")
        )
        return {
            "status": status,
            "job_id": _sub_job_id(task_id, index),
            "job_type": "imsVolumeCreateImageJob",
            "begin_time": _ts(img.created_at) if img else None,
            "end_time": _ts(img.ready_at) if img and status == "SUCCESS" else None,
            "error_code": "IMG.0014" if status == "FAIL" else None,
            "fail_reason": ((img.fail_reason if img else "image deleted") or "failed") if status == "FAIL" else None,
            "entities": {"image_id": image_id, "image_name": img.name if img else None},
        }

    def _find_image(self, account: str, image_id: str) -> Image | None:
        """An image in any region of the account (a copy job's image lives in the destination)."""
        for region in self.model.regions(account):
            found = self.model.list_images(account, region, ids=[image_id])
            if found:
                return found[0]
        return None

    # ---- IMS: delete and tags ------------------------------------------------------------------

    def _delete_image(self, ctx: _Context) -> WireResponse:
        """``delete_backup`` only matters for whole images: others own no user-visible backup."""
        body = ctx.request.json()
        image = self.model.get_image(ctx.account.name, ctx.region, ctx.params["image_id"])
        self.model.delete_image(
            ctx.account.name,
            ctx.region,
            image.image_id,
            delete_snapshots=image.kind != "whole" or bool(body.get("delete_backup")),
        )
        return WireResponse(204)

    def _batch_tags(self, ctx: _Context) -> WireResponse:
        body = ctx.request.json()
        action = body.get("action")
        items = body.get("tags")
        if action not in ("create", "delete") or not isinstance(items, list) or not items:
            raise CloudError("invalid_parameter", "action must be create or delete, with a non-empty tags list")
        tags = _tags_from({"image_tags": items})
        image_id = self.model.get_image(ctx.account.name, ctx.region, ctx.params["image_id"]).image_id
        if action == "create":
            _check_tags({**self.model.get_image(ctx.account.name, ctx.region, image_id).tags, **tags})
            self.model.tag_resources(ctx.account.name, ctx.region, [image_id], tags)
        else:
            self.model.untag_resources(ctx.account.name, ctx.region, [image_id], list(tags))
        return WireResponse(204)

    def _list_image_by_tags(self, ctx: _Context) -> WireResponse:
        """``tags`` (every key, any of its values; no values = key present), ``matches`` on the name."""
        body = ctx.request.json()
        action = body.get("action")
        if action not in ("filter", "count"):
            raise CloudError("invalid_parameter", "action must be filter or count")
        if "tags" in body and not body["tags"]:
            raise CloudError("invalid_parameter", "tags may not be an empty list")  # "不能为空列表"
        wanted = [(t.get("key"), t.get("values") or []) for t in body.get("tags") or [] if isinstance(t, dict)]
        names = [m.get("value") for m in body.get("matches") or [] if m.get("key") == "resource_name"]
        found = [
            img
            for img in self.model.list_images(ctx.account.name, ctx.region, seen=True)
            if all(k in img.tags and (not vals or img.tags[k] in vals) for k, vals in wanted)
            and all(n in img.name for n in names)
        ]
        if action == "count":
            return WireResponse.json(200, {"total_count": len(found)})
        try:
            offset, limit = int(body.get("offset") or 0), int(body.get("limit") or _BY_TAGS_PAGE)
        except (TypeError, ValueError):
            raise CloudError("invalid_parameter", "limit and offset must be integers") from None
        if not 1 <= limit <= _MAX_PAGE or offset < 0:
            raise CloudError("invalid_parameter", f"limit must be 1-{_MAX_PAGE} and offset at least 0")
        resources = [
            {
                "resource_id": i.image_id,
                "resource_name": i.name,
                "resource_detail": {"status": _image_status(i)},
                "tags": [{"key": k, "value": v} for k, v in i.tags.items()],
            }
            for i in found[offset : offset + limit]
        ]
        return WireResponse.json(200, {"resources": resources, "total_count": len(found)})

    # ---- ECS, EVS, IAM -------------------------------------------------------------------------

    def _show_server(self, ctx: _Context) -> WireResponse:
        inst = self.model.get_instance(ctx.account.name, ctx.region, ctx.params["server_id"])
        volumes = [
            {
                "id": d.disk_id,
                "bootIndex": "0" if d.is_system else "-1",
                "device": _device(d),
                "delete_on_termination": "true" if d.is_system else "false",
            }
            for d in inst.disks
        ]
        return WireResponse.json(
            200,
            {
                "server": {
                    "id": inst.instance_id,
                    "name": inst.name,
                    "status": "ACTIVE" if inst.status == "running" else "SHUTOFF",
                    "tenant_id": ctx.project_id,
                    "OS-EXT-AZ:availability_zone": inst.zone,
                    "OS-EXT-SRV-ATTR:root_device_name": _device(inst.system_disk),
                    "os-extended-volumes:volumes_attached": volumes,
                    "metadata": {},
                }
            },
        )

    def _list_block_devices(self, ctx: _Context) -> WireResponse:
        inst = self.model.get_instance(ctx.account.name, ctx.region, ctx.params["server_id"])
        attachments = [
            {
                "id": d.disk_id,
                "volumeId": d.disk_id,
                "serverId": inst.instance_id,
                "device": _device(d),
                "bootIndex": 0 if d.is_system else -1,
                "size": d.size_gb,
                "bus": "virtio",
                "pciAddress": f"0000:02:{n:02x}.0",
            }
            for n, d in enumerate(inst.disks, start=1)
        ]
        return WireResponse.json(
            200,
            {
                "volumeAttachments": attachments,
                "attachableQuantity": {
                    "free_scsi": 60,
                    "free_blk": 24 - len(attachments),
                    "free_disk": 24 - len(attachments),
                },
            },
        )

    def _cloud_volumes(self, ctx: _Context, **filters: Any) -> list[Disk]:
        return [d for d in self.model.list_disks(ctx.account.name, ctx.region, **filters) if d.category == "cloud"]

    def _volume_json(self, ctx: _Context, disk: Disk) -> dict[str, Any]:
        attachments = (
            []
            if disk.instance_id is None
            else [
                {
                    "server_id": disk.instance_id,
                    "attachment_id": disk.disk_id,
                    "volume_id": disk.disk_id,
                    "id": disk.disk_id,
                    "device": _device(disk),
                    "host_name": None,
                    "attached_at": None,
                }
            ]
        )
        return {
            "id": disk.disk_id,
            "name": disk.name or f"volume-{disk.device}",
            "status": "in-use" if attachments else "available",
            "size": disk.size_gb,
            "volume_type": disk.volume_type,
            "bootable": "true" if disk.is_system else "false",
            "encrypted": disk.encrypted,
            "attachments": attachments,
            "multiattach": False,
            "shareable": "false",
            "metadata": {"__system__encrypted": "1" if disk.encrypted else "0"},
            "os-vol-tenant-attr:tenant_id": ctx.project_id,
        }

    def _show_volume(self, ctx: _Context) -> WireResponse:
        found = self._cloud_volumes(ctx, disk_ids=[ctx.params["volume_id"]])
        if not found:  # local disks are no EVS volumes
            raise CloudError("not_found", f"Volume {ctx.params['volume_id']} could not be found.", resource="disk")
        return WireResponse.json(200, {"volume": self._volume_json(ctx, found[0])})

    def _list_volumes(self, ctx: _Context) -> WireResponse:
        """``server_id``, ``id``, ``ids`` (``[a,b]`` or ``a,b``), ``limit``, ``offset``."""
        req = ctx.request
        ids = [i.strip(" '\"") for i in (req.param("ids") or "").strip("[]").split(",") if i.strip(" '\"")]
        if req.param("id"):
            ids.append(req.param("id") or "")
        volumes = self._cloud_volumes(ctx, instance_id=req.param("server_id"), disk_ids=ids or None)
        offset = self._int_param(req, "offset", 0, 0, 1_000_000)
        limit = self._int_param(req, "limit", 1000, 1, 1000)
        page = volumes[offset : offset + limit]
        return WireResponse.json(200, {"volumes": [self._volume_json(ctx, d) for d in page], "count": len(volumes)})

    def _list_projects(self, ctx: _Context) -> WireResponse:
        """IAM KeystoneListProjects: what an SDK built with a region but no project id asks first."""
        name = ctx.request.param("name")
        domain_id = hashlib.md5(ctx.account.name.encode(), usedforsecurity=False).hexdigest()
        projects = [
            {
                "id": pid,
                "name": region,
                "domain_id": domain_id,
                "parent_id": domain_id,
                "enabled": True,
                "is_domain": False,
                "description": "",
            }
            for region, pid in sorted(ctx.account.projects.items())
            if name is None or region == name
        ]
        return WireResponse.json(200, {"projects": projects, "links": {"self": "/v3/projects"}})


_TIME_OPERATORS: dict[str, Callable[[datetime, datetime], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


def _time_filter(text: str) -> Callable[[datetime], bool]:
    """ListImages' ``created_at``: "operator:UTC time", operators gt, gte, lt, lte, eq, neq, times
    ``yyyy-MM-ddThh:mm:ssZ`` or ``yyyy-MM-dd hh:mm:ss`` (huaweicloudsdkims ListImagesRequest.created_at)."""
    operator, _, moment = text.partition(":")
    compare = _TIME_OPERATORS.get(operator)
    try:
        at = datetime.strptime(moment.replace("T", " ").removesuffix("Z"), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        at = None
    if compare is None or at is None:
        raise CloudError("invalid_parameter", f"created_at {text!r} is not operator:yyyy-MM-ddThh:mm:ssZ")
    bound = at.replace(tzinfo=timezone.utc)
    return lambda created: compare(created, bound)
