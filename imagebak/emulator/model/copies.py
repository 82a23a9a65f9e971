"""Cross-region copies: the vendors' copy rules, the copy itself, and cancelling one.

Owns ``copy_image`` (every rule of rules.py checked before anything is stored, destination quota
included), ``cancel_copy`` and the per-account cap on copies in flight. A copy is an image in the
destination region with ``source_image_id`` set, "creating" until its copy duration has passed.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagebak.emulator.model.base import idempotent, synced
from imagebak.emulator.model.entities import Account, CloudError, Image
from imagebak.emulator.model.images import ImagesMixin, fresh_disks
from imagebak.emulator.rules import ProviderRules

# (broken?, kind, detail, message): the first broken row is the refusal.
_Rows = Iterable[tuple[bool, str, str, str]]


def _first_refusal(rows: _Rows) -> CloudError | None:
    return next(
        (CloudError(kind, msg, resource="image", detail=detail) for bad, kind, detail, msg in rows if bad), None
    )


def _source_rows(src: Image, dest_region: str) -> _Rows:
    """What any copy needs, checked before the destination region is looked at."""
    return (
        (src.status != "available", "invalid_status", "image_not_available", f"image {src.image_id} is {src.status}"),
        (dest_region == src.region, "invalid_parameter", "same_region", "destination region equals the source region"),
    )


def _rule_rows(rules: ProviderRules, src: Image, dest_region: str, vault_id: str | None) -> _Rows:
    """The provider's copy rules, in the order the clouds check them."""
    limit = rules.copy_size_limit(src.region)
    whole = src.kind == "whole"
    return (
        (
            src.image_type == "iso" and not rules.iso_copyable,
            "unsupported", "iso_image", f"image {src.image_id} is an ISO image: not copyable",
        ),
        (
            src.encrypted and not rules.encrypted_copyable,
            "unsupported", "encrypted_image", f"image {src.image_id} is encrypted: not copyable",
        ),
        (
            limit is not None and src.size_gb > limit,
            "unsupported", "copy_size_limit",
            f"image {src.image_id} is {src.size_gb} GB; copies from {src.region} allow {limit} GB",
        ),
        (
            whole and not rules.whole_copy_allowed(src.region, dest_region),
            "unsupported", "whole_image_region",
            f"whole images cannot be copied from {src.region} to {dest_region}",
        ),
        (
            whole and rules.whole_image_copy_requires_vault and not vault_id,
            "invalid_parameter", "vault_required", "copying a whole image requires a vault",
        ),
    )  # fmt: skip


class CopiesMixin(ImagesMixin):
    @synced
    @idempotent("copy_image")
    def copy_image(
        self,
        account: str,
        source_region: str,
        image_id: str,
        dest_region: str,
        *,
        name: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        vault_id: str | None = None,
        client_token: str | None = None,
    ) -> Image:
        """Start a cross-region copy; the destination image is "creating" until its ready_at."""
        acc = self._account(account)
        src = self._image(account, source_region, image_id)
        self._check_copyable(acc, src, dest_region, vault_id)
        return self._store_image(
            account, dest_region, fresh_disks(src.disks), op="copy", with_snapshots=True,
            name=name, description=description, kind=src.kind, tags=tags, encrypted=src.encrypted,
            image_type=src.image_type, source_instance_id=src.source_instance_id,
            source_image_id=src.image_id, source_region=source_region, vault_id=vault_id,
        )  # fmt: skip

    @synced
    def cancel_copy(self, account: str, dest_region: str, image_id: str) -> None:
        img = self._image(account, dest_region, image_id)
        if img.source_image_id is None or img.status != "creating":
            raise CloudError(
                "invalid_status",
                f"image {image_id} is not a copy in progress",
                resource="image",
                detail="copy_finished",
            )
        self._remove_image(img, delete_snapshots=True, reason="copy cancelled")

    def _check_copyable(self, acc: Account, src: Image, dest_region: str, vault_id: str | None) -> None:
        rules = self._rules(acc)
        refusal = _first_refusal(_source_rows(src, dest_region))
        if refusal is None:
            self._check_region(acc, dest_region)
            refusal = _first_refusal(_rule_rows(rules, src, dest_region, vault_id))
        if refusal is not None:
            raise refusal
        cap = rules.max_concurrent_copies
        if cap is not None and len(self._copies_in_flight(acc.name)) >= cap:
            raise CloudError(
                "limit_exceeded",
                f"at most {cap} image copies may run at once per account",
                resource="image",
                detail="concurrent_copies",
            )
