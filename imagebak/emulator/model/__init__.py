"""The vendor-neutral cloud model: state and rules, no wire formats and no HTTP.

``CloudModel`` is composed moto-style from one mixin per resource; each module says what it owns:

- ``entities``: CloudError, the entity dataclasses, their JSON form
- ``base``: lock, clock, tables, lazy statuses (``synced``), ids, scoped lookups, idempotency, ``atomic``
- ``accounts``: accounts, regions, Huawei projects, latency overrides
- ``instances``: instances and their disks
- ``quotas``: per-region quotas and the admin summary
- ``tasks``: jobs and their outcome
- ``failures``: failures the model injects itself
- ``snapshots``: disk snapshots
- ``images``: image creation (instance, data disk, snapshots, seeded), deletion, tags
- ``copies``: cross-region copies, their rules, cancelling
- ``sharing``: which other accounts an image is shared with
- ``persistence``: to_dict / from_dict / load_dynamic_state

A mixin inherits the mixins it builds on, so every call between modules is type-checked.
Statuses move lazily: every public call first brings in-flight images and snapshots up to the
clock's "now", so no background thread is needed and a ManualClock fully controls progress.
See docs/dev/emulator-contract.md.
"""

from __future__ import annotations

from imagebak.emulator.model.entities import (
    ERROR_KINDS,
    Account,
    CloudError,
    Disk,
    Image,
    ImageDisk,
    Instance,
    Snapshot,
    Task,
)
from imagebak.emulator.model.instances import InstancesMixin
from imagebak.emulator.model.persistence import STATE_VERSION, PersistenceMixin
from imagebak.emulator.model.sharing import SharingMixin

__all__ = [
    "ERROR_KINDS",
    "STATE_VERSION",
    "Account",
    "CloudError",
    "CloudModel",
    "Disk",
    "Image",
    "ImageDisk",
    "Instance",
    "Snapshot",
    "Task",
]


class CloudModel(InstancesMixin, SharingMixin, PersistenceMixin):
    """Regions, instances, disks, images, snapshots, tasks and quotas of every emulated account."""
