"""Alibaba Cloud ECS RPC front-end: ``POST /?Action=...`` with a signed query string.

What the real SDK (aliyun-python-sdk-core 2.16.1) sends and parses is recorded in
../shared/reference/cloud-wire-protocols.md §1; what this front-end supports is in
docs/emulator-aliyun.md. Everything Aliyun-specific (status names, ``/dev/xvda`` devices,
``Tag.N.Key`` lists, JSON-array id lists, error codes and HTTP statuses) lives here; the rules
live in the model.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict
from urllib.parse import parse_qsl, quote

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
# Names (ECS API reference CreateImage.ImageName, CopyImage.DestinationImageName, CreateSnapshot.SnapshotName):
# 2-128 characters, starting with a letter or a Chinese character, then letters, digits, Chinese, ':', '_',
# '.' or '-'; never starting with http:// or https:// (nor aliyun / acs:, as Aliyun reserves them), and
# snapshot names never with "auto" (automatic snapshots' names). Descriptions: 2-256, not http(s)://.
_NAME_RE = re.compile(r"[^\W\d_][\w:.\-]{1,127}")
_RESERVED_PREFIXES = ("http://", "https://", "aliyun", "acs:")
_DESCRIPTION_MAX = 256


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
    ("invalid_status", "snapshot_in_use"): _err(
        403, "SnapshotCreatedImage", "The snapshot has been used to create user defined image(s)."
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


# ---- signature ---------------------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's RPC signature defines it (space -> %20, ``~`` kept)."""
    return quote(value, safe="-_.~")


def string_to_sign(method: str, params: dict[str, str]) -> str:
    """``METHOD&%2F&`` + the encoded, key-sorted query (aliyunsdkcore rpc_signature_composer)."""
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&%2F&{percent_encode(canonical)}"


def sign(method: str, params: dict[str, str], secret: str) -> str:
    """Base64 HMAC-SHA1 keyed with ``secret + "&"``: what the SDK puts in ``Signature``."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


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
    """An optional name parameter, refused with ``code`` (``Invalid<X>Name.Malformed``) when malformed."""
    name = params.get(param, "")
    lowered = name.lower()
    if name and (not _NAME_RE.fullmatch(name) or lowered.startswith(_RESERVED_PREFIXES + reserved)):
        raise _fail(400, code, f"The specified {param} is wrongly formed.")
    return name


def _checked_description(params: dict[str, str], param: str) -> str:
    description = params.get(param, "")
    if description and (
        not 2 <= len(description) <= _DESCRIPTION_MAX or description.lower().startswith(("http://", "https://"))
    ):
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


def _snapshot_json(snap: Snapshot) -> dict[str, Any]:
    return {
        "SnapshotId": snap.snapshot_id,
        "SnapshotName": snap.name,
        "Status": snap.status,
        "Progress": f"{snap.progress}%",
        "SourceDiskId": snap.disk_id,
        "SourceDiskSize": str(snap.size_gb),
        "SourceDiskType": "system" if snap.device == "vda" else "data",
        "Encrypted": snap.encrypted,
        "CreationTime": _time(snap.created_at),
        "Tags": _tag_list(snap.tags),
    }


# ---- the front-end -----------------------------------------------------------------------------

Handler = Callable[[Account, str, dict[str, str]], dict[str, Any]]


class _ImageArgs(TypedDict):
    """What CreateImage passes to the model whichever way it images."""

    name: str
    description: str
    tags: dict[str, str]
    client_token: str | None


class FrontEnd(VendorFrontEnd[Handler]):
    """Aliyun ECS 2014-05-26 RPC over the shared CloudModel: routed by the ``Action`` parameter."""

    vendor = "aliyun"

    def routes(self) -> list[Route[Handler]]:
        handlers: dict[str, Handler] = {
            "DescribeInstances": self._describe_instances,
            "DescribeDisks": self._describe_disks,
            "CreateImage": self._create_image,
            "CreateSnapshot": self._create_snapshot,
            "DescribeSnapshots": self._describe_snapshots,
            "DescribeImages": self._describe_images,
            "CopyImage": self._copy_image,
            "CancelCopyImage": self._cancel_copy_image,
            "DeleteImage": self._delete_image,
            "DeleteSnapshot": self._delete_snapshot,
            "TagResources": self._tag_resources,
        }
        return [route(None, action, action, handler) for action, handler in handlers.items()]

    def matches(self, request: WireRequest) -> bool:
        return any(key == "Action" for key, _ in request.query)

    def action(self, request: WireRequest) -> str:
        return request.param("Action") or "Unknown"

    def route_target(self, request: WireRequest) -> str:
        return _params(request).get("Action", "")

    def serve(self, request: WireRequest, found: RouteMatch[Handler] | None) -> WireResponse:
        """Signature first, then the action, then the region: the order the real gateway checks them."""
        params = _params(request)
        account = self._authenticate(request, params)
        if found is None:
            raise _fail(404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        region = _required(params, "RegionId")
        if region not in self.model.regions(account.name):
            raise AliyunError(_NOT_FOUND["region"])
        body = found.route.handler(account, region, params)
        return WireResponse.json(200, {"RequestId": request.request_id, **body})

    def format_error(self, request: WireRequest, error: CloudError) -> WireResponse:
        """Aliyun's error body; the SDK reads ``Code``, ``Message`` and ``RequestId`` from it."""
        spec = error.spec if isinstance(error, AliyunError) else aliyun_error(error)
        region = request.param("RegionId")
        return WireResponse.json(
            spec.status,
            {
                "RequestId": request.request_id,
                "HostId": f"ecs.{region}.aliyuncs.com" if region else HOST,
                "Code": spec.code,
                "Message": spec.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={spec.code}&product=Ecs"
                f"&requestId={request.request_id}",
            },
        )

    def _authenticate(self, request: WireRequest, params: dict[str, str]) -> Account:
        """Check the RPC signature the way the real gateway does, before anything else."""
        signature = params.pop("Signature", None)
        if not signature:
            raise _fail(
                400, "MissingSignature",
                'The input parameter "Signature" that is mandatory for processing this request '
                "is not supplied.",
            )  # fmt: skip
        key_id = _required(params, "AccessKeyId")
        account = self.model.account_by_key(self.vendor, key_id)
        if account is None:
            raise _fail(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if not hmac.compare_digest(sign(request.method, params, account.secret), signature):
            # Echoing the server's string-to-sign lets the SDK tell a wrong secret
            # (InvalidAccessKeySecret) from a mangled request, as it does against the cloud.
            raise _fail(
                400, "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. server string to sign is:"
                + string_to_sign(request.method, params),
            )  # fmt: skip
        return account

    # ---- actions ----------------------------------------------------------------------------

    def _describe_instances(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        found = self.model.list_instances(account.name, region, _json_ids(params, "InstanceIds"))
        page, paging = _page(params, found)
        return {**paging, "Instances": {"Instance": [_instance_json(i) for i in page]}}

    def _describe_disks(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        zones = {i.instance_id: i.zone for i in self.model.list_instances(account.name, region)}
        disks = self.model.list_disks(
            account.name, region, params.get("InstanceId") or None, _json_ids(params, "DiskIds")
        )
        page, paging = _page(params, disks)
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
        snap = self.model.create_snapshot(
            account.name,
            region,
            _required(params, "DiskId"),
            name=_checked_name(params, "SnapshotName", "InvalidSnapshotName.Malformed", reserved=("auto",)),
            tags=_tags(params),
            client_token=params.get("ClientToken") or None,
        )
        return {"SnapshotId": snap.snapshot_id}

    def _describe_snapshots(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        found = self.model.list_snapshots(
            account.name, region, _json_ids(params, "SnapshotIds"), params.get("DiskId") or None, seen=True
        )
        status = params.get("Status", "all") or "all"
        found = [s for s in found if status == "all" or s.status == status]
        page, paging = _page(params, found)
        return {**paging, "Snapshots": {"Snapshot": [_snapshot_json(s) for s in page]}}

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
        if image.status == "creating":
            raise _fail(403, "ImageIsCreating", "The specified image is being created.")
        self.model.delete_image(account.name, region, image.image_id, delete_snapshots=False)
        return {}

    def _delete_snapshot(self, account: Account, region: str, params: dict[str, str]) -> dict[str, Any]:
        """A snapshot an image is made from is refused: ``SnapshotCreatedImage`` (DeleteSnapshot error codes)."""
        self.model.delete_snapshot(account.name, region, _required(params, "SnapshotId"))
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
