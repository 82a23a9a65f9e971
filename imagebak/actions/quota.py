"""Step 3: enough image (and, where tied, snapshot) quota before creating anything.

The quota is read once per account and region per run and then counted down locally, so
concurrent instances of one region cannot all squeeze through the last free slot.
"""

from __future__ import annotations

import threading

from imagebak.actions import QuotaSkip
from imagebak.providers.base import Provider


class QuotaBudget:
    def __init__(self, provider: Provider, region: str) -> None:
        self.provider = provider
        self.region = region
        self._lock = threading.Lock()
        self._remaining: dict[str, int] | None = None
        self._limits: dict[str, tuple[int, int]] = {}

    def reserve(self, snapshots: int) -> None:
        """Take one image and ``snapshots`` snapshots from the budget, or QuotaSkip for lack of quota."""
        with self._lock:
            if self._remaining is None:
                quotas = self.provider.quotas(self.region)
                self._remaining = {q.resource: q.remaining for q in quotas}
                self._limits = {q.resource: (q.used, q.limit) for q in quotas}
            need = {"image": 1, "snapshot": snapshots}
            for resource, amount in need.items():
                left = self._remaining.get(resource)
                if left is not None and left < amount:
                    used, limit = self._limits[resource]
                    raise QuotaSkip(
                        f"no {resource} quota left in {self.region} ({used} of {limit} used, {amount} needed)",
                        code=f"QuotaExhausted.{resource}",
                    )
            for resource, amount in need.items():
                if resource in self._remaining:
                    self._remaining[resource] -= amount
