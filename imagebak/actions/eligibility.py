"""Step 1 and 2: is the instance there and imageable, and which of its disks go into the image."""

from __future__ import annotations

from collections.abc import Sequence

from imagebak.actions import Fail, Skip
from imagebak.providers.base import InstanceInfo, Provider


def fetch_instance(provider: Provider, region: str, instance_id: str) -> InstanceInfo:
    """The instance, or Fail if the region has none; Skip if its system disk is a local disk."""
    instance = provider.get_instance(region, instance_id)
    if instance is None:
        raise Fail(f"instance {instance_id} does not exist in {region}", code="InstanceNotFound")
    system = instance.system_disk
    if system is None:
        raise Fail(f"instance {instance_id} reports no system disk", code="NoSystemDisk")
    if system.category != "cloud":
        raise Skip(f"instance {instance_id} has a local system disk, which cannot be imaged", code="LocalSystemDisk")
    return instance


def select_devices(instance: InstanceInfo, disks: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """The cloud disks to image, and notes on requested devices left out (absent or local).

    ``all`` means every cloud disk. A device list always contains vda (validation enforces it);
    devices the instance lacks are ignored, and local data disks are never included.
    """
    by_device = {d.device: d for d in instance.disks}
    cloud = [d.device for d in instance.disks if d.category == "cloud"]
    if disks == "all":
        local = [d.device for d in instance.disks if d.category != "cloud"]
        return cloud, [f"{device}: local disk, never imaged" for device in local]
    selected, notes = [], []
    for device in disks:
        disk = by_device.get(device)
        if disk is None:
            notes.append(f"{device}: not attached to {instance.instance_id}, ignored")
        elif disk.category != "cloud":
            notes.append(f"{device}: local disk, never imaged")
        else:
            selected.append(device)
    return selected, notes


def image_size_gb(instance: InstanceInfo, devices: Sequence[str]) -> int:
    return sum(d.size_gb for d in instance.disks if d.device in devices)
