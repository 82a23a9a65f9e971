"""The emulated cloud's entities and their JSON form.

Owns ``CloudError`` (the model's only way to refuse), the dataclasses every front-end formats
(Account, Disk, Instance, ImageDisk, Image, Snapshot, Task) and the (de)serialisation helpers the
state file uses. No behaviour beyond that: the rules live in the resource modules beside this one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

ERROR_KINDS = frozenset(
    {
        "not_found",
        "invalid_parameter",
        "invalid_status",
        "unsupported",
        "quota_exceeded",
        "limit_exceeded",
        "throttled",
        "internal",
        "unavailable",
        "auth_failed",
    }
)


class CloudError(Exception):
    """A refusal by the emulated cloud; front-ends map (kind, detail) to the vendor's error."""

    def __init__(self, kind: str, message: str, *, resource: str | None = None, detail: str | None = None) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown CloudError kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.resource = resource
        self.detail = detail

    def __repr__(self) -> str:
        return f"CloudError({self.kind!r}, {self.message!r}, detail={self.detail!r})"


def require_status(resource: str, entity_id: str, status: str, wanted: str, detail: str) -> None:
    """Refuse (invalid_status) unless an entity's status is ``wanted``."""
    if status != wanted:
        raise CloudError(
            "invalid_status", f"{resource} {entity_id} is {status}, not {wanted}", resource=resource, detail=detail
        )


@dataclass
class Account:
    name: str
    provider: str  # one of imagebak.vendors.VENDORS
    access_key_id: str
    secret: str = field(repr=False)
    projects: dict[str, str] = field(default_factory=dict)  # Huawei: region -> project id
    regions: list[str] = field(default_factory=list)
    whole_image_backup: str = "cbr"  # Huawei: "cbr" (whole images need a vault_id) or "csbs" (they do not)


@dataclass
class Disk:
    disk_id: str
    device: str  # "vda", "vdb", ...
    category: str  # "cloud" | "local"
    size_gb: int
    is_system: bool
    encrypted: bool = False
    volume_type: str = "SSD"
    instance_id: str | None = None
    name: str = ""


INSTANCE_STATUSES = ("running", "stopped")  # the states an image can be made in
TRANSIENT_STATUSES = ("starting", "stopping", "rebooting")  # passing states: "try again later"


@dataclass
class Instance:
    instance_id: str
    account: str
    region: str
    name: str
    status: str  # INSTANCE_STATUSES or TRANSIENT_STATUSES
    disks: list[Disk]
    zone: str
    task: str | None = None  # a task in progress on the instance (e.g. "resize"): no image until it ends

    @property
    def system_disk(self) -> Disk:
        return next(d for d in self.disks if d.is_system)


@dataclass
class ImageDisk:
    device: str
    size_gb: int
    snapshot_id: str
    is_system: bool
    disk_id: str | None = None


@dataclass
class Image:
    image_id: str
    account: str
    region: str
    name: str
    description: str
    status: str  # "creating" | "available" | "failed"
    progress: int  # 0..100
    size_gb: int
    disks: list[ImageDisk]
    kind: str  # "system" | "whole" | "data"
    image_type: str  # "private" | "iso"
    encrypted: bool
    source_instance_id: str | None
    source_image_id: str | None
    source_region: str | None
    created_at: datetime
    ready_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    fail_reason: str | None = None
    fail_at: datetime | None = None  # an injected failure strikes at this time
    vault_id: str | None = None
    # Accounts (Aliyun account ids, JD pins) the image is shared with -> when, ISO 8601 UTC.
    shared_with: dict[str, str] = field(default_factory=dict)


@dataclass
class Snapshot:
    snapshot_id: str
    account: str
    region: str
    disk_id: str
    device: str
    size_gb: int
    status: str  # "progressing" | "accomplished" | "failed"
    created_at: datetime
    ready_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    name: str = ""
    progress: int = 0
    encrypted: bool = False
    image_id: str | None = None  # the image whose creation made this snapshot, if any
    fail_reason: str | None = None
    fail_at: datetime | None = None


@dataclass
class Task:
    task_id: str
    account: str
    region: str
    task_type: str
    created_at: datetime
    image_ids: list[str]  # first = main image, rest = sub images (Huawei data images)
    # Set once an image of the task is deleted, so the outcome stays what it was.
    final_status: str | None = None
    final_reason: str | None = None


def check_imageable(inst: Instance) -> None:
    """An image (or a snapshot of its disks) needs a running or stopped instance with no task in progress."""
    if inst.status not in INSTANCE_STATUSES:
        raise CloudError(
            "invalid_status",
            f"instance {inst.instance_id} is {inst.status}; try again when it is running or stopped",
            resource="instance",
            detail="instance_transient",
        )
    if inst.task:
        raise CloudError(
            "invalid_status",
            f"instance {inst.instance_id} has a task in progress ({inst.task}); try again later",
            resource="instance",
            detail="instance_busy",
        )


class Regional(Protocol):
    """What every entity kept per account and region has (instances, images, snapshots, tasks)."""

    account: str
    region: str


class Dated(Regional, Protocol):
    created_at: datetime


_DATETIME_FIELDS = frozenset({"created_at", "ready_at", "fail_at"})
_NESTED: dict[type, type] = {Instance: Disk, Image: ImageDisk}

E = TypeVar("E")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def entity_to_json(entity: Any) -> dict[str, Any]:
    """A dataclass entity as JSON-ready data (datetimes as ISO strings)."""
    encoded: dict[str, Any] = _encode(asdict(entity))
    return encoded


def entity_from_json(cls: type[E], data: dict[str, Any]) -> E:
    """Rebuild a dataclass, ignoring unknown keys so older/newer state files still load."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _DATETIME_FIELDS and value is not None:
            value = datetime.fromisoformat(value)
        elif f.name == "disks" and cls in _NESTED:
            value = [entity_from_json(_NESTED[cls], d) for d in value]
        kwargs[f.name] = value
    return cls(**kwargs)


def clone(entity: E) -> E:
    """A caller's copy of an entity: its lists and dicts are its own (a list's dataclass items too),
    so a front-end can neither see a later change nor make one. Far cheaper than ``copy.deepcopy``,
    which every response paid per entity: the other fields are immutable values."""
    new = _shallow(entity)
    for name, value in vars(entity).items():
        if isinstance(value, list):
            setattr(new, name, [_shallow(item) if is_dataclass(item) else item for item in value])
        elif isinstance(value, dict):
            setattr(new, name, dict(value))
    return new


def _shallow(entity: E) -> E:
    """``copy.copy`` of a plain dataclass, without its generic (and slow) reduce protocol."""
    new = object.__new__(type(entity))
    new.__dict__.update(entity.__dict__)
    return new
