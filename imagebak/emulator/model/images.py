"""Images: of an instance, of one data disk, from existing snapshots, pre-seeded; deletion and tags.

Owns every way an image comes to exist except copies (``copies.py``), and ``_store_image``, the
one place an image is stored: quota first, then the image and (when it snapshots its disks) one
snapshot per disk that finishes with it. Deleting an image frees its quota and, by default, the
snapshots no other image uses; an image being copied cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from imagebak.emulator.model.base import idempotent, synced
from imagebak.emulator.model.entities import (
    CloudError,
    Disk,
    Image,
    ImageDisk,
    Instance,
    Snapshot,
    check_imageable,
    require_status,
)
from imagebak.emulator.model.failures import FailuresMixin
from imagebak.emulator.model.snapshots import SnapshotsMixin
from imagebak.emulator.model.tasks import TasksMixin


def fresh_disks(disks: Iterable[Disk | ImageDisk]) -> list[ImageDisk]:
    """The disks of a new image that makes its own snapshots (their ids are filled in when stored)."""
    return [ImageDisk(d.device, d.size_gb, "", d.is_system, d.disk_id) for d in disks]


def _instance_disks(inst: Instance, devices: list[str] | None) -> list[Disk]:
    """The disks an image of ``inst`` includes: every cloud disk, or the listed ones."""
    system = inst.system_disk
    check_imageable(inst)
    if system.category == "local":
        raise CloudError(
            "invalid_status",
            f"instance {inst.instance_id} has a local system disk and cannot be imaged",
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
    return [d for d in inst.disks if d.category == "cloud" and (devices is None or d.device in devices)]


def _check_data_disk(disk: Disk) -> None:
    if disk.is_system:
        raise CloudError(
            "invalid_parameter",
            f"disk {disk.disk_id} is a system disk, not a data disk",
            resource="disk",
            detail="system_disk",
        )
    if disk.category == "local":
        raise CloudError(
            "invalid_status",
            f"disk {disk.disk_id} is a local disk and cannot be imaged",
            resource="disk",
            detail="local_disk",
        )


def _check_mapping_devices(devices: list[str]) -> None:
    if len(set(devices)) != len(devices):
        raise CloudError(
            "invalid_parameter", "a device appears twice in the mapping", resource="disk", detail="duplicate_device"
        )
    if "vda" not in devices:
        raise CloudError(
            "invalid_parameter",
            "the mapping must include the system disk (vda)",
            resource="disk",
            detail="missing_system_disk",
        )


class ImagesMixin(SnapshotsMixin, TasksMixin, FailuresMixin):
    @synced
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
        return self._out(img)

    @synced
    def get_image(self, account: str, region: str, image_id: str, *, seen: bool = False) -> Image:
        """One image; ``seen``: as a client's describe sees it (the visibility lag may hide it: not_found)."""
        img = self._image(account, region, image_id)
        if seen and not self._newest_first(self._images, account, region, lambda i: i is img, seen=True):
            raise CloudError("not_found", f"image {image_id} does not exist in {region}", resource="image")
        return self._out(img)

    @synced
    def list_images(
        self,
        account: str,
        region: str,
        ids: list[str] | None = None,
        statuses: list[str] | None = None,
        tags: dict[str, str] | None = None,
        name: str | None = None,
        *,
        seen: bool = False,
    ) -> list[Image]:
        """Matching images, newest first (ties: most recently created first); ``seen``: as a client's
        list sees them (without those the visibility lag still hides)."""
        # By id: look up only those (a status poll names up to 100 among the region's thousands).
        table = self._images if ids is None else {i: self._images[i] for i in set(ids) if i in self._images}
        return self._newest_first(
            table,
            account,
            region,
            lambda img: (
                (statuses is None or img.status in statuses)
                and (name is None or img.name == name)
                and all(img.tags.get(k) == v for k, v in (tags or {}).items())
            ),
            seen=seen,
        )

    @synced
    @idempotent("create_image")
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
        inst = self._instance(account, region, instance_id)
        if kind not in ("system", "whole"):
            raise CloudError("invalid_parameter", f"unknown image kind {kind!r}", resource="image")
        disks = _instance_disks(inst, devices)
        return self._store_image(
            account, region, fresh_disks(disks), op="image", with_snapshots=True,
            name=name, description=description, kind=kind, tags=tags,
            encrypted=any(d.encrypted for d in disks), source_instance_id=instance_id,
        )  # fmt: skip

    @synced
    @idempotent("create_data_image")
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
        disk = self._disk(account, region, disk_id)
        _check_data_disk(disk)
        return self._store_image(
            account, region, fresh_disks([disk]), op="image", with_snapshots=True,
            name=name, description=description, kind="data", tags=tags,
            encrypted=disk.encrypted, source_instance_id=disk.instance_id,
        )  # fmt: skip

    @synced
    @idempotent("create_image_from_snapshots")
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
        snaps = self._ready_snapshots(account, region, mappings)
        system_disk = self._disks.get(next(s for s, device in snaps if device == "vda").disk_id)
        return self._store_image(
            account, region,
            [ImageDisk(device, s.size_gb, s.snapshot_id, device == "vda", s.disk_id) for s, device in snaps],
            op="image", with_snapshots=False,
            name=name, description=description, kind="system", tags=tags,
            encrypted=any(s.encrypted for s, _ in snaps),
            source_instance_id=system_disk.instance_id if system_disk else None,
        )  # fmt: skip

    @synced
    def delete_image(self, account: str, region: str, image_id: str, *, delete_snapshots: bool = True) -> None:
        img = self._image(account, region, image_id)
        if self._copies_in_flight(account, source=img):
            raise CloudError(
                "invalid_status",
                f"image {image_id} is being copied and cannot be deleted",
                resource="image",
                detail="image_copying",
            )
        if img.shared_with:  # Aliyun DeleteImage ImageUseShared; JD deleteImage: unshare first
            raise CloudError(
                "invalid_status",
                f"image {image_id} is shared with other accounts; unshare it first",
                resource="image",
                detail="image_shared",
            )
        self._remove_image(img, delete_snapshots=delete_snapshots, reason="image deleted")

    @synced
    def modify_image(
        self, account: str, region: str, image_id: str, *, name: str | None = None, description: str | None = None
    ) -> Image:
        """Rename or re-describe an image; None keeps the current value."""
        img = self._image(account, region, image_id)
        if name is not None:
            img.name = name
        if description is not None:
            img.description = description
        return self._out(img)

    @synced
    def tag_resources(self, account: str, region: str, resource_ids: list[str], tags: dict[str, str]) -> None:
        for entity in self._taggables(account, region, resource_ids):
            entity.tags.update(tags)

    @synced
    def untag_resources(self, account: str, region: str, resource_ids: list[str], keys: list[str]) -> None:
        for entity in self._taggables(account, region, resource_ids):
            for key in keys:
                entity.tags.pop(key, None)

    # ---- internals ---------------------------------------------------------------------------

    def _ready_snapshots(
        self, account: str, region: str, mappings: list[tuple[str, str]]
    ) -> list[tuple[Snapshot, str]]:
        """(snapshot, device) per mapping: devices unique and including vda, every snapshot accomplished."""
        _check_mapping_devices([device for _, device in mappings])
        snaps = [(self._snapshot(account, region, sid), device) for sid, device in mappings]
        for snap, _ in snaps:
            require_status("snapshot", snap.snapshot_id, snap.status, "accomplished", "snapshot_not_ready")
        return snaps

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

    def _store_image(
        self,
        account: str,
        region: str,
        disks: list[ImageDisk],
        *,
        op: str,
        with_snapshots: bool,
        name: str,
        description: str,
        kind: str,
        tags: dict[str, str] | None,
        encrypted: bool,
        source_instance_id: str | None,
        image_type: str = "private",
        source_image_id: str | None = None,
        source_region: str | None = None,
        vault_id: str | None = None,
    ) -> Image:
        """Check quota, then store a creating image lasting an ``op`` duration (a latency operation).

        ``with_snapshots`` makes one snapshot per disk, finishing with the image, and counts them
        against the snapshot quota; otherwise the disks name existing snapshots.
        """
        if name and self._rules(self._account(account)).unique_image_names:
            taken = next((i for i in self._images.at(account, region).values() if i.name == name), None)
            if taken is not None:
                raise CloudError(
                    "invalid_parameter",
                    f"image name {name!r} is already used by {taken.image_id} in {region}",
                    resource="image",
                    detail="duplicate_name",
                )
        self._check_quota(account, region, images=1, snapshots=len(disks) if with_snapshots else 0)
        size_gb = sum(d.size_gb for d in disks)
        duration = self._duration(account, op, size_gb)
        now = self._now
        img = Image(
            image_id=self._new_id(self._rules(self._account(account)).image_id),
            account=account,
            region=region,
            name=name,
            description=description,
            status="creating",
            progress=0,
            size_gb=size_gb,
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
        for d in disks if with_snapshots else ():
            snap = self._store_snapshot(
                account, region, d.disk_id or "", d.device, d.size_gb, encrypted, duration, image_id=img.image_id
            )
            d.snapshot_id = snap.snapshot_id
        self._take_pending_failure(img, now + timedelta(seconds=duration / 2))
        self._refresh()
        return self._out(img)

    def _remove_image(self, img: Image, *, delete_snapshots: bool, reason: str) -> None:
        self._freeze_tasks(img.image_id, reason)
        del self._images[img.image_id]
        self._pending.discard(img.image_id)
        if not delete_snapshots:
            return
        still_used = {d.snapshot_id for other in self._images.values() for d in other.disks}
        for d in img.disks:
            if d.snapshot_id and d.snapshot_id not in still_used:
                self._snapshots.pop(d.snapshot_id, None)
                self._pending.discard(d.snapshot_id)

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
