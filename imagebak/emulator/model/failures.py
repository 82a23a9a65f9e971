"""Failures the model injects itself (the other faults strike before a front-end, in ../faults.py).

Owns ``fail_next_creations`` (the next n creations or copies are accepted, then fail half-way),
``fail_image`` (a creating image fails now) and the scheduling of such a failure on an image and
the snapshots made for it.
"""

from __future__ import annotations

from datetime import datetime

from imagebak.emulator.model.base import ModelBase, synced
from imagebak.emulator.model.entities import Image, Snapshot, require_status

# Vendor behaviour with no source either way: the emulator follows the first reading (False),
# a test switches to the other (True) to prove the adapter copes with both.
QUIRKS: dict[str, str] = {
    "jd_copy_batch_partial": "a refused copyImages call keeps the copies it started before the refused image",
    "jd_copy_drops_description": "copyImages gives every copy JD's own description, not the one requested",
}


class FailuresMixin(ModelBase):
    def fail_next_creations(self, n: int, reason: str = "injected creation failure") -> None:
        """The next n image creations/copies are accepted, then turn failed half-way through."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self.lock:
            self._fail_next.extend([reason] * n)

    def hide_new(self, seconds: float, provider: str | None = None) -> None:
        """Eventual consistency: for ``seconds`` (simulated) after its creation, a new image or
        snapshot is missing from list and describe answers (``seen=True`` look-ups) of ``provider``'s
        accounts (None: every provider). 0 turns it off. Creating, copying and deleting still find it."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self.lock:
            if seconds:
                self._lag[provider] = seconds
            else:
                self._lag.pop(provider, None)

    def set_quirk(self, name: str, on: bool = True) -> None:
        """Switch to the other reading of an unconfirmed vendor behaviour (``QUIRKS``)."""
        if name not in QUIRKS:
            raise ValueError(f"unknown quirk {name!r} (expected one of {', '.join(QUIRKS)})")
        with self.lock:
            self._quirks[name] = on

    def quirk(self, name: str) -> bool:
        with self.lock:
            return self._quirks.get(name, False)

    def pending_failures(self) -> int:
        with self.lock:
            return len(self._fail_next)

    @synced
    def fail_image(self, account: str, region: str, image_id: str, reason: str = "injected failure") -> None:
        """A creating image (and the snapshots made for it) turns failed now."""
        img = self._image(account, region, image_id)
        require_status("image", image_id, img.status, "creating", "image_not_creating")
        self._schedule_failure(img, self._now, reason)
        self._refresh()

    def _take_pending_failure(self, img: Image, halfway: datetime) -> None:
        """A new image takes the next pending injected failure, if any, to strike at ``halfway``."""
        if self._fail_next:
            self._schedule_failure(img, halfway, self._fail_next.pop(0))

    def _schedule_failure(self, img: Image, at: datetime, reason: str) -> None:
        made_for_it = (s for s in self._snapshots.values() if s.image_id == img.image_id)
        entities: list[Image | Snapshot] = [img, *made_for_it]
        for entity in entities:
            if entity.status in ("creating", "progressing"):
                entity.fail_at, entity.fail_reason = at, reason
                self._pending.touch(entity.image_id if isinstance(entity, Image) else entity.snapshot_id)
