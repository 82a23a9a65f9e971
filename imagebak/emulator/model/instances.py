"""Instances and their disks: declared by the fixture, read by every front-end.

Owns ``add_instance`` (which checks every disk before it generates any id, so a refused
instance leaves neither a trace nor a consumed RNG draw) and the instance and disk lookups.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from imagebak.emulator.model.base import ModelBase
from imagebak.emulator.model.entities import INSTANCE_STATUSES, TRANSIENT_STATUSES, Disk, Instance


class InstancesMixin(ModelBase):
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
            if status not in INSTANCE_STATUSES + TRANSIENT_STATUSES:
                raise ValueError(f"instance status must be one of {', '.join(INSTANCE_STATUSES + TRANSIENT_STATUSES)}")
            built = [Disk(**{**spec, "instance_id": instance_id}) for spec in disks]
            self._check_disks(instance_id, built)
            rules = self._rules(acc)
            given = {d.disk_id for d in built}
            for disk in built:
                disk.disk_id = disk.disk_id or self._new_id(rules.disk_id, reserved=given)
            inst = Instance(
                instance_id, account, region, name, status, built, zone or rules.zone_format.format(region=region)
            )
            self._instances[instance_id] = inst
            self._disks.update((d.disk_id, d) for d in built)
            return self._out(inst)

    def _check_disks(self, instance_id: str, disks: list[Disk]) -> None:
        seen: set[str] = set()
        for disk in disks:
            if disk.category not in ("cloud", "local"):
                raise ValueError(f"disk {disk.device}: category must be cloud or local")
            if disk.size_gb <= 0:
                raise ValueError(f"disk {disk.device}: size_gb must be positive")
            if disk.disk_id and (disk.disk_id in self._disks or disk.disk_id in seen):
                raise ValueError(f"duplicate disk id {disk.disk_id!r}")
            seen.add(disk.disk_id)
        devices = [d.device for d in disks]
        if len(set(devices)) != len(devices):
            raise ValueError(f"instance {instance_id}: duplicate disk device names")
        if sum(d.is_system for d in disks) != 1:
            raise ValueError(f"instance {instance_id}: exactly one disk must be the system disk")

    def set_instance_state(
        self, account: str, region: str, instance_id: str, *, status: str | None = None, task: str | None = None
    ) -> Instance:
        """Put an instance into a state (e.g. ``stopping``) and/or a task in progress (``task=None`` ends it)."""
        if status is not None and status not in INSTANCE_STATUSES + TRANSIENT_STATUSES:
            raise ValueError(f"instance status must be one of {', '.join(INSTANCE_STATUSES + TRANSIENT_STATUSES)}")
        with self.lock:
            inst = self._instance(account, region, instance_id)
            inst.status = status or inst.status
            inst.task = task
            return self._out(inst)

    def get_instance(self, account: str, region: str, instance_id: str) -> Instance:
        with self.lock:
            return self._out(self._instance(account, region, instance_id))

    def list_instances(self, account: str, region: str, ids: Collection[str] | None = None) -> list[Instance]:
        wanted = set(ids) if ids is not None else None
        with self.lock:
            self._check_region(self._account(account), region)
            found = [
                i
                for i in self._instances.values()
                if i.account == account and i.region == region and (wanted is None or i.instance_id in wanted)
            ]
            return [self._out(i) for i in found]

    def list_disks(
        self,
        account: str,
        region: str,
        instance_id: str | None = None,
        disk_ids: list[str] | None = None,
    ) -> list[Disk]:
        wanted = set(disk_ids) if disk_ids is not None else None
        with self.lock:  # filter first, copy only what is returned (a region may hold thousands)
            self._check_region(self._account(account), region)
            disks = [
                d
                for inst in self._instances.values()
                if inst.account == account and inst.region == region and instance_id in (None, inst.instance_id)
                for d in inst.disks
                if wanted is None or d.disk_id in wanted
            ]
            return [self._out(d) for d in disks]

    def get_disk(self, account: str, region: str, disk_id: str) -> Disk:
        with self.lock:
            return self._out(self._disk(account, region, disk_id))
