"""Image sharing: which other accounts may use an image (Aliyun ModifyImageSharePermission, JD shareImage).

Owns ``share_image``. The model only records the grant (account id or JD pin -> when); no other
account of the emulator sees shared images. The limits are per provider (rules.py
``max_share_accounts``); a shared image cannot be deleted until it is unshared (images.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from imagebak.emulator.model.base import synced
from imagebak.emulator.model.copies import CopiesMixin
from imagebak.emulator.model.entities import CloudError, Image


class SharingMixin(CopiesMixin):
    @synced
    def share_image(
        self, account: str, region: str, image_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> Image:
        """Grant ``add`` and revoke ``remove`` (revoking an account never granted is a no-op), all or nothing."""
        acc = self._account(account)
        img = self._image(account, region, image_id)
        limit = self._rules(acc).max_share_accounts
        if limit is None:
            raise CloudError("unsupported", f"{acc.provider} images cannot be shared here", resource="image")
        if add and img.encrypted:
            raise CloudError(
                "unsupported",
                f"image {image_id} has encrypted snapshots and cannot be shared",
                resource="image",
                detail="encrypted_share",
            )
        if account in add:
            raise CloudError(
                "invalid_parameter",
                "an image cannot be shared with its own account",
                resource="image",
                detail="share_self",
            )
        after = {k: v for k, v in img.shared_with.items() if k not in remove}
        now = self._now.strftime("%Y-%m-%dT%H:%M:%SZ")
        after.update({target: after.get(target, now) for target in add if target not in remove})
        if len(after) > limit:
            raise CloudError(
                "quota_exceeded",
                f"an image can be shared with at most {limit} accounts",
                resource="image",
                detail="share_accounts",
            )
        img.shared_with = after
        return self._out(img)
