"""Step 1, eligibility: the instance exists in the policy's region and can be imaged at all."""

from __future__ import annotations

from imagebak.actions import Fail, Skip
from imagebak.providers.base import InstanceInfo


def eligible(instance: InstanceInfo | None, region: str, instance_id: str) -> InstanceInfo:
    """The instance as the cloud described it, or Fail if the region has none; Skip if its system
    disk is a local disk."""
    if instance is None:
        raise Fail(f"instance {instance_id} does not exist in {region}", code="InstanceNotFound")
    system = instance.system_disk
    if system is None:
        raise Fail(f"instance {instance_id} reports no system disk", code="NoSystemDisk")
    if system.category != "cloud":
        raise Skip(f"instance {instance_id} has a local system disk, which cannot be imaged", code="LocalSystemDisk")
    return instance
