"""Alibaba Cloud ECS RPC front-end: ``POST /?Action=...`` with a signed query string.

What the real SDK (aliyun-python-sdk-core 2.16.1) sends and parses is recorded in
../shared/reference/cloud-wire-protocols.md §1; what this front-end supports is in
docs/emulator-aliyun.md. Everything Aliyun-specific (status names, ``/dev/xvda`` devices,
``Tag.N.Key`` lists, JSON-array id lists, error codes and HTTP statuses) lives here; the rules
live in the model.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict
from urllib.parse import parse_qsl

from imagebak.emulator.frontends.aliyun_protocol import (
    V3_ALGORITHM,
    V3_REQUIRED_HEADERS,
    parse_v3_authorization,
    region_of_host,
    render,
    v1_sign,
    v1_string_to_sign,
    v3_canonical_request,
    v3_signature,
    v3_unsigned_headers,
    wants_xml,
)
from imagebak.emulator.model import Account, CloudError, Disk, Image, Instance, Snapshot
from imagebak.emulator.wire import Route, RouteMatch, VendorFrontEnd, WireRequest, WireResponse, route

HOST = "ecs.aliyuncs.com"

# Model status -> Aliyun image status. Aliyun also knows Waiting, UnAvailable and Deprecated;
# the model has no state that maps to them, so they can be filtered on but never appear.
IMAGE_STATUS = {"creating": "Creating", "available": "Available", "failed": "CreateFailed"}
INSTANCE_STATUS = {"running": "Running", "stopped": "Stopped"}
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
_DEVICE = re.compile(r"^/dev/x?vd([a-z])$")
# ModifyImageAttribute ImageName: 2-128 characters, starting with a letter or a Chinese character,
# then letters, digits, ".", ":", "_", "-"; not starting with aliyun or acs:, no http(s)://.
_IMAGE_NAME = re.compile(r"^[^\W\d_][\w.:-]{1,127}$")
_BAD_NAME_START = re.compile(r"^(aliyun|acs:|https?://)")
_URL_START = re.compile(r"^https?://")
SHARE_ACCOUNTS_PER_CALL = 10  # ModifyImageSharePermission AddAccount.N / RemoveAccount.N
LIST_TAGS_PAGE = 50  # ListTagResources page size (unconfirmed: the reference names no default)


@dataclass(frozen=True)
class ErrorSpec:
    """An error in Aliyun's terms: HTTP status, ``Code`` and ``Message``."""

    status: int
    code: str
    message: str


class AliyunError(CloudError):
    """A wire-level refusal of the front-end itself (missing parameter, bad signature...), in Aliyun's terms."""

    def __init__(self, spec: ErrorSpec) -> None:
        super().__init__("invalid_parameter", spec.message)
        self.spec = spec


def _err(status: int, code: str, message: str) -> ErrorSpec:
    return ErrorSpec(status, code, message)


def _fail(status: int, code: str, message: str) -> AliyunError:
    return AliyunError(ErrorSpec(status, code, message))


# (kind, detail) -> error; (kind, resource) for lookups; kind alone as the fallback.
# Codes and statuses are the ones the ECS API reference lists for these actions, except where
# docs/emulator-aliyun.md marks them as chosen.
_BY_DETAIL: dict[tuple[str, str], ErrorSpec] = {
    ("invalid_parameter", "missing_system_disk"): _err(
        400,
        "OperationDenied",
        "The specified parameter DiskDeviceMapping.n.SnapshotId does not contain system disk snapshot.",
    ),
    ("invalid_parameter", "duplicate_device"): _err(
        400, "InvalidDevice.InUse", "The specified parameter DiskDeviceMapping.n.Device has been occupied."
    ),
    ("invalid_parameter", "same_region"): _err(
        403, "IncorrectDestinationRegion", "The destination region must differ from the source region."
    ),
    ("invalid_parameter", "unknown_region"): _err(
        404, "InvalidRegionId.NotFound", "The specified RegionId does not exist."
    ),
    ("invalid_status", "image_not_available"): _err(400, "IncorrectImageStatus", "The image not available."),
    ("invalid_status", "image_copying"): _err(
        403, "OperationDenied.ImageCopying", "The specified image is being copied."
    ),
    ("invalid_status", "copy_finished"): _err(400, "IncorrectImageStatus", "The image is copied finished."),
    ("invalid_status", "local_system_disk"): _err(
        400, "InvalidDiskCategory.CreateImage", "The specified diskCategory is not allowed to create image."
    ),
    # Starting, stopping or busy alike: CreateImage/CreateSnapshot "IncorrectInstanceStatus".
    **dict.fromkeys(
        [("invalid_status", "instance_transient"), ("invalid_status", "instance_busy")],
        _err(400, "IncorrectInstanceStatus", "The current status of the instance does not support this operation."),
    ),
    ("invalid_status", "snapshot_in_progress"): _err(
        403, "IncorrectDiskStatus.CreatingSnapshot", "A previous snapshot creation is in process."
    ),
    ("invalid_parameter", "duplicate_name"): _err(
        400, "InvalidImageName.Duplicated", "The specified Image name has already been used."
    ),
    ("invalid_status", "snapshot_not_ready"): _err(
        403,
        "InvalidSnapshotId.NotReady",
        "The current status of the DiskDeviceMapping.n.SnapshotId or SnapshotId does not support this operation.",
    ),
    ("unsupported", "local_disk"): _err(
        403,
        "InvalidDiskCategory.NotSupported",
        "The specified disk category does not support this operation.",
    ),
    ("unsupported", "encrypted_image"): _err(
        403,
        "OperationDeined.EncryptedSnapshot",  # sic: the real code is misspelt
        "The image contains encrypted snapshots, which do not support copying.",
    ),
    ("unsupported", "iso_image"): _err(403, "OperationDenied", "The specified image cannot be copied."),
    ("unsupported", "copy_size_limit"): _err(403, "SizeExceed.Image", "The image exceeds the maximum size."),
    ("unsupported", "whole_image_region"): _err(403, "RegionNotSupportCopy", "The region not support copy."),
    ("invalid_status", "image_shared"): _err(
        403, "ImageUseShared", "The specified image has been shared to others."
    ),  # DeleteImage
    ("invalid_status", "snapshot_in_use"): _err(
        403, "SnapshotCreatedImage", "The snapshot has been used to create user defined image(s)."
    ),  # DeleteSnapshot
    ("unsupported", "encrypted_share"): _err(
        403, "OperationDenied", "Images encrypted with a service key cannot be shared."
    ),  # chosen code
    ("invalid_parameter", "share_self"): _err(
        400, "InvalidAccount.Malformed", "An image cannot be shared with its own account."
    ),  # chosen code
    ("quota_exceeded", "share_accounts"): _err(
        403, "QuotaExceed.ShareImageUser", "The image is shared with the maximum of 50 accounts."
    ),  # chosen code
    ("quota_exceeded", "image"): _err(403, "QuotaExceed.Image", "The Image Quota exceeds."),
    ("quota_exceeded", "snapshot"): _err(403, "QuotaExceed.Snapshot", "The snapshot quota exceeds."),
}
_NOT_FOUND: dict[str | None, ErrorSpec] = {
    "instance": _err(404, "InvalidInstanceId.NotFound", "The specified InstanceId does not exist."),
    "image": _err(404, "InvalidImageId.NotFound", "The specified ImageId does not exist."),
    "snapshot": _err(404, "InvalidSnapshotId.NotFound", "The specified SnapshotId does not exist."),
    "disk": _err(404, "InvalidDiskId.NotFound", "The specified disk does not exist."),
    "region": _err(404, "InvalidRegionId.NotFound", "The specified RegionId does not exist."),
}
_BY_KIND: dict[str, ErrorSpec] = {
    "not_found": _err(404, "InvalidParameter.NotFound", "The specified resource does not exist."),
    "invalid_parameter": _err(400, "InvalidParameter", "The specified parameter is not valid."),
    "invalid_status": _err(
        403, "IncorrectStatus", "The current status of the resource does not support this operation."
    ),
    "unsupported": _err(403, "OperationDenied", "The specified operation is not supported."),
    "quota_exceeded": _err(403, "QuotaExceed", "The quota is exceeded."),
    "limit_exceeded": _err(403, "OperationDenied.TooManyTasks", "Too many tasks are running; try again later."),
    "throttled": _err(400, "Throttling", "Request was denied due to request throttling."),
    "internal": _err(
        500,
        "InternalError",
        "The request processing has failed due to some unknown error, exception or failure.",
    ),
    "unavailable": _err(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
    "auth_failed": _err(403, "Forbidden", "User not authorized to operate on the specified resource."),
}


def aliyun_error(error: CloudError) -> ErrorSpec:
    """Map a model refusal to the error the real ECS API returns for it."""
    if error.detail and (error.kind, error.detail) in _BY_DETAIL:
        return _BY_DETAIL[(error.kind, error.detail)]
    if error.kind == "not_found" and error.resource in _NOT_FOUND:
        return _NOT_FOUND[error.resource]
    return _BY_KIND[error.kind]


# ---- request parsing helpers -------------------------------------------------------------------


def _params(request: WireRequest) -> dict[str, str]:
    """Query plus form-body parameters, last value wins (the SDK signs both)."""
    params = dict(request.query)
    if request.body and request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    return params


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _fail(
            400, "MissingParameter",
            f'The input parameter "{name}" that is mandatory for processing this request is not supplied.',
        )  # fmt: skip
    return value


def _indexed(params: dict[str, str], prefix: str) -> list[dict[str, str]]:
    """``Prefix.N.Field`` repeat lists, ordered by N: ``[{"Field": value, ...}, ...]``."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.(\w+)$")
    items: dict[int, dict[str, str]] = {}
    for key, value in params.items():
        match = pattern.match(key)
        if match:
            items.setdefault(int(match.group(1)), {})[match.group(2)] = value
    return [items[n] for n in sorted(items)]


def _repeated(params: dict[str, str], prefix: str) -> list[str]:
    """``Prefix.N`` repeat lists, ordered by N."""
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)$")
    found = sorted((int(m.group(1)), v) for k, v in params.items() if (m := pattern.match(k)))
    return [v for _, v in found]


def _checked_name(params: dict[str, str], param: str, code: str, reserved: tuple[str, ...] = ()) -> str:
    """An optional name parameter, refused with ``code`` (``Invalid<X>Name.Malformed``) when malformed:
    the image-name rule (CreateImage.ImageName, CopyImage.DestinationImageName, CreateSnapshot.SnapshotName),
    plus prefixes this parameter reserves (snapshot names: "auto", automatic snapshots' names)."""
    name = params.get(param, "")
    if name and (not _IMAGE_NAME.match(name) or _BAD_NAME_START.match(name) or name.startswith(reserved)):
        raise _fail(400, code, f"The specified {param} is wrongly formed.")
    return name


def _checked_description(params: dict[str, str], param: str) -> str:
    """Descriptions: 2-256 characters, not http(s):// first (InvalidDescription.Malformed)."""
    description = params.get(param, "")
    if description and (not 2 <= len(description) <= 256 or _URL_START.match(description)):
        raise _fail(400, "InvalidDescription.Malformed", "The specified description is wrongly formed.")
    return description


def _tags(params: dict[str, str]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in _indexed(params, "Tag") if t.get("Key")}


def _json_ids(params: dict[str, str], name: str) -> list[str] | None:
    """``InstanceIds=["i-1","i-2"]`` style parameters; None when absent."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        ids = json.loads(raw)
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _fail(400, f"Invalid{name}.Malformed", f"The specified parameter {name} is not valid.")
    return ids


def _int(params: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise _fail(400, f"Invalid{name}.Malformed", f"The specified parameter {name} is not valid.")
    return int(raw)


def _page(params: dict[str, str], items: list[Any]) -> tuple[list[Any], dict[str, int]]:
    """PageNumber/PageSize paging, with the counters Aliyun echoes back."""
    number = _int(params, "PageNumber", 1, 1_000_000)
    size = _int(params, "PageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = (number - 1) * size
    return items[start : start + size], {"TotalCount": len(items), "PageNumber": number, "PageSize": size}


def _device_from_wire(raw: str) -> str:
    """``/dev/xvda`` (or ``/dev/vda``) -> ``vda``."""
    match = _DEVICE.match(raw)
    if not match:
        raise _fail(400, "InvalidDevice.Malformed", "The specified parameter DiskDeviceMapping.n.Device is not valid.")
    return f"vd{match.group(1)}"


def _device_to_wire(device: str) -> str:
    return f"/dev/x{device}"


def _time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _tag_list(tags: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    return {"Tag": [{"TagKey": k, "TagValue": v} for k, v in tags.items()]}


def _disk_category(disk: Disk) -> str:
    """Aliyun category names: a fixture may give one as volume_type; otherwise a typical one."""
    prefixes = ("local", "ephemeral") if disk.category == "local" else ("cloud",)
    if disk.volume_type.startswith(prefixes):
        return disk.volume_type
    return "local_ssd_pro" if disk.category == "local" else "cloud_essd"


# ---- response formatting -----------------------------------------------------------------------


def _instance_json(inst: Instance) -> dict[str, Any]:
    return {
        "InstanceId": inst.instance_id,
        "InstanceName": inst.name,
        "RegionId": inst.region,
        "ZoneId": inst.zone,
        "Status": INSTANCE_STATUS.get(inst.status, inst.status.capitalize()),
    }


def _disk_json(disk: Disk, region: str, zone: str) -> dict[str, Any]:
    return {
        "DiskId": disk.disk_id,
        "DiskName": disk.name,
        "InstanceId": disk.instance_id or "",
        "RegionId": region,
        "ZoneId": zone,
        "Type": "system" if disk.is_system else "data",
        "Category": _disk_category(disk),
        "Size": disk.size_gb,
        "Device": _device_to_wire(disk.device),
        "Encrypted": disk.encrypted,
        "Portable": disk.category == "cloud" and not disk.is_system,
        "Status": "In_use",
    }


def _image_json(img: Image) -> dict[str, Any]:
    return {
        "ImageId": img.image_id,
        "ImageName": img.name,
        "Description": img.description,
        "Status": IMAGE_STATUS[img.status],
        "Progress": f"{img.progress}%",
        "Size": img.size_gb,
        "IsCopied": img.source_image_id is not None,
        "ImageOwnerAlias": "self",
        "CreationTime": _time(img.created_at),
        "Architecture": "x86_64",
        "OSType": "linux",
        "Tags": _tag_list(img.tags),
        "DiskDeviceMappings": {
            "DiskDeviceMapping": [
                {
                    "SnapshotId": d.snapshot_id,
                    "Device": _device_to_wire(d.device),
                    "Type": "system" if d.is_system else "data",
                    "Size": str(d.size_gb),
                }
                for d in img.disks
            ]
        },
    }


def _source_disk_type(snap: Snapshot) -> str:
    return "system" if snap.device == "vda" else "data"


def _snapshot_json(snap: Snapshot) -> dict[str, Any]:
    return {
        "SnapshotId": snap.snapshot_id,
        "SnapshotName": snap.name,
        "Status": snap.status,
        "Progress": f"{snap.progress}%",
        "SourceDiskId": snap.disk_id,
        "SourceDiskSize": str(snap.size_gb),
        "SourceDiskType": _source_disk_type(snap),
        "Encrypted": snap.encrypted,
        "CreationTime": _time(snap.created_at),
        "Tags": _tag_list(snap.tags),
    }


# ---- the front-end -----------------------------------------------------------------------------

Handler = Callable[[Account, str, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class _Api:
    """An action's handler and whether the API reference lists ``RegionId`` for it (required then).

    Actions without one (CreateSnapshot, DeleteSnapshot, DescribeRegions) get the region of the
    request's host when it names one of the account's (``ecs.<region>.aliyuncs.com``), else "".
    """

    call: Handler
    regional: bool = True


class _ImageArgs(TypedDict):
    """What CreateImage passes to the model whichever way it images."""

    name: str
    description: str
    tags: dict[str, str]
    client_token: str | None


def _action_name(request: WireRequest) -> str:
    """V3 names the action in ``x-acs-action``, V1 in the ``Action`` parameter."""
    return request.headers.get("x-acs-action") or _params(request).get("Action", "")


def _log_message(message: str) -> str:
    """A refusal message for the request log, without the echoed string-to-sign."""
    return message.split(" server string to sign is:", 1)[0]


class FrontEnd(VendorFrontEnd[_Api]):
    """Aliyun ECS 2014-05-26 RPC over the shared CloudModel: routed by the action name."""

    vendor = "aliyun"
    recognises = "aliyun: an Action parameter, an x-acs-action header or an ACS3-* Authorization"

    def routes(self) -> list[Route[_Api]]:
        regional: dict[str, Handler] = {
            "DescribeInstances": self._describe_instances,
            "DescribeDisks": self._describe_disks,
            "CreateImage": self._create_image,
            "DescribeSnapshots": self._describe_snapshots,
            "DescribeImages": self._describe_images,
            "CopyImage": self._copy_image,
            "CancelCopyImage": self._cancel_copy_image,
            "DeleteImage": self._delete_image,
            "TagResources": self._tag_resources,
            "UntagResources": self._untag_resources,
            "ListTagResources": self._list_tag_resources,
            "ModifyImageAttribute": self._modify_image_attribute,
            "DescribeImageSharePermission": self._describe_image_share_permission,
            "ModifyImageSharePermission": self._modify_image_share_permission,
        }
        global_: dict[str, Handler] = {
            "CreateSnapshot": self._create_snapshot,
            "DeleteSnapshot": self._delete_snapshot,
            "DescribeRegions": self._describe_regions,
        }
        return [route(None, a, a, _Api(h)) for a, h in regional.items()] + [
            route(None, a, a, _Api(h, regional=False)) for a, h in global_.items()
        ]

    def matches(self, request: WireRequest) -> bool:
        return (
            any(key == "Action" for key, _ in request.query)
            or "x-acs-action" in request.headers
            or request.headers.get("authorization", "").startswith("ACS3-")
        )

    def action(self, request: WireRequest) -> str:
        return _action_name(request) or "Unknown"

    def route_target(self, request: WireRequest) -> str:
        return _action_name(request)

    def serve(self, request: WireRequest, found: RouteMatch[_Api] | None) -> WireResponse:
        """Signature first, then the action, then the region: the order the real gateway checks them."""
        params = _params(request)
        account = self._authenticate(request, params)
        if found is None:
            raise _fail(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        api = found.route.handler
        if api.regional:
            region = _required(params, "RegionId")
            if region not in self.model.regions(account.name):
                raise AliyunError(_NOT_FOUND["region"])
        else:
            host_region = region_of_host(request.headers.get("host", ""))
            region = host_region if host_region in self.model.regions(account.name) else ""
        body = api.call(account, region, params)
        payload = {"RequestId": request.request_id, **body}
        content, content_type = render(f"{self.action(request)}Response", payload, wants_xml(params))
        return WireResponse(200, content, {"Content-Type": content_type})

    def format_error(self, request: WireRequest, error: CloudError) -> WireResponse:
        """Aliyun's error body (JSON or, with ``Format=XML``, ``<Error>``); SDKs read Code, Message, RequestId."""
        spec = error.spec if isinstance(error, AliyunError) else aliyun_error(error)
        region = request.param("RegionId")
        payload = {
            "RequestId": request.request_id,
            "HostId": f"ecs.{region}.aliyuncs.com" if region else HOST,
            "Code": spec.code,
            "Message": spec.message,
        }
        xml = wants_xml(_params(request))
        if not xml:
            payload["Recommend"] = (
                f"https://api.aliyun.com/troubleshoot?q={spec.code}&product=Ecs&requestId={request.request_id}"
            )
        content, content_type = render("Error", payload, xml)
        return WireResponse(spec.status, content, {"Content-Type": content_type})

    def refusal_reason(self, error: CloudError) -> str:
        if isinstance(error, AliyunError):
            return f"{error.spec.code}: {_log_message(error.spec.message)}"
        return f"{aliyun_error(error).code}: {error.message}"

    # ---- authentication ---------------------------------------------------------------------

    def _authenticate(self, request: WireRequest, params: dict[str, str]) -> Account:
        """Signature V3 when the request has an ACS3 Authorization header, else signature V1."""
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("ACS3-"):
            return self._authenticate_v3(request, authorization)
        return self._authenticate_v1(request, params)

    def _account(self, key_id: str) -> Account:
        account = self.model.account_by_key(self.vendor, key_id)
        if account is None:
            raise _fail(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        return account

    def _authenticate_v1(self, request: WireRequest, params: dict[str, str]) -> Account:
        """Check the RPC ``Signature`` parameter the way the real gateway does, before anything else."""
        signature = params.pop("Signature", None)
        if not signature:
            raise _fail(
                400, "MissingSignature",
                'The input parameter "Signature" that is mandatory for processing this request '
                "is not supplied.",
            )  # fmt: skip
        account = self._account(_required(params, "AccessKeyId"))
        if not hmac.compare_digest(v1_sign(request.method, params, account.secret), signature):
            # Echoing the server's string-to-sign lets the SDK tell a wrong secret
            # (InvalidAccessKeySecret) from a mangled request, as it does against the cloud.
            raise _fail(
                400, "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. server string to sign is:"
                + v1_string_to_sign(request.method, params),
            )  # fmt: skip
        return account

    def _authenticate_v3(self, request: WireRequest, authorization: str) -> Account:
        """ACS3-HMAC-SHA256: the canonical request over method, path, query, signed headers and body hash."""
        auth = parse_v3_authorization(authorization)
        if auth is None or auth.algorithm != V3_ALGORITHM:
            raise _fail(
                400, "IncompleteSignature",
                f"The request signature does not conform to Aliyun standards: the emulator accepts "
                f"'{V3_ALGORITHM} Credential=...,SignedHeaders=...,Signature=...'.",
            )  # fmt: skip
        missing = [h for h in V3_REQUIRED_HEADERS if not request.headers.get(h)]
        if missing:
            raise _fail(
                400, "MissingParameter",
                f'The input parameter "{missing[0]}" that is mandatory for processing this request is not supplied.',
            )  # fmt: skip
        unsigned = v3_unsigned_headers(request.headers, auth.signed_headers)
        if unsigned:
            raise _fail(
                400, "IncompleteSignature",
                f"The request signature does not conform to Aliyun standards: header(s) {', '.join(unsigned)} "
                "must be signed.",
            )  # fmt: skip
        account = self._account(auth.access_key_id)
        payload_hash = hashlib.sha256(request.body).hexdigest()
        canonical = v3_canonical_request(
            request.method, request.path, request.raw_query, request.headers, auth.signed_headers, payload_hash
        )
        if request.headers["x-acs-content-sha256"].lower() != payload_hash or not hmac.compare_digest(
            v3_signature(account.secret, canonical), auth.signature
        ):
            raise _fail(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation.")
        return account

    def _region_of(self, account: Account, region: str, probe: Callable[[str], object]) -> str:
        """``region`` if given, else the first of the account's regions where ``probe`` finds the resource."""
        if region:
            return region
        missing: CloudError | None = None
        for candidate in self.model.regions(account.name):
            try:
                probe(candidate)
            except CloudError as error:
                if error.kind != "not_found":
                    raise
                missing = missing or error
                continue
            return candidate
        assert missing is not None  # every account has a region
        raise missing

    # ---- actions ----------------------------------------------------------------------------

    def _describe_instances(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        ids = _json_ids(params, "InstanceIds")
        if ids is not None and len(ids) > MAX_PAGE_SIZE:  # "最多支持100个ID" (the error code is unconfirmed)
            raise _fail(400, "InvalidInstanceIds.Malformed", "The specified parameter InstanceIds is not valid.")
        found = self.model.list_instances(account.name, region, ids)
        page, paging = _page(params, found)
        return {**paging, "Instances": {"Instance": [_instance_json(i) for i in page]}}

    def _describe_disks(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        disks = self.model.list_disks(
            account.name, region, params.get("InstanceId") or None, _json_ids(params, "DiskIds")
        )
        page, paging = _page(params, disks)
        owners = sorted({d.instance_id for d in page if d.instance_id})
        zones = {i.instance_id: i.zone for i in self.model.list_instances(account.name, region, owners)}
        return {
            **paging,
            "Disks": {"Disk": [_disk_json(d, region, zones.get(d.instance_id or "", "")) for d in page]},
        }

    def _create_image(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """By InstanceId (every cloud disk), else DiskDeviceMapping, else SnapshotId: Aliyun's precedence."""
        common: _ImageArgs = {
            "name": _checked_name(params, "ImageName", "InvalidImageName.Malformed"),
            "description": _checked_description(params, "Description"),
            "tags": _tags(params),
            "client_token": params.get("ClientToken") or None,
        }
        if params.get("InstanceId"):
            img = self.model.create_image(account.name, region, params["InstanceId"], **common)
        else:
            mappings = self._snapshot_mappings(params)
            img = self.model.create_image_from_snapshots(account.name, region, mappings, **common)
        return {"ImageId": img.image_id}

    @staticmethod
    def _snapshot_mappings(params: dict[str, str]) -> list[tuple[str, str]]:
        """``DiskDeviceMapping.N`` as (snapshot id, device); without Device the system disk is vda."""
        mappings: list[tuple[str, str]] = []
        for entry in _indexed(params, "DiskDeviceMapping"):
            snapshot_id = entry.get("SnapshotId")
            if not snapshot_id:
                continue
            if entry.get("Device"):
                device = _device_from_wire(entry["Device"])
            elif entry.get("DiskType", "system" if not mappings else "data") == "system":
                device = "vda"
            else:
                used = {d for _, d in mappings}
                device = next(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"vd{c}" not in used)
            mappings.append((snapshot_id, device))
        if not mappings and params.get("SnapshotId"):
            mappings.append((params["SnapshotId"], "vda"))
        if not mappings:
            raise _fail(
                400, "MissingParameter",
                "The input parameter SnapshotId or InstanceId or DiskDeviceMapping that is mandatory "
                "for processing this request is not supplied.",
            )  # fmt: skip
        return mappings

    def _create_snapshot(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """No ``RegionId`` in the API: the disk's region (or the one of the endpoint the request went to)."""
        disk_id = _required(params, "DiskId")
        region = self._region_of(account, region, lambda r: self.model.get_disk(account.name, r, disk_id))
        snap = self.model.create_snapshot(
            account.name,
            region,
            disk_id,
            name=_checked_name(params, "SnapshotName", "InvalidSnapshotName.Malformed", reserved=("auto",)),
            tags=_tags(params),
            client_token=params.get("ClientToken") or None,
        )
        return {"SnapshotId": snap.snapshot_id}

    def _describe_snapshots(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """``SnapshotIds``, ``DiskId``, ``InstanceId``, ``Status``, ``SnapshotName``, ``SourceDiskType``,
        ``Usage``, ``Encrypted`` and ``Tag.N`` filters, all of them at once."""
        found = self.model.list_snapshots(
            account.name, region, _json_ids(params, "SnapshotIds"), params.get("DiskId") or None, seen=True
        )
        usage = self._snapshot_usage(account, region)
        wanted_tags = _tags(params)
        instance_id = params.get("InstanceId")
        disks = {d.disk_id for d in self.model.list_disks(account.name, region, instance_id)} if instance_id else None
        status = params.get("Status") or "all"
        checks: list[Callable[[Snapshot], bool]] = [
            lambda s: status == "all" or s.status == status,
            lambda s: disks is None or s.disk_id in disks,
            lambda s: params.get("SnapshotName") in (None, "", s.name),
            lambda s: params.get("SourceDiskType", "").lower() in ("", _source_disk_type(s)),
            lambda s: params.get("Usage") in (None, "", usage.get(s.snapshot_id, "none")),
            lambda s: params.get("Encrypted", "").lower() in ("", str(s.encrypted).lower()),
            lambda s: all(s.tags.get(k) == v for k, v in wanted_tags.items()),
        ]
        found = [s for s in found if all(check(s) for check in checks)]
        page, paging = _page(params, found)
        snapshots = [{**_snapshot_json(s), "Usage": usage.get(s.snapshot_id, "none")} for s in page]
        return {**paging, "Snapshots": {"Snapshot": snapshots}}

    def _snapshot_usage(self, account: Account, region: str) -> dict[str, str]:
        """``image`` for every snapshot an image of the region uses (the emulator makes no disks from snapshots)."""
        return {d.snapshot_id: "image" for img in self.model.list_images(account.name, region) for d in img.disks}

    def _delete_snapshot(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """An unknown snapshot is ignored; one an image uses is refused whatever ``Force`` says
        (``Force`` only concerns snapshots that made disks, which the emulator never does)."""
        snapshot_id = _required(params, "SnapshotId")
        try:
            region = self._region_of(account, region, lambda r: self.model.get_snapshot(account.name, r, snapshot_id))
        except CloudError as error:
            if error.kind == "not_found":
                return {}
            raise
        self.model.delete_snapshot(account.name, region, snapshot_id)
        return {}

    def _describe_images(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """Custom images only; without ``Status`` only Available ones are listed, as on the cloud."""
        if params.get("ImageOwnerAlias", "self") not in ("self", ""):
            found: list[Image] = []
        else:
            ids = [i for i in params.get("ImageId", "").split(",") if i] or None
            found = self.model.list_images(
                account.name, region, ids=ids, tags=_tags(params), name=params.get("ImageName") or None, seen=True
            )
        statuses = set((params.get("Status") or "Available").split(","))
        found = [img for img in found if IMAGE_STATUS[img.status] in statuses]
        page, paging = _page(params, found)
        return {**paging, "RegionId": region, "Images": {"Image": [_image_json(img) for img in page]}}

    def _copy_image(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        image_id = _required(params, "ImageId")
        dest = _required(params, "DestinationRegionId")
        if dest not in self.model.regions(account.name):
            raise _fail(400, "DestinationRegion.NotFound", "The destination region not found")
        name = _checked_name(params, "DestinationImageName", "InvalidImageName.Malformed")
        description = _checked_description(params, "DestinationDescription")
        name = name or self.model.get_image(account.name, region, image_id).name
        img = self.model.copy_image(
            account.name, region, image_id, dest,
            name=name, description=description, tags=_tags(params),
            client_token=params.get("ClientToken") or None,
        )  # fmt: skip
        return {"ImageId": img.image_id}

    def _cancel_copy_image(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """``RegionId`` is the destination region; only a copy's target image can be cancelled."""
        image_id = _required(params, "ImageId")
        if self.model.get_image(account.name, region, image_id).source_image_id is None:
            raise _fail(
                400,
                "ImageCreatedNotFromCopy",
                "The specified image is not the target image of a copy action.",
            )
        self.model.cancel_copy(account.name, region, image_id)
        return {}

    def _delete_image(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """An image still being created (or copied here) is refused: ``ImageIsCreating`` (DeleteImage error
        codes; a copy in progress is cancelled with CancelCopyImage). Its snapshots stay, as on the cloud.
        ``Force`` only skips the in-use-by-instance check, and no emulated instance uses an image."""
        image = self.model.get_image(account.name, region, _required(params, "ImageId"))
        if image.status == "creating" and not image.shared_with:  # a shared one: ImageUseShared (the model's)
            raise _fail(403, "ImageIsCreating", "The specified image is being created.")
        self.model.delete_image(account.name, region, image.image_id, delete_snapshots=False)
        return {}

    def _tag_resources(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        if _required(params, "ResourceType").lower() not in ("image", "snapshot"):
            raise _fail(400, "InvalidResourceType.NotSupported", "The specified ResourceType is not supported.")
        ids = _repeated(params, "ResourceId")
        tags = _tags(params)
        if not ids or not tags:
            raise _fail(400, "MissingParameter", 'The input parameter "ResourceId.N" or "Tag.N" is not supplied.')
        self.model.tag_resources(account.name, region, ids, tags)
        return {}

    def _taggable_ids(self, params: dict[str, str]) -> list[str]:
        """``ResourceType`` must be image or snapshot (the only tagged resources here); ``ResourceId.N``."""
        if _required(params, "ResourceType").lower() not in ("image", "snapshot"):
            raise _fail(400, "InvalidResourceType.NotSupported", "The specified ResourceType is not supported.")
        return _repeated(params, "ResourceId")

    def _untag_resources(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """``TagKey.N`` removes those keys; without any, ``All=true`` removes every tag."""
        ids = self._taggable_ids(params)
        if not ids:
            raise _fail(400, "MissingParameter", 'The input parameter "ResourceId.N" is not supplied.')
        keys = _repeated(params, "TagKey")
        if not keys and params.get("All", "").lower() == "true":
            keys = sorted({k for rid in ids for k in self._tags_of(account, region, rid)})
        self.model.untag_resources(account.name, region, ids, keys)
        return {}

    def _tags_of(self, account: Account, region: str, resource_id: str) -> dict[str, str]:
        images = self.model.list_images(account.name, region, ids=[resource_id])
        if images:
            return images[0].tags
        return self.model.get_snapshot(account.name, region, resource_id).tags

    def _list_tag_resources(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """One ``TagResource`` per (resource, tag); ``ResourceId.N`` and ``Tag.N`` (a key, or key and value)
        narrow it; ``NextToken`` pages by 50."""
        resource_type = _required(params, "ResourceType").lower()
        ids = self._taggable_ids(params)
        wanted = [(t["Key"], t.get("Value")) for t in _indexed(params, "Tag") if t.get("Key")]
        tagged: list[Image | Snapshot] = (
            list(self.model.list_images(account.name, region))
            if resource_type == "image"
            else list(self.model.list_snapshots(account.name, region))
        )
        rows = [
            {
                "ResourceId": entity.image_id if isinstance(entity, Image) else entity.snapshot_id,
                "ResourceType": resource_type,
                "TagKey": key,
                "TagValue": value,
            }
            for entity in reversed(tagged)
            if all(k in entity.tags and v in (None, entity.tags[k]) for k, v in wanted)
            for key, value in entity.tags.items()
        ]
        rows = [r for r in rows if not ids or r["ResourceId"] in ids]
        start = int(params["NextToken"]) if params.get("NextToken", "").isdigit() else 0
        page = rows[start : start + LIST_TAGS_PAGE]
        more = start + LIST_TAGS_PAGE < len(rows)
        return {"NextToken": str(start + LIST_TAGS_PAGE) if more else "", "TagResources": {"TagResource": page}}

    def _describe_regions(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """The account's regions; ``AcceptLanguage``, ``ResourceType`` and ``InstanceChargeType`` change nothing."""
        regions = [
            {"RegionId": r, "LocalName": r, "RegionEndpoint": f"ecs.{r}.aliyuncs.com", "Status": "available"}
            for r in self.model.regions(account.name)
        ]
        return {"Regions": {"Region": regions}}

    def _modify_image_attribute(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """``ImageName`` and ``Description`` (absent = kept); ``Status`` other than Available is not emulated."""
        image_id = _required(params, "ImageId")
        name, description = params.get("ImageName"), params.get("Description")
        if name is not None and (not _IMAGE_NAME.match(name) or _BAD_NAME_START.match(name)):
            raise _fail(400, "InvalidImageName.Malformed", "The specified parameter ImageName is not valid.")
        if description is not None and (not 2 <= len(description) <= 256 or _URL_START.match(description)):
            raise _fail(400, "InvalidDescription.Malformed", "The specified parameter Description is not valid.")
        if params.get("Status") not in (None, "", "Available"):
            raise _fail(400, "InvalidParameter", "The emulator does not model deprecated images.")
        self.model.modify_image(account.name, region, image_id, name=name, description=description)
        return {}

    def _describe_image_share_permission(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        image = self.model.get_image(account.name, region, _required(params, "ImageId"))
        accounts = [{"AliyunId": k, "SharedTime": v} for k, v in image.shared_with.items()]
        page, paging = _page(params, accounts)
        return {
            **paging,
            "ImageId": image.image_id,
            "RegionId": region,
            "ShareGroups": {"ShareGroup": []},
            "Accounts": {"Account": page},
        }

    def _modify_image_share_permission(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """``AddAccount.N`` / ``RemoveAccount.N``: only the first 10 of each count, as documented."""
        image_id = _required(params, "ImageId")
        if params.get("IsPublic", "").lower() == "true":
            raise _fail(403, "OperationDenied", "The emulator does not model community images.")
        add = _repeated(params, "AddAccount")[:SHARE_ACCOUNTS_PER_CALL]
        remove = _repeated(params, "RemoveAccount")[:SHARE_ACCOUNTS_PER_CALL]
        self.model.share_image(account.name, region, image_id, add=add, remove=remove)
        return {}
