"""The vendor-neutral cloud model: state and rules, no wire formats and no HTTP.

Statuses move lazily: every public call first brings in-flight images and snapshots up to the
clock's "now", so no background thread is needed and a ManualClock fully controls progress.
Public methods return deep copies so a front-end formatting a response never sees a half-updated
entity and cannot mutate the model by accident. See docs/dev/emulator-contract.md.
"""

from __future__ import annotations

import copy
import functools
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

from imagebak.emulator.clock import Clock, SystemClock
from imagebak.emulator.rules import LATENCY_OPS, RESOURCES, IdFormat, Latency, ProviderRules, rules_for

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

STATE_VERSION = 1


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


# --------------------------------------------------------------------------------------------
# Entities


@dataclass
class Account:
    name: str
    provider: str  # "aliyun" | "huawei" | "jdcloud"
    access_key_id: str
    secret: str = field(repr=False)
    projects: dict[str, str] = field(default_factory=dict)  # Huawei: region -> project id
    regions: list[str] = field(default_factory=list)


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


@dataclass
class Instance:
    instance_id: str
    account: str
    region: str
    name: str
    status: str  # "running" | "stopped"
    disks: list[Disk]
    zone: str

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


def _entity_to_json(entity: Any) -> dict[str, Any]:
    return _encode(asdict(entity))


def _entity_from_json(cls: type[E], data: dict[str, Any]) -> E:
    """Rebuild a dataclass, ignoring unknown keys so older/newer state files still load."""
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _DATETIME_FIELDS and value is not None:
            value = datetime.fromisoformat(value)
        elif f.name == "disks" and cls in _NESTED:
            value = [_entity_from_json(_NESTED[cls], d) for d in value]
        kwargs[f.name] = value
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# The model

T = TypeVar("T")
P = ParamSpec("P")


def _synced(method: Callable[Concatenate[CloudModel, P], T]) -> Callable[Concatenate[CloudModel, P], T]:
    """Run under the model lock after bringing lazy statuses up to the clock."""

    @functools.wraps(method)
    def wrapper(self: CloudModel, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self.lock:
            self._refresh()
            return method(self, *args, **kwargs)

    return wrapper


def _advance(entity: Image | Snapshot, now: datetime, pending: str, done: str) -> bool:
    """Move one in-flight entity to ``now``; True when it has reached a final status."""
    if entity.status != pending:
        return True
    total = (entity.ready_at - entity.created_at).total_seconds()

    def percent(at: datetime) -> int:
        if total <= 0:
            return 100
        return max(0, min(99, int(100 * (at - entity.created_at).total_seconds() / total)))

    if entity.fail_at is not None and now >= entity.fail_at:
        entity.status, entity.progress = "failed", percent(entity.fail_at)
        return True
    if now >= entity.ready_at:
        entity.status, entity.progress = done, 100
        return True
    entity.progress = percent(now)
    return False


class CloudModel:
    """Regions, instances, disks, images, snapshots, tasks and quotas of every emulated account."""

    def __init__(self, clock: Clock | None = None, *, seed: int = 0) -> None:
        self.clock: Clock = clock or SystemClock()
        # Request-independent and re-entrant: front-ends may hold it across several calls.
        self.lock = threading.RLock()
        self.seed = seed
        self._rng = random.Random(seed)
        self._now = self.clock.now()
        self._accounts: dict[str, Account] = {}
        self._instances: dict[str, Instance] = {}
        self._disks: dict[str, Disk] = {}
        self._images: dict[str, Image] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._tasks: dict[str, Task] = {}
        self._pending: set[str] = set()  # ids of creating images / progressing snapshots
        self._quota_limits: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str | None, str], Latency] = {}  # (provider or None, op)
        self._idempotency: dict[tuple[str, str, str], Image | Snapshot] = {}
        self._fail_next: list[str] = []  # reasons, one per upcoming creation that will fail

    # ---- world building (fixture) ------------------------------------------------------------

    def add_account(self, account: Account) -> None:
        rules_for(account.provider)
        with self.lock:
            if account.name in self._accounts:
                raise ValueError(f"duplicate account {account.name!r}")
            if any(
                a.provider == account.provider and a.access_key_id == account.access_key_id
                for a in self._accounts.values()
            ):
                raise ValueError(f"duplicate access key id for account {account.name!r}")
            self._accounts[account.name] = copy.deepcopy(account)

    def add_instance(
        self,
        account: str,
        region: str,
        instance_id: str,
        *,
        name: str,
        disks: list[dict[str, Any]],
        status: str = "running",
        zone: str | None = None,
    ) -> Instance:
        """Declare an instance; each disk dict has the Disk fields (disk_id optional)."""
        with self.lock:
            acc = self._account(account)
            self._check_region(acc, region)
            if instance_id in self._instances:
                raise ValueError(f"duplicate instance id {instance_id!r}")
            if status not in ("running", "stopped"):
                raise ValueError(f"instance status must be running or stopped, not {status!r}")
            rules = rules_for(acc.provider)
            built: list[Disk] = []
            for spec in disks:
                disk = Disk(**{**spec, "instance_id": instance_id})
                if not disk.disk_id:
                    disk.disk_id = self._new_id(rules.disk_id)
                if disk.category not in ("cloud", "local"):
                    raise ValueError(f"disk {disk.device}: category must be cloud or local")
                if disk.size_gb <= 0:
                    raise ValueError(f"disk {disk.device}: size_gb must be positive")
                if disk.disk_id in self._disks or any(d.disk_id == disk.disk_id for d in built):
                    raise ValueError(f"duplicate disk id {disk.disk_id!r}")
                built.append(disk)
            devices = [d.device for d in built]
            if len(set(devices)) != len(devices):
                raise ValueError(f"instance {instance_id}: duplicate disk device names")
            if sum(d.is_system for d in built) != 1:
                raise ValueError(f"instance {instance_id}: exactly one disk must be the system disk")
            zone = zone or rules.zone_format.format(region=region)
            inst = Instance(instance_id, account, region, name, status, built, zone)
            self._instances[instance_id] = inst
            self._disks.update((d.disk_id, d) for d in built)
            return copy.deepcopy(inst)

    @_synced
    def seed_image(
        self,
        account: str,
        region: str,
        *,
        name: str,
        size_gb: int,
        image_type: str = "private",
        kind: str = "system",
        encrypted: bool = False,
        image_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Image:
        """A pre-existing available image (e.g. an ISO) declared by a fixture."""
        acc = self._account(account)
        self._check_region(acc, region)
        if image_type not in ("private", "iso"):
            raise ValueError(f"image_type must be private or iso, not {image_type!r}")
        image_id = image_id or self._new_id(self._rules(acc).image_id)
        if image_id in self._images:
            raise ValueError(f"duplicate image id {image_id!r}")
        img = Image(
            image_id=image_id,
            account=account,
            region=region,
            name=name,
            description="",
            status="available",
            progress=100,
            size_gb=size_gb,
            disks=[ImageDisk("vda", size_gb, "", True)],
            kind=kind,
            image_type=image_type,
            encrypted=encrypted,
            source_instance_id=None,
            source_image_id=None,
            source_region=None,
            created_at=self._now,
            ready_at=self._now,
            tags=dict(tags or {}),
        )
        self._images[image_id] = img
        return copy.deepcopy(img)

    def set_latency(self, provider: str | None, op: str, latency: Latency) -> None:
        """Override a duration distribution for one provider, or for all when provider is None."""
        if op not in LATENCY_OPS:
            raise ValueError(f"unknown latency operation {op!r} (expected one of {', '.join(LATENCY_OPS)})")
        if provider is not None:
            rules_for(provider)
        with self.lock:
            self._latency[(provider, op)] = latency

    # ---- lookups -----------------------------------------------------------------------------

    def account_by_key(self, provider: str, access_key_id: str) -> Account | None:
        with self.lock:
            for acc in self._accounts.values():
                if acc.provider == provider and acc.access_key_id == access_key_id:
                    return copy.deepcopy(acc)
            return None

    def account(self, name: str) -> Account:
        with self.lock:
            return copy.deepcopy(self._account(name))

    def accounts(self) -> list[Account]:
        with self.lock:
            return copy.deepcopy(list(self._accounts.values()))

    def regions(self, account: str) -> list[str]:
        with self.lock:
            return list(self._account(account).regions)

    def region_for_project(self, account: str, project_id: str) -> str | None:
        with self.lock:
            for region, pid in self._account(account).projects.items():
                if pid == project_id:
                    return region
            return None

    def get_instance(self, account: str, region: str, instance_id: str) -> Instance:
        with self.lock:
            return copy.deepcopy(self._instance(account, region, instance_id))

    def list_instances(self, account: str, region: str, ids: list[str] | None = None) -> list[Instance]:
        with self.lock:
            self._check_region(self._account(account), region)
            found = [
                i
                for i in self._instances.values()
                if i.account == account and i.region == region and (ids is None or i.instance_id in ids)
            ]
            return copy.deepcopy(found)

    def list_disks(
        self,
        account: str,
        region: str,
        instance_id: str | None = None,
        disk_ids: list[str] | None = None,
    ) -> list[Disk]:
        disks = [
            d
            for inst in self.list_instances(account, region)
            if instance_id is None or inst.instance_id == instance_id
            for d in inst.disks
        ]
        return [d for d in disks if disk_ids is None or d.disk_id in disk_ids]

    def get_disk(self, account: str, region: str, disk_id: str) -> Disk:
        with self.lock:
            return copy.deepcopy(self._disk(account, region, disk_id))

    @_synced
    def get_image(self, account: str, region: str, image_id: str) -> Image:
        return copy.deepcopy(self._image(account, region, image_id))

    @_synced
    def list_images(
        self,
        account: str,
        region: str,
        ids: list[str] | None = None,
        statuses: list[str] | None = None,
        tags: dict[str, str] | None = None,
        name: str | None = None,
    ) -> list[Image]:
        """Matching images, newest first (ties: most recently created first)."""
        self._check_region(self._account(account), region)
        found = [
            img
            for img in reversed(self._images.values())
            if img.account == account
            and img.region == region
            and (ids is None or img.image_id in ids)
            and (statuses is None or img.status in statuses)
            and (name is None or img.name == name)
            and all(img.tags.get(k) == v for k, v in (tags or {}).items())
        ]
        found.sort(key=lambda img: img.created_at, reverse=True)
        return copy.deepcopy(found)

    @_synced
    def get_snapshot(self, account: str, region: str, snapshot_id: str) -> Snapshot:
        return copy.deepcopy(self._snapshot(account, region, snapshot_id))

    @_synced
    def list_snapshots(
        self, account: str, region: str, ids: list[str] | None = None, disk_id: str | None = None
    ) -> list[Snapshot]:
        self._check_region(self._account(account), region)
        found = [
            s
            for s in reversed(self._snapshots.values())
            if s.account == account
            and s.region == region
            and (ids is None or s.snapshot_id in ids)
            and (disk_id is None or s.disk_id == disk_id)
        ]
        found.sort(key=lambda s: s.created_at, reverse=True)
        return copy.deepcopy(found)

    @_synced
    def get_task(self, account: str, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None or task.account != account:
            raise CloudError("not_found", f"job {task_id} does not exist", resource="job")
        return copy.deepcopy(task)

    @_synced
    def task_status(self, task: Task) -> tuple[str, str | None]:
        """("running"|"success"|"failed", reason), derived from the task's images."""
        live = self._tasks.get(task.task_id, task)
        return self._task_outcome(live)

    @_synced
    def quota(self, account: str, region: str, resource: str) -> tuple[int, int]:
        """(used, limit) of a per-region quota."""
        acc = self._account(account)
        self._check_region(acc, region)
        if resource not in RESOURCES:
            raise CloudError("invalid_parameter", f"unknown quota resource {resource!r}", resource="quota")
        return self._used(account, region, resource), self._limit(acc, region, resource)

    @_synced
    def summary(self) -> dict[str, Any]:
        """Images and snapshots per account and region, for the admin API."""
        out: dict[str, Any] = {}
        for acc in self._accounts.values():
            regions: dict[str, Any] = {}
            for region in acc.regions:
                images = [i for i in self._images.values() if i.account == acc.name and i.region == region]
                regions[region] = {
                    "images": [
                        {"image_id": i.image_id, "name": i.name, "status": i.status, "progress": i.progress}
                        for i in images
                    ],
                    "snapshots": self._used(acc.name, region, "snapshot"),
                    "instances": sum(
                        1 for i in self._instances.values() if i.account == acc.name and i.region == region
                    ),
                }
            out[acc.name] = {"provider": acc.provider, "regions": regions}
        return out

    # ---- mutations ---------------------------------------------------------------------------

    @_synced
    def create_image(
        self,
        account: str,
        region: str,
        instance_id: str,
        *,
        name: str,
        description: str = "",
        devices: list[str] | None = None,
        kind: str = "system",
        tags: dict[str, str] | None = None,
        client_token: str | None = None,
    ) -> Image:
        """Image an instance: every cloud disk, or the listed devices (which must include the system disk)."""

        def act() -> Image:
            inst = self._instance(account, region, instance_id)
            if kind not in ("system", "whole"):
                raise CloudError("invalid_parameter", f"unknown image kind {kind!r}", resource="image")
            system = inst.system_disk
            if system.category == "local":
                raise CloudError(
                    "invalid_status",
                    f"instance {instance_id} has a local system disk and cannot be imaged",
                    resource="instance",
                    detail="local_system_disk",
                )
            if devices is not None and system.device not in devices:
                raise CloudError(
                    "invalid_parameter",
                    f"the system disk {system.device} must be part of the image",
                    resource="disk",
                    detail="missing_system_disk",
                )
            included = [d for d in inst.disks if d.category == "cloud" and (devices is None or d.device in devices)]
            return self._new_image(
                account,
                region,
                included,
                name=name,
                description=description,
                kind=kind,
                tags=tags,
                source_instance_id=instance_id,
            )

        return self._idempotent(account, "create_image", client_token, act)

    @_synced
    def create_data_image(
        self,
        account: str,
        region: str,
        disk_id: str,
        *,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        client_token: str | None = None,
    ) -> Image:
        """Image one data disk (Huawei data_images)."""

        def act() -> Image:
            disk = self._disk(account, region, disk_id)
            if disk.is_system:
                raise CloudError(
                    "invalid_parameter",
                    f"disk {disk_id} is a system disk, not a data disk",
                    resource="disk",
                    detail="system_disk",
                )
            if disk.category == "local":
                raise CloudError(
                    "invalid_status",
                    f"disk {disk_id} is a local disk and cannot be imaged",
                    resource="disk",
                    detail="local_disk",
                )
            return self._new_image(
                account,
                region,
                [disk],
                name=name,
                description=description,
                kind="data",
                tags=tags,
                source_instance_id=disk.instance_id,
            )

        return self._idempotent(account, "create_data_image", client_token, act)

    @_synced
    def create_image_from_snapshots(
        self,
        account: str,
        region: str,
        mappings: list[tuple[str, str]],
        *,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        client_token: str | None = None,
    ) -> Image:
        """Image from accomplished snapshots; the snapshot mapped to "vda" is the system disk."""

        def act() -> Image:
            devices = [device for _, device in mappings]
            if len(set(devices)) != len(devices):
                raise CloudError(
                    "invalid_parameter",
                    "a device appears twice in the mapping",
                    resource="disk",
                    detail="duplicate_device",
                )
            if "vda" not in devices:
                raise CloudError(
                    "invalid_parameter",
                    "the mapping must include the system disk (vda)",
                    resource="disk",
                    detail="missing_system_disk",
                )
            snaps = [(self._snapshot(account, region, sid), device) for sid, device in mappings]
            for snap, _ in snaps:
                if snap.status != "accomplished":
                    raise CloudError(
                        "invalid_status",
                        f"snapshot {snap.snapshot_id} is {snap.status}, not accomplished",
                        resource="snapshot",
                        detail="snapshot_not_ready",
                    )
            self._check_quota(account, region, images=1, snapshots=0)
            system_snap = next(s for s, device in snaps if device == "vda")
            source_disk = self._disks.get(system_snap.disk_id)
            disks = [
                ImageDisk(device, snap.size_gb, snap.snapshot_id, device == "vda", snap.disk_id)
                for snap, device in snaps
            ]
            return self._store_image(
                account,
                region,
                disks,
                name=name,
                description=description,
                kind="system",
                tags=tags,
                encrypted=any(s.encrypted for s, _ in snaps),
                source_instance_id=source_disk.instance_id if source_disk else None,
                duration=self._duration(account, "image", sum(d.size_gb for d in disks)),
            )

        return self._idempotent(account, "create_image_from_snapshots", client_token, act)

    @_synced
    def create_snapshot(
        self,
        account: str,
        region: str,
        disk_id: str,
        *,
        name: str = "",
        tags: dict[str, str] | None = None,
        client_token: str | None = None,
    ) -> Snapshot:
        def act() -> Snapshot:
            disk = self._disk(account, region, disk_id)
            if disk.category == "local":
                raise CloudError(
                    "unsupported",
                    f"disk {disk_id} is a local disk; local disks have no snapshots",
                    resource="disk",
                    detail="local_disk",
                )
            self._check_quota(account, region, images=0, snapshots=1)
            duration = self._duration(account, "snapshot", disk.size_gb)
            return self._store_snapshot(
                account,
                region,
                disk.disk_id,
                disk.device,
                disk.size_gb,
                disk.encrypted,
                duration,
                name=name,
                tags=tags,
            )

        return self._idempotent(account, "create_snapshot", client_token, act)

    @_synced
    def copy_image(
        self,
        account: str,
        source_region: str,
        image_id: str,
        dest_region: str,
        *,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        vault_id: str | None = None,
        client_token: str | None = None,
    ) -> Image:
        """Start a cross-region copy; the destination image is "creating" until its ready_at."""

        def act() -> Image:
            acc = self._account(account)
            src = self._image(account, source_region, image_id)
            rules = self._rules(acc)
            self._check_copyable(acc, rules, src, dest_region, vault_id)
            self._check_quota(account, dest_region, images=1, snapshots=len(src.disks))
            disks = [ImageDisk(d.device, d.size_gb, "", d.is_system, d.disk_id) for d in src.disks]
            return self._store_image(
                account,
                dest_region,
                disks,
                name=name,
                description=description,
                kind=src.kind,
                tags=tags,
                encrypted=src.encrypted,
                image_type=src.image_type,
                source_instance_id=src.source_instance_id,
                source_image_id=src.image_id,
                source_region=source_region,
                vault_id=vault_id,
                duration=self._duration(account, "copy", src.size_gb),
                with_snapshots=True,
            )

        return self._idempotent(account, "copy_image", client_token, act)

    @_synced
    def cancel_copy(self, account: str, dest_region: str, image_id: str) -> None:
        img = self._image(account, dest_region, image_id)
        if img.source_image_id is None or img.status != "creating":
            raise CloudError(
                "invalid_status",
                f"image {image_id} is not a copy in progress",
                resource="image",
                detail="copy_finished",
            )
        self._remove_image(img, delete_snapshots=True, reason="copy cancelled")

    @_synced
    def delete_image(self, account: str, region: str, image_id: str, *, delete_snapshots: bool = True) -> None:
        img = self._image(account, region, image_id)
        if self._copies_in_flight(account, source=img):
            raise CloudError(
                "invalid_status",
                f"image {image_id} is being copied and cannot be deleted",
                resource="image",
                detail="image_copying",
            )
        self._remove_image(img, delete_snapshots=delete_snapshots, reason="image deleted")

    @_synced
    def tag_resources(self, account: str, region: str, resource_ids: list[str], tags: dict[str, str]) -> None:
        for entity in self._taggables(account, region, resource_ids):
            entity.tags.update(tags)

    @_synced
    def untag_resources(self, account: str, region: str, resource_ids: list[str], keys: list[str]) -> None:
        for entity in self._taggables(account, region, resource_ids):
            for key in keys:
                entity.tags.pop(key, None)

    @_synced
    def create_task(self, account: str, region: str, task_type: str, image_ids: list[str]) -> Task:
        acc = self._account(account)
        self._check_region(acc, region)
        task_id = self._new_id(self._rules(acc).task_id)
        task = Task(task_id, account, region, task_type, self._now, list(image_ids))
        self._tasks[task.task_id] = task
        return copy.deepcopy(task)

    # ---- model-owned fault hooks -------------------------------------------------------------

    def fail_next_creations(self, n: int, reason: str = "injected creation failure") -> None:
        """The next n image creations/copies are accepted, then turn failed half-way through."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self.lock:
            self._fail_next.extend([reason] * n)

    def pending_failures(self) -> int:
        with self.lock:
            return len(self._fail_next)

    @_synced
    def fail_image(self, account: str, region: str, image_id: str, reason: str = "injected failure") -> None:
        """A creating image (and the snapshots made for it) turns failed now."""
        img = self._image(account, region, image_id)
        if img.status != "creating":
            raise CloudError(
                "invalid_status",
                f"image {image_id} is {img.status}, not creating",
                resource="image",
                detail="image_not_creating",
            )
        self._schedule_failure(img, self._now, reason)
        self._refresh()

    def set_quota(self, account: str, region: str, resource: str, limit: int) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"unknown quota resource {resource!r} (expected image or snapshot)")
        if limit < 0:
            raise ValueError("quota limit must be >= 0")
        with self.lock:
            self._check_region(self._account(account), region)
            self._quota_limits[(account, region, resource)] = limit

    # ---- persistence -------------------------------------------------------------------------

    @_synced
    def to_dict(self) -> dict[str, Any]:
        """The whole model as JSON-serialisable data (secrets included: they are fixture fakes)."""
        return {
            "version": STATE_VERSION,
            "saved_at": self._now.isoformat(),
            "seed": self.seed,
            "accounts": [_entity_to_json(a) for a in self._accounts.values()],
            "instances": [_entity_to_json(i) for i in self._instances.values()],
            "latency": [{"provider": p, "op": op, **asdict(lat)} for (p, op), lat in self._latency.items()],
            "quota_limits": [[*k, v] for k, v in self._quota_limits.items()],
            **self._dynamic_state(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], clock: Clock | None = None) -> CloudModel:
        try:
            model = cls(clock, seed=int(data.get("seed", 0)))
            for acc in data["accounts"]:
                model.add_account(_entity_from_json(Account, acc))
            for inst in data["instances"]:
                model._instances[inst["instance_id"]] = built = _entity_from_json(Instance, inst)
                model._disks.update((d.disk_id, d) for d in built.disks)
            for lat in data.get("latency", []):
                model.set_latency(
                    lat["provider"],
                    lat["op"],
                    Latency(lat["base_seconds"], lat["per_gb_seconds"], lat["jitter"]),
                )
            for account, region, resource, limit in data.get("quota_limits", []):
                model.set_quota(account, region, resource, int(limit))
        except (KeyError, TypeError, ValueError, CloudError) as exc:
            raise ValueError(f"invalid model state: {exc}") from None
        model.load_dynamic_state(data)
        return model

    def load_dynamic_state(self, data: dict[str, Any]) -> None:
        """Replace images, snapshots, tasks, idempotency records and pending failures with saved ones.

        The world (accounts, regions, instances, quotas, latencies) stays as built: entities of
        accounts or regions that no longer exist are dropped. The clock moves forward to the save
        time if it is behind.
        """
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {data.get('version')!r} (expected {STATE_VERSION})")
        try:
            images = [_entity_from_json(Image, d) for d in data.get("images", [])]
            snapshots = [_entity_from_json(Snapshot, d) for d in data.get("snapshots", [])]
            tasks = [_entity_from_json(Task, d) for d in data.get("tasks", [])]
            tokens = [tuple(t) for t in data.get("idempotency", [])]
            rng_state = data.get("rng_state")
            saved_at = datetime.fromisoformat(data["saved_at"]) if data.get("saved_at") else None
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"invalid model state: {exc}") from None
        with self.lock:
            if saved_at is not None:
                self.clock.ensure_not_before(saved_at)

            def known(entity: Image | Snapshot | Task) -> bool:
                acc = self._accounts.get(entity.account)
                return acc is not None and entity.region in acc.regions

            self._images = {i.image_id: i for i in images if known(i)}
            self._snapshots = {s.snapshot_id: s for s in snapshots if known(s)}
            self._tasks = {t.task_id: t for t in tasks if known(t)}
            self._pending = {
                *(i.image_id for i in self._images.values() if i.status == "creating"),
                *(s.snapshot_id for s in self._snapshots.values() if s.status == "progressing"),
            }
            self._idempotency = {}
            for acc_name, action, token, entity_id in tokens:
                entity = self._images.get(entity_id) or self._snapshots.get(entity_id)
                if entity is not None:
                    self._idempotency[(acc_name, action, token)] = entity
            self._fail_next = list(data.get("fail_next", []))
            if rng_state is not None:
                self._rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))
            self._refresh()

    def _dynamic_state(self) -> dict[str, Any]:
        rng_state = self._rng.getstate()
        return {
            "images": [_entity_to_json(i) for i in self._images.values()],
            "snapshots": [_entity_to_json(s) for s in self._snapshots.values()],
            "tasks": [_entity_to_json(t) for t in self._tasks.values()],
            "idempotency": [
                [*key, entity.image_id if isinstance(entity, Image) else entity.snapshot_id]
                for key, entity in self._idempotency.items()
            ],
            "fail_next": list(self._fail_next),
            "rng_state": [rng_state[0], list(rng_state[1]), rng_state[2]],
        }

    # ---- internals ---------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._now = now = self.clock.now()
        for entity_id in list(self._pending):
            img = self._images.get(entity_id)
            if img is not None:
                finished = _advance(img, now, "creating", "available")
            else:
                snap = self._snapshots.get(entity_id)
                finished = snap is None or _advance(snap, now, "progressing", "accomplished")
            if finished:
                self._pending.discard(entity_id)

    def _account(self, name: str) -> Account:
        acc = self._accounts.get(name)
        if acc is None:
            raise CloudError("not_found", f"account {name} does not exist", resource="account")
        return acc

    @staticmethod
    def _rules(acc: Account) -> ProviderRules:
        return rules_for(acc.provider)

    @staticmethod
    def _check_region(acc: Account, region: str) -> None:
        if region not in acc.regions:
            raise CloudError(
                "invalid_parameter",
                f"region {region} is not available to account {acc.name}",
                resource="region",
                detail="unknown_region",
            )

    def _scoped(self, table: dict[str, Any], kind: str, account: str, region: str, entity_id: str) -> Any:
        self._check_region(self._account(account), region)
        entity = table.get(entity_id)
        if entity is None or entity.account != account or entity.region != region:
            raise CloudError("not_found", f"{kind} {entity_id} does not exist in {region}", resource=kind)
        return entity

    def _instance(self, account: str, region: str, instance_id: str) -> Instance:
        return self._scoped(self._instances, "instance", account, region, instance_id)

    def _image(self, account: str, region: str, image_id: str) -> Image:
        return self._scoped(self._images, "image", account, region, image_id)

    def _snapshot(self, account: str, region: str, snapshot_id: str) -> Snapshot:
        return self._scoped(self._snapshots, "snapshot", account, region, snapshot_id)

    def _disk(self, account: str, region: str, disk_id: str) -> Disk:
        self._check_region(self._account(account), region)
        disk = self._disks.get(disk_id)
        inst = self._instances.get(disk.instance_id or "") if disk else None
        if disk is None or inst is None or inst.account != account or inst.region != region:
            raise CloudError("not_found", f"disk {disk_id} does not exist in {region}", resource="disk")
        return disk

    def _taggables(self, account: str, region: str, resource_ids: list[str]) -> list[Image | Snapshot]:
        """Resolve every id first, so a bad id changes nothing."""
        self._check_region(self._account(account), region)
        out: list[Image | Snapshot] = []
        for rid in resource_ids:
            entity = self._images.get(rid) or self._snapshots.get(rid)
            if entity is None or entity.account != account or entity.region != region:
                raise CloudError("not_found", f"resource {rid} does not exist in {region}", resource="image")
            out.append(entity)
        return out

    def _new_id(self, fmt: IdFormat) -> str:
        taken = (self._images, self._snapshots, self._tasks, self._disks, self._instances)
        while True:
            candidate = fmt.generate(self._rng)
            if not any(candidate in table for table in taken):
                return candidate

    def _duration(self, account: str, op: str, size_gb: int) -> float:
        provider = self._accounts[account].provider
        latency = self._latency.get((provider, op)) or self._latency.get((None, op)) or rules_for(provider).latency[op]
        return latency.draw(size_gb, self._rng)

    def _limit(self, acc: Account, region: str, resource: str) -> int:
        override = self._quota_limits.get((acc.name, region, resource))
        return override if override is not None else self._rules(acc).default_quota[resource]

    def _used(self, account: str, region: str, resource: str) -> int:
        table: Iterable[Image | Snapshot] = self._images.values() if resource == "image" else self._snapshots.values()
        return sum(1 for e in table if e.account == account and e.region == region)

    def _check_quota(self, account: str, region: str, *, images: int, snapshots: int) -> None:
        acc = self._account(account)
        for resource, wanted in (("image", images), ("snapshot", snapshots)):
            used, limit = self._used(account, region, resource), self._limit(acc, region, resource)
            if wanted and used + wanted > limit:
                raise CloudError(
                    "quota_exceeded",
                    f"{resource} quota exceeded in {region}: {used} of {limit} used, {wanted} more needed",
                    resource=resource,
                    detail=resource,
                )

    def _copies_in_flight(self, account: str, source: Image | None = None) -> list[Image]:
        """Copies still running for the account, or only those of ``source``."""
        origin = (source.image_id, source.region) if source else None
        return [
            img
            for img in self._images.values()
            if img.account == account
            and img.status == "creating"
            and img.source_image_id is not None
            and (origin is None or (img.source_image_id, img.source_region) == origin)
        ]

    def _check_copyable(
        self, acc: Account, rules: ProviderRules, src: Image, dest_region: str, vault_id: str | None
    ) -> None:
        def refuse(kind: str, detail: str, message: str) -> CloudError:
            return CloudError(kind, message, resource="image", detail=detail)

        if src.status != "available":
            raise refuse("invalid_status", "image_not_available", f"image {src.image_id} is {src.status}")
        if dest_region == src.region:
            raise refuse("invalid_parameter", "same_region", "destination region equals the source region")
        if dest_region not in acc.regions:
            raise CloudError(
                "invalid_parameter",
                f"region {dest_region} is not available to account {acc.name}",
                resource="region",
                detail="unknown_region",
            )
        if src.image_type == "iso" and not rules.iso_copyable:
            raise refuse("unsupported", "iso_image", f"image {src.image_id} is an ISO image: not copyable")
        if src.encrypted and not rules.encrypted_copyable:
            raise refuse("unsupported", "encrypted_image", f"image {src.image_id} is encrypted: not copyable")
        limit = rules.copy_size_limit(src.region)
        if limit is not None and src.size_gb > limit:
            raise refuse(
                "unsupported",
                "copy_size_limit",
                f"image {src.image_id} is {src.size_gb} GB; copies from {src.region} allow {limit} GB",
            )
        if src.kind == "whole":
            if not rules.whole_copy_allowed(src.region, dest_region):
                raise refuse(
                    "unsupported",
                    "whole_image_region",
                    f"whole images cannot be copied from {src.region} to {dest_region}",
                )
            if rules.whole_image_copy_requires_vault and not vault_id:
                raise refuse("invalid_parameter", "vault_required", "copying a whole image requires a vault")
        cap = rules.max_concurrent_copies
        if cap is not None and len(self._copies_in_flight(acc.name)) >= cap:
            raise CloudError(
                "limit_exceeded",
                f"at most {cap} image copies may run at once per account",
                resource="image",
                detail="concurrent_copies",
            )

    def _new_image(
        self,
        account: str,
        region: str,
        disks: list[Disk],
        *,
        name: str,
        description: str,
        kind: str,
        tags: dict[str, str] | None,
        source_instance_id: str | None,
    ) -> Image:
        """Image new disks: quota first (1 image + 1 snapshot per disk), then snapshots + image."""
        self._check_quota(account, region, images=1, snapshots=len(disks))
        image_disks = [ImageDisk(d.device, d.size_gb, "", d.is_system, d.disk_id) for d in disks]
        return self._store_image(
            account,
            region,
            image_disks,
            name=name,
            description=description,
            kind=kind,
            tags=tags,
            encrypted=any(d.encrypted for d in disks),
            source_instance_id=source_instance_id,
            duration=self._duration(account, "image", sum(d.size_gb for d in disks)),
            with_snapshots=True,
        )

    def _store_image(
        self,
        account: str,
        region: str,
        disks: list[ImageDisk],
        *,
        name: str,
        description: str,
        kind: str,
        tags: dict[str, str] | None,
        encrypted: bool,
        duration: float,
        source_instance_id: str | None,
        image_type: str = "private",
        source_image_id: str | None = None,
        source_region: str | None = None,
        vault_id: str | None = None,
        with_snapshots: bool = False,
    ) -> Image:
        """Store a creating image; ``with_snapshots`` makes one snapshot per disk, ready with the image."""
        acc = self._account(account)
        now = self._now
        img = Image(
            image_id=self._new_id(self._rules(acc).image_id),
            account=account,
            region=region,
            name=name,
            description=description,
            status="creating",
            progress=0,
            size_gb=sum(d.size_gb for d in disks),
            disks=disks,
            kind=kind,
            image_type=image_type,
            encrypted=encrypted,
            source_instance_id=source_instance_id,
            source_image_id=source_image_id,
            source_region=source_region,
            created_at=now,
            ready_at=now + timedelta(seconds=duration),
            tags=dict(tags or {}),
            vault_id=vault_id,
        )
        self._images[img.image_id] = img
        self._pending.add(img.image_id)
        if with_snapshots:
            for d in disks:
                snap = self._store_snapshot(
                    account,
                    region,
                    d.disk_id or "",
                    d.device,
                    d.size_gb,
                    encrypted,
                    duration,
                    image_id=img.image_id,
                )
                d.snapshot_id = snap.snapshot_id
        if self._fail_next:
            self._schedule_failure(img, now + timedelta(seconds=duration / 2), self._fail_next.pop(0))
        self._refresh()
        return copy.deepcopy(img)

    def _store_snapshot(
        self,
        account: str,
        region: str,
        disk_id: str,
        device: str,
        size_gb: int,
        encrypted: bool,
        duration: float,
        *,
        name: str = "",
        tags: dict[str, str] | None = None,
        image_id: str | None = None,
    ) -> Snapshot:
        now = self._now
        snap = Snapshot(
            snapshot_id=self._new_id(self._rules(self._account(account)).snapshot_id),
            account=account,
            region=region,
            disk_id=disk_id,
            device=device,
            size_gb=size_gb,
            status="progressing",
            created_at=now,
            ready_at=now + timedelta(seconds=duration),
            tags=dict(tags or {}),
            name=name,
            encrypted=encrypted,
            image_id=image_id,
        )
        self._snapshots[snap.snapshot_id] = snap
        self._pending.add(snap.snapshot_id)
        self._refresh()
        return copy.deepcopy(snap)

    def _schedule_failure(self, img: Image, at: datetime, reason: str) -> None:
        for entity in (img, *(s for s in self._snapshots.values() if s.image_id == img.image_id)):
            if entity.status in ("creating", "progressing"):
                entity.fail_at, entity.fail_reason = at, reason

    def _remove_image(self, img: Image, *, delete_snapshots: bool, reason: str) -> None:
        for task in self._tasks.values():
            if img.image_id in task.image_ids and task.final_status is None:
                status, why = self._task_outcome(task)
                final = ("failed", reason) if status == "running" else (status, why)
                task.final_status, task.final_reason = final
        del self._images[img.image_id]
        self._pending.discard(img.image_id)
        if not delete_snapshots:
            return
        still_used = {d.snapshot_id for other in self._images.values() for d in other.disks}
        for d in img.disks:
            if d.snapshot_id and d.snapshot_id not in still_used:
                self._snapshots.pop(d.snapshot_id, None)
                self._pending.discard(d.snapshot_id)

    def _task_outcome(self, task: Task) -> tuple[str, str | None]:
        if task.final_status is not None:
            return task.final_status, task.final_reason
        images = [self._images.get(i) for i in task.image_ids]
        for img in images:
            if img is None:
                return "failed", "image deleted"
            if img.status == "failed":
                return "failed", img.fail_reason or "image creation failed"
        if all(img is not None and img.status == "available" for img in images):
            return "success", None
        return "running", None

    def _idempotent(self, account: str, action: str, token: str | None, act: Callable[[], E]) -> E:
        """Aliyun ClientToken semantics: a repeated (account, action, token) returns the first result."""
        self._account(account)
        if token:
            hit = self._idempotency.get((account, action, token))
            if hit is not None:
                return copy.deepcopy(hit)  # type: ignore[return-value]
        result = act()
        if token:
            stored = self._images.get(getattr(result, "image_id", "")) or self._snapshots.get(
                getattr(result, "snapshot_id", "")
            )
            if stored is not None:
                self._idempotency[(account, action, token)] = stored
        return result
