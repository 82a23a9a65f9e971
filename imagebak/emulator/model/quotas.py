"""Per-region quotas (images, snapshots) and the usage summary of the admin API.

Owns the limits (provider default or a ``set_quota`` override), usage counting, and the check
every creation runs before it stores anything: an image takes 1 image + 1 snapshot per disk it
snapshots, in the region where it is stored.
"""

from __future__ import annotations

from typing import Any

from imagebak.emulator.model.base import ModelBase, synced
from imagebak.emulator.model.entities import Account, CloudError
from imagebak.emulator.rules import RESOURCES


class QuotasMixin(ModelBase):
    @synced
    def quota(self, account: str, region: str, resource: str) -> tuple[int, int]:
        """(used, limit) of a per-region quota."""
        acc = self._account(account)
        self._check_region(acc, region)
        if resource not in RESOURCES:
            raise CloudError("invalid_parameter", f"unknown quota resource {resource!r}", resource="quota")
        return self._used(account, region, resource), self._limit(acc, region, resource)

    def set_quota(self, account: str, region: str, resource: str, limit: int) -> None:
        if resource not in RESOURCES:
            raise ValueError(f"unknown quota resource {resource!r} (expected image or snapshot)")
        if limit < 0:
            raise ValueError("quota limit must be >= 0")
        with self.lock:
            self._check_region(self._account(account), region)
            self._quota_limits[(account, region, resource)] = limit

    @synced
    def summary(self) -> dict[str, Any]:
        """Images and snapshots per account and region, for the admin API."""
        out: dict[str, Any] = {}
        for acc in self._accounts.values():
            regions: dict[str, Any] = {}
            for region in acc.regions:
                images = self._images.at(acc.name, region).values()
                regions[region] = {
                    "images": [
                        {"image_id": i.image_id, "name": i.name, "status": i.status, "progress": self._out(i).progress}
                        for i in images
                    ],
                    "snapshots": self._used(acc.name, region, "snapshot"),
                    "instances": sum(
                        1 for i in self._instances.values() if i.account == acc.name and i.region == region
                    ),
                }
            out[acc.name] = {"provider": acc.provider, "regions": regions}
        return out

    def _limit(self, acc: Account, region: str, resource: str) -> int:
        override = self._quota_limits.get((acc.name, region, resource))
        return override if override is not None else self._rules(acc).default_quota[resource]

    def _used(self, account: str, region: str, resource: str) -> int:
        return len((self._images if resource == "image" else self._snapshots).at(account, region))

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
