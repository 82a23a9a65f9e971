"""Step 2, the disk filter: which of an instance's disks go into its image.

Vendor-neutral: the adapters turn the chosen devices into each API's form (Aliyun snapshots +
DiskDeviceMapping, Huawei data_images, JD dataDisks with noDevice).
"""

from __future__ import annotations

from collections.abc import Sequence

from imagebak.providers.base import InstanceInfo


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
