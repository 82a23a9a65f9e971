"""A Provider that calls the emulator's CloudModel directly: no HTTP, no SDK, a ManualClock.

``ModelProvider`` is vendor-neutral: it answers from the model (which applies the rules of the
model account's provider flavour) and classifies the model's refusals into ``ErrorKind``. It
never passes a client token, so only the engine's own adoption (``find_submitted`` by the key
tag) can keep a retried submission from making a duplicate.

Faults are injected per call: ``fail`` raises a ProviderError on the n-th call of a method,
``lose_reply`` performs the n-th call and then raises a TIMEOUT, ``before`` runs a hook (e.g. to
make the model fail the next creation). ``calls`` counts every call by method name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from imagebak.emulator.clock import ManualClock
from imagebak.emulator.model import CloudError, CloudModel, Disk, Image
from imagebak.ownership import TAG_KEY
from imagebak.providers.base import (
    CopySpec,
    DiskInfo,
    ErrorKind,
    ImageSpec,
    ImageState,
    ImageStatus,
    InstanceInfo,
    Provider,
    ProviderError,
    ProviderLimits,
    Quota,
    RetryPolicy,
    adoptable,
)

T = TypeVar("T")

VENDOR = "model"
KINDS = {
    "not_found": ErrorKind.NOT_FOUND,
    "invalid_parameter": ErrorKind.INVALID,
    "invalid_status": ErrorKind.INVALID,
    "unsupported": ErrorKind.INVALID,
    "quota_exceeded": ErrorKind.QUOTA,
    "limit_exceeded": ErrorKind.CONFLICT,
    "throttled": ErrorKind.THROTTLED,
    "internal": ErrorKind.UNAVAILABLE,
    "unavailable": ErrorKind.UNAVAILABLE,
    "auth_failed": ErrorKind.AUTH,
}
STATES = {"creating": ImageState.PENDING, "available": ImageState.AVAILABLE, "failed": ImageState.FAILED}


class Killed(BaseException):
    """A simulated SIGKILL: not an Exception, so no ``except Exception`` in the engine swallows it."""


class Process:
    """One simulated imagebak process: once killed, every provider call and journal write dies too."""

    def __init__(self) -> None:
        self.dead = False

    def kill(self) -> None:
        self.dead = True
        raise Killed

    def check(self) -> None:
        if self.dead:
            raise Killed


@dataclass(frozen=True)
class Fault:
    kind: ErrorKind
    code: str
    lose_reply: bool = False  # perform the call, then raise

    def error(self, method: str) -> ProviderError:
        return ProviderError(VENDOR, method, self.kind, self.code, f"injected {self.kind.value}", request_id="req-x")


class ModelProvider(Provider):
    vendor = VENDOR

    def __init__(
        self,
        model: CloudModel,
        clock: ManualClock,
        account: str,
        *,
        limits: ProviderLimits | None = None,
        retry: RetryPolicy | None = None,
        process: Process | None = None,
        copy_tags: bool = True,
    ) -> None:
        """``copy_tags=False``: the copy call takes no tags (as on Huawei), so ``tag_image`` must add them."""
        self.model = model
        self.clock = clock
        self.account = account
        self.limits = limits or ProviderLimits(max_images_per_copy_call=1, default_concurrency=4)
        self.retry_policy = retry or RetryPolicy(max_attempts=3, initial_wait=1.0, max_wait=5.0, deadline_seconds=60)
        self.process = process or Process()
        self.copy_tags = copy_tags
        self.calls: Counter[str] = Counter()
        self._faults: dict[tuple[str, int], Fault] = {}
        self._hooks: dict[tuple[str, int], Callable[[], None]] = {}

    # ---- fault injection ---------------------------------------------------------------------

    def fail(self, method: str, kind: ErrorKind, *, on_call: int = 1, times: int = 1, code: str = "Injected") -> None:
        """Raise a ProviderError of ``kind`` on calls ``on_call`` .. ``on_call + times - 1`` of ``method``."""
        for n in range(on_call, on_call + times):
            self._faults[(method, n)] = Fault(kind, code)

    def lose_reply(self, method: str, *, on_call: int = 1) -> None:
        """The ``on_call``-th call of ``method`` reaches the cloud, but its reply is lost (a TIMEOUT)."""
        self._faults[(method, on_call)] = Fault(ErrorKind.TIMEOUT, "ReadTimeout", lose_reply=True)

    def before(self, method: str, hook: Callable[[], None], *, on_call: int = 1) -> None:
        """Run ``hook`` just before the ``on_call``-th call of ``method`` reaches the model."""
        self._hooks[(method, on_call)] = hook

    def _call(self, method: str, action: Callable[[], T]) -> T:
        self.process.check()
        self.calls[method] += 1
        n = self.calls[method]
        hook = self._hooks.pop((method, n), None)
        if hook is not None:
            hook()
        fault = self._faults.pop((method, n), None)
        if fault is not None and not fault.lose_reply:
            raise fault.error(method)
        try:
            result = action()
        except CloudError as exc:
            raise ProviderError(VENDOR, method, KINDS[exc.kind], exc.detail or exc.kind, exc.message) from None
        if fault is not None:
            raise fault.error(method)
        return result

    # ---- Provider ----------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def get_instance(self, region: str, instance_id: str) -> InstanceInfo | None:
        def action() -> InstanceInfo | None:
            found = self.model.list_instances(self.account, region, [instance_id])
            if not found:
                return None
            inst = found[0]
            return InstanceInfo(inst.instance_id, region, inst.name, inst.status, tuple(map(_disk, inst.disks)))

        return self._call("get_instance", action)

    def quotas(self, region: str) -> Sequence[Quota]:
        def action() -> list[Quota]:
            return [Quota(r, *self.model.quota(self.account, region, r)) for r in ("image", "snapshot")]

        return self._call("quotas", action)

    def create_image(self, spec: ImageSpec) -> str:
        def action() -> str:
            image = self.model.create_image(
                self.account,
                spec.region,
                spec.instance.instance_id,
                name=spec.name,
                description=spec.description,
                devices=None if spec.all_disks else list(spec.devices),
                tags=dict(spec.tags),
            )
            return image.image_id

        return self._call("create_image", action)

    def find_submitted(self, region: str, key: str, name: str, attempted_at: datetime | None = None) -> str | None:
        def action() -> str | None:
            found = self.model.list_images(self.account, region, tags={TAG_KEY: key})
            return adoptable([(img.image_id, img.status == "failed") for img in found])

        return self._call("find_submitted", action)

    def find_images(self, region: str, tags: Mapping[str, str], name: str | None = None) -> Sequence[ImageStatus]:
        def action() -> list[ImageStatus]:
            return [_status(img) for img in self.model.list_images(self.account, region, tags=dict(tags), name=name)]

        return self._call("find_images", action)

    def image_status(
        self, region: str, refs: Sequence[str], submitted_at: Mapping[str, datetime] | None = None
    ) -> Mapping[str, ImageStatus]:
        def action() -> dict[str, ImageStatus]:
            found = {img.image_id: _status(img) for img in self.model.list_images(self.account, region, ids=list(refs))}
            return {ref: found.get(ref, ImageStatus(ref, ImageState.MISSING)) for ref in refs}

        return self._call("image_status", action)

    def copy_images(self, specs: Sequence[CopySpec]) -> Mapping[str, str]:
        def action() -> dict[str, str]:
            refs: dict[str, str] = {}
            for spec in specs:
                copy = self.model.copy_image(
                    self.account,
                    spec.source_region,
                    spec.image_id,
                    spec.dest_region,
                    name=spec.name,
                    description=spec.description,
                    tags=dict(spec.tags) if self.copy_tags else None,
                    vault_id=spec.vault_id,
                )
                refs[spec.idempotency_key] = copy.image_id
            return refs

        return self._call("copy_images", action)

    def tag_image(self, region: str, image_id: str, tags: Mapping[str, str]) -> None:
        self._call("tag_image", lambda: self.model.tag_resources(self.account, region, [image_id], dict(tags)))

    def delete_image(self, region: str, image_id: str) -> None:
        self._call("delete_image", lambda: self.model.delete_image(self.account, region, image_id))


def _disk(disk: Disk) -> DiskInfo:
    return DiskInfo(disk.device, disk.disk_id, disk.category, disk.size_gb, disk.is_system, disk.encrypted)


def _status(img: Image) -> ImageStatus:
    return ImageStatus(
        ref=img.image_id,
        state=STATES[img.status],
        image_id=img.image_id,
        progress=img.progress,
        size_gb=img.size_gb,
        detail=img.fail_reason or img.status,
    )
