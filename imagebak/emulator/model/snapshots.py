"""Disk snapshots: made on their own (``create_snapshot``) or one per disk by an image creation.

Owns snapshot creation (local disks have none; snapshot quota first), lookups, and
``_store_snapshot``, which images use for the snapshots they make.
"""

from __future__ import annotations

from datetime import timedelta

from imagebak.emulator.model.base import idempotent, synced
from imagebak.emulator.model.entities import CloudError, Snapshot, check_imageable
from imagebak.emulator.model.quotas import QuotasMixin


class SnapshotsMixin(QuotasMixin):
    @synced
    @idempotent("create_snapshot")
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
        disk = self._disk(account, region, disk_id)
        if disk.category == "local":
            raise CloudError(
                "unsupported",
                f"disk {disk_id} is a local disk; local disks have no snapshots",
                resource="disk",
                detail="local_disk",
            )
        owner = self._instances.get(disk.instance_id or "")
        if owner is not None:
            check_imageable(owner)
        if any(s.disk_id == disk.disk_id and s.status == "progressing" for s in self._snapshots.values()):
            raise CloudError(
                "invalid_status",
                f"disk {disk_id} already has a snapshot in progress; try again when it is done",
                resource="disk",
                detail="snapshot_in_progress",
            )
        self._check_quota(account, region, images=0, snapshots=1)
        duration = self._duration(account, "snapshot", disk.size_gb)
        snap = self._store_snapshot(
            account, region, disk.disk_id, disk.device, disk.size_gb, disk.encrypted, duration, name=name, tags=tags
        )
        return self._out(snap)

    @synced
    def delete_snapshot(self, account: str, region: str, snapshot_id: str) -> None:
        """Delete a snapshot (a progressing one stops being made); one an image uses cannot go."""
        snap = self._snapshot(account, region, snapshot_id)
        users = sorted(i.image_id for i in self._images.values() if any(d.snapshot_id == snapshot_id for d in i.disks))
        if users:
            raise CloudError(
                "invalid_status",
                f"snapshot {snapshot_id} is used by image(s) {', '.join(users)}",
                resource="snapshot",
                detail="snapshot_in_use",
            )
        del self._snapshots[snap.snapshot_id]
        self._pending.discard(snap.snapshot_id)

    @synced
    def get_snapshot(self, account: str, region: str, snapshot_id: str) -> Snapshot:
        return self._out(self._snapshot(account, region, snapshot_id))

    @synced
    def list_snapshots(
        self,
        account: str,
        region: str,
        ids: list[str] | None = None,
        disk_id: str | None = None,
        *,
        seen: bool = False,
    ) -> list[Snapshot]:
        return self._newest_first(
            self._snapshots,
            account,
            region,
            lambda s: (ids is None or s.snapshot_id in ids) and (disk_id is None or s.disk_id == disk_id),
            seen=seen,
        )

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
        """Store a progressing snapshot, ready ``duration`` seconds from now; returns the live entity."""
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
        return snap
