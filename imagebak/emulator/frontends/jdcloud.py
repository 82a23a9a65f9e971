"""JD Cloud front-end: the VM service and the disk service, REST paths under ``/v1/regions/{r}/``.

What jdcloud_sdk 1.6.354 sends and parses is recorded in
../shared/reference/cloud-wire-protocols.md §3; what this front-end supports is in
docs/emulator-jdcloud.md. JD specifics live here: ``:verb`` paths, ``name.N`` and
``filters.N.values.M`` query lists, JSON bodies with explicit nulls, the JDCLOUD3-HMAC-SHA256
signature, ``requestId`` beside ``result``/``error``, image status names and error statuses.
The rules live in the model.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote_plus

from imagebak.emulator.model import Account, CloudError, CloudModel, Disk, Image, ImageDisk, Instance
from imagebak.emulator.rules import rules_for
from imagebak.emulator.wire import Route, RouteMatch, VendorFrontEnd, WireRequest, WireResponse, route

VENDOR = "jdcloud"
ALGORITHM = "JDCLOUD3-HMAC-SHA256"
SCOPE_TERMINATOR = "jdcloud3_request"

# Model status -> JD image status. JD documents only "ready"; "pending" (being created), "copying"
# (a cross-region copy in progress) and "error" (failed) are this emulator's choice.
IMAGE_CREATING, IMAGE_COPYING, IMAGE_READY, IMAGE_ERROR = "pending", "copying", "ready", "error"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
NAME_RE = re.compile(r"^[\w.\-]{2,32}$")  # letters, digits, CJK, '_', '-', '.'
COPY_NAME_RE = re.compile(r"^[\w.\-]{1,32}$")
DESCRIPTION_MAX = 256
_AUTH_RE = re.compile(r"^JDCLOUD3-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]+)$")

# CloudError kind -> (HTTP code, JD status), from JD's common error table
# (docs.jdcloud.com/cn/common-declaration/api/error-codes).
_ERRORS: dict[str, tuple[int, str]] = {
    "not_found": (404, "NOT_FOUND"),
    "invalid_parameter": (400, "INVALID_ARGUMENT"),
    "invalid_status": (400, "FAILED_PRECONDITION"),
    "unsupported": (400, "FAILED_PRECONDITION"),
    "quota_exceeded": (429, "QUOTA_EXCEEDED"),
    "limit_exceeded": (409, "ABORTED"),
    "throttled": (429, "RATE_LIMIT"),
    "internal": (500, "INTERNAL"),
    "unavailable": (503, "UNAVAILABLE"),
    "auth_failed": (401, "UNAUTHENTICATED"),
}

# Messages of the createImage error table (docs.jdcloud.com/cn/virtual-machines/api/createimage):
# "Conflict with underlay task xx" — 云主机实例正在执行其它任务，请稍后再试; "Invalid instance status xx".
_MESSAGES = {
    "instance_busy": "Conflict with underlay task, please try again later (云主机实例正在执行其它任务，请稍后再试)",
    "instance_transient": "Invalid instance status",
}

Handler = Callable[[Account, str, str, WireRequest], dict[str, Any] | None]


def _invalid(message: str, detail: str | None = None) -> CloudError:
    return CloudError("invalid_parameter", message, detail=detail)


# -- signature ---------------------------------------------------------------------------------


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_uri(path: str) -> str:
    """The SDK's canonical path: decoded, slashes collapsed, re-encoded keeping '/' and '~'."""
    return quote(re.sub("/+", "/", unquote_plus(path)), safe="/~") or "/"


def canonical_query(raw_query: str) -> str:
    """The SDK's canonical query: each ``k=v`` decoded and re-encoded, sorted; bare keys dropped."""
    pairs = sorted(
        [quote(unquote_plus(part), safe="~") for part in item.split("=", 1)] for item in raw_query.split("&") if item
    )
    return "&".join(f"{p[0]}={p[1]}" for p in pairs if len(p) == 2 and p[0])


def signature(
    secret: str,
    *,
    method: str,
    path: str,
    raw_query: str,
    headers: dict[str, str],
    signed_headers: list[str],
    body: bytes,
    date: str,
    scope: str,
) -> str:
    """JDCLOUD3-HMAC-SHA256 as jdcloud_sdk.core.signer computes it (``headers`` keys lower-cased)."""
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)
    canonical_request = "\n".join(
        [
            method,
            canonical_uri(path),
            canonical_query(raw_query),
            canonical_headers,
            ";".join(signed_headers),
            _sha256(body),
        ]
    )
    string_to_sign = "\n".join([ALGORITHM, date, scope, _sha256(canonical_request.encode("utf-8"))])
    key = ("JDCLOUD3" + secret).encode("utf-8")
    for part in scope.split("/"):  # date, region, service, "jdcloud3_request"
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# -- query parsing -----------------------------------------------------------------------------


def indexed_list(request: WireRequest, name: str) -> list[str]:
    """``name.1=a&name.2=b`` -> ["a", "b"], in index order."""
    pattern = re.compile(rf"^{re.escape(name)}\.(\d+)$")
    found = [(int(m.group(1)), value) for key, value in request.query if (m := pattern.match(key))]
    return [value for _, value in sorted(found)]


def filters(request: WireRequest) -> dict[str, list[str]]:
    """``filters.N.name`` / ``filters.N.values.M`` -> {name: [values]} (N and M in index order)."""
    names: dict[int, str] = {}
    values: dict[int, list[tuple[int, str]]] = {}
    for key, value in request.query:
        if m := re.match(r"^filters\.(\d+)\.name$", key):
            names[int(m.group(1))] = value
        elif m := re.match(r"^filters\.(\d+)\.values\.(\d+)$", key):
            values.setdefault(int(m.group(1)), []).append((int(m.group(2)), value))
    return {names[n]: [v for _, v in sorted(values.get(n, []))] for n in sorted(names)}


def _int_param(request: WireRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.param(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise _invalid(f"{name} must be in [{low}, {high}]")
    return value


def _page(request: WireRequest, items: list[Any]) -> tuple[list[Any], int]:
    number = _int_param(request, "pageNumber", 1, 1, 1_000_000)
    size = _int_param(request, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    return items[(number - 1) * size : number * size], len(items)


def _bool(value: Any) -> bool:
    """Booleans arrive as JSON true/false in bodies and as ``True``/``False`` in query strings."""
    return value is True or str(value).lower() == "true"


# -- formatting --------------------------------------------------------------------------------


def _time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _disk_type(disk: Disk) -> str:
    return disk.volume_type.lower()


def _attachment(disk: Disk, zone: str) -> dict[str, Any]:
    """An InstanceDiskAttachment: ``cloudDisk`` for cloud disks, ``localDisk`` for local ones."""
    out: dict[str, Any] = {
        "diskCategory": disk.category,
        "autoDelete": True,
        "deviceName": disk.device,
        "status": "attached",
    }
    if disk.category == "local":
        out["localDisk"] = {"diskType": _disk_type(disk), "diskSizeGB": disk.size_gb}
    else:
        out["cloudDisk"] = _cloud_disk(disk, zone)
    return out


def _cloud_disk(disk: Disk, zone: str) -> dict[str, Any]:
    """A disk-service Disk (also nested in vm attachments)."""
    return {
        "diskId": disk.disk_id,
        "az": zone,
        "name": disk.name or disk.device,
        "description": "",
        "diskType": _disk_type(disk),
        "diskSizeGB": disk.size_gb,
        "status": "in-use",
        "encrypted": disk.encrypted,
        "multiAttachable": False,
        "snapshotId": "",
        "attachments": [
            {
                "attachmentId": f"attach-{disk.disk_id}",
                "diskId": disk.disk_id,
                "instanceType": "vm",
                "instanceId": disk.instance_id,
                "status": "attached",
            }
        ],
    }


def _instance_json(inst: Instance) -> dict[str, Any]:
    return {
        "instanceId": inst.instance_id,
        "instanceName": inst.name,
        "hostname": inst.name,
        "instanceType": "g.n2.medium",
        "status": inst.status,
        "az": inst.zone,
        "description": "",
        "systemDisk": _attachment(inst.system_disk, inst.zone),
        "dataDisks": [_attachment(d, inst.zone) for d in inst.disks if not d.is_system],
        "osType": "linux",
    }


def image_status(img: Image) -> str:
    if img.status == "available":
        return IMAGE_READY
    if img.status == "failed":
        return IMAGE_ERROR
    return IMAGE_COPYING if img.source_image_id else IMAGE_CREATING


def _image_disk(disk: ImageDisk, encrypted: bool) -> dict[str, Any]:
    """An InstanceDiskAttachment; its ``cloudDisk`` is a disk-service Disk, whose ``encrypted`` says
    "云盘是否为加密盘" (SDK disk.models.Disk)."""
    return {
        "diskCategory": "cloud",
        "autoDelete": True,
        "deviceName": disk.device,
        "cloudDisk": {
            "snapshotId": disk.snapshot_id,
            "diskType": "ssd",
            "diskSizeGB": disk.size_gb,
            "encrypted": encrypted,
        },
    }


def _image_json(img: Image) -> dict[str, Any]:
    system = next((d for d in img.disks if d.is_system), None)
    return {
        "imageId": img.image_id,
        "name": img.name,
        "platform": "Other Linux",
        "architecture": "x86_64",
        "osType": "linux",
        "imageSource": "private",
        "launchPermission": "ownerOnly",
        "rootDeviceType": "cloudDisk",
        "status": image_status(img),
        "progress": str(img.progress),
        "createTime": _time(img.created_at),
        "systemDiskSizeGB": system.size_gb if system else img.size_gb,
        "sizeMB": img.size_gb * 1024,
        "desc": img.description,
        "systemDisk": _image_disk(system, img.encrypted) if system else None,
        "dataDisks": [_image_disk(d, img.encrypted) for d in img.disks if not d.is_system],
        "snapshotId": system.snapshot_id if system else "",
        "instanceId": img.source_instance_id or "",
    }


# -- the front-end -----------------------------------------------------------------------------


def _split_path(path: str) -> tuple[str, str]:
    """``/v1/regions/{region}/{rest}`` -> (region, rest): the region is the segment after regions/."""
    region, _, rest = path.removeprefix("/v1/regions/").partition("/")
    return region, rest


def _asks_disk_quota(request: WireRequest) -> bool:
    return request.param("type") is not None


class FrontEnd(VendorFrontEnd[Handler]):
    """JD Cloud VM + disk services over the shared CloudModel; routed on the path after the region."""

    vendor = VENDOR
    recognises = "jdcloud: a /v1/regions/ path or a JDCLOUD* Authorization"
    request_id_header = "x-jdcloud-request-id"

    def __init__(self, model: CloudModel) -> None:
        super().__init__(model)
        self.max_copy = rules_for(VENDOR).max_images_per_copy_call or 10

    def routes(self) -> list[Route[Handler]]:
        one = r"[^/:]+"  # an id segment: never a ``:verb``
        return [
            route("GET", "instances/{id}", "describeInstance", self._describe_instance, segment=one),
            route("GET", "instances", "describeInstances", self._describe_instances),
            route("POST", "instances/{id}:createImage", "createImage", self._create_image, segment=one),
            route("GET", "images/{id}", "describeImage", self._describe_image, segment=one),
            route("GET", "images", "describeImages", self._describe_images),
            route("POST", "images:copyImages", "copyImages", self._copy_images),
            route("DELETE", "images/{id}", "deleteImage", self._delete_image, segment=one),
            # disk describeQuota shares vm describeQuotas' path; its ``type`` tells them apart
            route("GET", "quotas", "describeQuota", self._describe_disk_quota, accepts=_asks_disk_quota),
            route("GET", "quotas", "describeQuotas", self._describe_quotas),
            route("GET", "disks", "describeDisks", self._describe_disks),
            route("GET", "images/{id}/constraints", "describeImageConstraints", self._image_constraints, segment=one),
            route("GET", "imageConstraints", "describeImageConstraintsBatch", self._image_constraints_batch),
            route("POST", "images/{id}:modifyImageAttribute", "modifyImageAttribute", self._modify_image, segment=one),
            route("POST", "images/{id}:share", "shareImage", self._share_image, segment=one),
            route("POST", "images/{id}:unshare", "unShareImage", self._unshare_image, segment=one),
            route("GET", "images/{id}/members", "describeImageMembers", self._image_members, segment=one),
        ]

    # -- FrontEnd protocol -------------------------------------------------------------------

    def matches(self, request: WireRequest) -> bool:
        """JD's paths, and any JD-signed request (so an unknown path answers in JD's error shape)."""
        return request.path.startswith("/v1/regions/") or request.headers.get("authorization", "").startswith("JDCLOUD")

    def route_target(self, request: WireRequest) -> str:
        return _split_path(request.path)[1] if request.path.startswith("/v1/regions/") else ""

    def serve(self, request: WireRequest, found: RouteMatch[Handler] | None) -> WireResponse:
        """The signature first, even for an unknown API; then the handler, whose result goes in ``result``."""
        account = self._authenticate(request)
        if found is None:
            raise CloudError("not_found", f"no API {request.method} {request.path}")
        region = _split_path(request.path)[0]
        result = found.route.handler(account, region, found.params.get("id", ""), request)
        payload: dict[str, Any] = {"requestId": request.request_id}
        if result is not None:
            payload["result"] = result
        return WireResponse.json(200, payload)

    def format_error(self, request: WireRequest, error: CloudError) -> WireResponse:
        code, status = _ERRORS[error.kind]
        message = _MESSAGES.get(error.detail or "", error.message)
        payload = {
            "requestId": request.request_id,
            "error": {"code": code, "status": status, "message": message},
        }
        return WireResponse.json(code, payload)

    # -- authentication ----------------------------------------------------------------------

    def _authenticate(self, request: WireRequest) -> Account:
        """Verify the SDK's JDCLOUD3-HMAC-SHA256 signature (no clock-skew or nonce checks)."""
        match = _AUTH_RE.match(request.headers.get("authorization", "").strip())
        if not match:
            raise CloudError("auth_failed", "missing or malformed Authorization header", detail="missing_signature")
        credential, signed, given = match.groups()
        access_key, _, scope = credential.partition("/")
        account = self.model.account_by_key(VENDOR, access_key)
        if account is None:
            raise CloudError("auth_failed", f"unknown access key {access_key}", detail="unknown_key")
        date = request.headers.get("x-jdcloud-date", "")
        scope_parts = scope.split("/")
        if len(scope_parts) != 4 or scope_parts[3] != SCOPE_TERMINATOR or not date.startswith(scope_parts[0]):
            raise CloudError("auth_failed", "malformed credential scope", detail="bad_signature")
        expected = signature(
            account.secret,
            method=request.method,
            path=request.path,
            raw_query=request.raw_query,
            headers=request.headers,
            signed_headers=signed.split(";"),
            body=request.body,
            date=date,
            scope=scope,
        )
        if not hmac.compare_digest(expected, given):
            raise CloudError("auth_failed", "signature does not match", detail="bad_signature")
        return account

    # -- vm: instances -----------------------------------------------------------------------

    def _describe_instance(self, account: Account, region: str, instance_id: str, _: WireRequest) -> dict:
        return {"instance": _instance_json(self.model.get_instance(account.name, region, instance_id))}

    def _describe_instances(self, account: Account, region: str, _: str, request: WireRequest) -> dict:
        wanted = filters(request)
        ids = wanted.get("instanceId")
        found = [
            inst
            for inst in self.model.list_instances(account.name, region, ids or None)
            if ("status" not in wanted or inst.status in wanted["status"])
            and all(name in inst.name for name in wanted.get("name", []))
        ]
        page, total = _page(request, found)
        return {"instances": [_instance_json(i) for i in page], "totalCount": total}

    def _create_image(self, account: Account, region: str, instance_id: str, request: WireRequest) -> dict:
        body = request.json()
        name = body.get("name") or ""
        description = body.get("description") or ""
        if not NAME_RE.match(name):
            raise _invalid(f"Invalid name '{name}': 2-32 letters, digits, CJK, '_', '-' or '.'")
        if len(description) > DESCRIPTION_MAX:
            raise _invalid(f"description longer than {DESCRIPTION_MAX} characters")
        with self.model.lock:  # the instance must not change between reading its disks and imaging
            inst = self.model.get_instance(account.name, region, instance_id)
            excluded = self._excluded_devices(inst, body.get("dataDisks") or [])
            devices = [d.device for d in inst.disks if d.device not in excluded] if excluded else None
            image = self.model.create_image(
                account.name, region, instance_id, name=name, description=description, devices=devices
            )
        return {"imageId": image.image_id}

    @staticmethod
    def _excluded_devices(inst: Instance, data_disks: list[dict[str, Any]]) -> set[str]:
        """Devices named with ``noDevice=true``; other dataDisks entries (new disks) are not emulated."""
        excluded: set[str] = set()
        for entry in data_disks:
            device = (entry or {}).get("deviceName") or ""
            if not _bool(entry.get("noDevice")):
                raise _invalid(f"dataDisks entry {device!r}: only deviceName + noDevice=true is emulated")
            if device == inst.system_disk.device:
                raise _invalid(f"the system disk {device} cannot be excluded", "missing_system_disk")
            excluded.add(device)
        return excluded

    # -- vm: images --------------------------------------------------------------------------

    def _describe_image(self, account: Account, region: str, image_id: str, _: WireRequest) -> dict:
        return {"image": _image_json(self.model.get_image(account.name, region, image_id, seen=True))}

    def _describe_images(self, account: Account, region: str, _: str, request: WireRequest) -> dict:
        ids = indexed_list(request, "ids")
        source = request.param("imageSource")
        if not ids and not source:
            raise _invalid("imageSource is required when ids is not given")
        status = request.param("status")
        name = request.param("imageName")
        instance_ids = indexed_list(request, "instanceIds")
        images = (
            []
            if source not in (None, "", "private")
            else self.model.list_images(account.name, region, ids or None, seen=True)
        )
        found = [
            img
            for img in images
            if (not status or image_status(img) == status)
            and (not name or name in img.name)
            and (not instance_ids or img.source_instance_id in instance_ids)
        ]
        page, total = _page(request, found)
        return {"images": [_image_json(img) for img in page], "totalCount": total}

    def _copy_images(self, account: Account, region: str, _: str, request: WireRequest) -> dict:
        body = request.json()
        sources = body.get("sourceImageIds") or []
        dest = body.get("destinationRegion") or ""
        name, description = body.get("name"), body.get("description")
        if not sources or not dest:
            raise _invalid("sourceImageIds and destinationRegion are required")
        if len(sources) > self.max_copy:
            raise _invalid(f"at most {self.max_copy} images per copyImages call", "too_many_images")
        if len(set(sources)) != len(sources):
            raise _invalid("sourceImageIds contains duplicates")
        if name is not None and not COPY_NAME_RE.match(name):
            raise _invalid(f"Invalid name '{name}': 1-32 letters, digits, CJK, '_', '-' or '.'")
        if description is not None and len(description) > DESCRIPTION_MAX:
            raise _invalid(f"description longer than {DESCRIPTION_MAX} characters")
        if self.model.quirk("jd_copy_drops_description"):
            description = None
        if self.model.quirk("jd_copy_batch_partial"):  # the other reading: what was started stays
            return {"copyImages": [self._copy_one(account.name, region, s, dest, name, description) for s in sources]}
        with self.model.atomic():  # all or nothing: a refused image leaves no copy of the others (unconfirmed)
            copies = [self._copy_one(account.name, region, source_id, dest, name, description) for source_id in sources]
        return {"copyImages": copies}

    def _copy_one(
        self, account: str, region: str, source_id: str, dest: str, name: str | None, description: str | None
    ) -> dict[str, str]:
        src = self.model.get_image(account, region, source_id)
        copy = self.model.copy_image(
            account,
            region,
            source_id,
            dest,
            name=name or src.name,
            description=description if description is not None else f"copied from {source_id}",
        )
        return {"sourceImageId": source_id, "destinationImageId": copy.image_id}

    def _delete_image(self, account: Account, region: str, image_id: str, request: WireRequest) -> None:
        delete_snapshots = _bool(request.param("deleteSnapshot", "false"))
        self.model.delete_image(account.name, region, image_id, delete_snapshots=delete_snapshots)
        return None

    def _describe_quotas(self, account: Account, region: str, _: str, request: WireRequest) -> dict:
        """vm describeQuotas: ``image`` (and, as an emulator extension, ``snapshot``)."""
        types = filters(request).get("resourceTypes") or ["image", "snapshot"]
        quotas = []
        for resource in types:
            if resource in ("image", "snapshot"):
                used, limit = self.model.quota(account.name, region, resource)
                quotas.append({"resourceType": resource, "limit": limit, "used": used})
        return {"quotas": quotas}

    # -- disk service ------------------------------------------------------------------------

    def _describe_disk_quota(self, account: Account, region: str, _: str, request: WireRequest) -> dict:
        """disk describeQuota (same path as vm describeQuotas, told apart by its ``type``)."""
        if request.param("type") != "snapshot":
            raise _invalid("the emulator knows only type=snapshot")
        used, limit = self.model.quota(account.name, region, "snapshot")
        return {"quota": {"limit": limit, "used": used}}

    def _describe_disks(self, account: Account, region: str, _: str, request: WireRequest) -> dict:
        """Cloud disks only: local disks are not disk-service resources."""
        wanted = filters(request)
        found = [
            disk
            for disk in self.model.list_disks(account.name, region, disk_ids=wanted.get("diskId"))
            if disk.category == "cloud"
            and ("instanceId" not in wanted or disk.instance_id in wanted["instanceId"])
            and ("status" not in wanted or "in-use" in wanted["status"])
            and ("diskType" not in wanted or _disk_type(disk) in wanted["diskType"])
        ]
        page, total = _page(request, found)
        owners = sorted({d.instance_id for d in page if d.instance_id})
        zones = {i.instance_id: i.zone for i in self.model.list_instances(account.name, region, owners)}
        return {
            "disks": [_cloud_disk(d, zones.get(d.instance_id or "", "")) for d in page],
            "totalCount": total,
        }

    # -- vm: image attributes, constraints, sharing ------------------------------------------

    def _image_constraints(self, account: Account, region: str, image_id: str, _: WireRequest) -> dict:
        """Private images have no instance-type constraint (only official and third-party ones do)."""
        image = self.model.get_image(account.name, region, image_id)
        return {"imageConstraints": {"imageId": image.image_id, "imageInstanceTypeConstraint": None}}

    def _image_constraints_batch(self, account: Account, region: str, _: str, __: WireRequest) -> dict:
        """``ids`` may only name official and third-party images, and the emulator has none: always empty."""
        return {"imageConstraints": []}

    def _modify_image(self, account: Account, region: str, image_id: str, request: WireRequest) -> None:
        """Name and description only; an absent (null) one is kept."""
        body = request.json()
        name, description = body.get("name"), body.get("description")
        if name is not None and not NAME_RE.match(name):
            raise _invalid(f"Invalid name '{name}': 2-32 letters, digits, CJK, '_', '-' or '.'")
        if description is not None and len(description) > DESCRIPTION_MAX:
            raise _invalid(f"description longer than {DESCRIPTION_MAX} characters")
        self.model.modify_image(account.name, region, image_id, name=name, description=description)
        return None

    def _pins(self, request: WireRequest) -> list[str]:
        pins = request.json().get("pins") or []
        if not isinstance(pins, list) or not all(isinstance(p, str) and p for p in pins):
            raise _invalid("pins must be a list of JD Cloud account pins")
        return pins

    def _share_image(self, account: Account, region: str, image_id: str, request: WireRequest) -> None:
        """At most 20 accounts, never the image's own account (its fixture name stands for its pin)."""
        self.model.share_image(account.name, region, image_id, add=self._pins(request))
        return None

    def _unshare_image(self, account: Account, region: str, image_id: str, request: WireRequest) -> None:
        self.model.share_image(account.name, region, image_id, remove=self._pins(request))
        return None

    def _image_members(self, account: Account, region: str, image_id: str, _: WireRequest) -> dict:
        return {"pins": list(self.model.get_image(account.name, region, image_id).shared_with)}
