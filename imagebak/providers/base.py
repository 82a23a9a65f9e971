"""The one small interface every cloud adapter implements, and the neutral types it speaks.

The engine only ever sees these types; each vendor adapter (``aliyun.py``, ``huawei.py``,
``jdcloud.py``) maps them onto its official SDK. Vendor quirks stay inside the adapter.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum


class ErrorKind(str, Enum):
    """What went wrong, independent of the vendor's code. Drives retry and reporting."""

    THROTTLED = "throttled"  # rate limited: transient
    UNAVAILABLE = "unavailable"  # 5xx / internal error: transient
    TIMEOUT = "timeout"  # connect/read timeout or connection reset: transient
    NOT_FOUND = "not_found"
    QUOTA = "quota"  # image or snapshot quota exhausted
    INVALID = "invalid"  # invalid parameter or invalid resource status
    AUTH = "auth"  # bad credentials / signature / permission
    CONFLICT = "conflict"  # e.g. concurrent copy limit, image in use: retry later, not now
    UNKNOWN = "unknown"

    @property
    def transient(self) -> bool:
        return self in (ErrorKind.THROTTLED, ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT)


class ProviderError(Exception):
    """A classified failure of one cloud call. Never carries credentials."""

    def __init__(
        self,
        vendor: str,
        action: str,
        kind: ErrorKind,
        code: str,
        message: str,
        request_id: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.vendor = vendor
        self.action = action
        self.kind = kind
        self.code = code
        self.message = message
        self.request_id = request_id
        self.http_status = http_status
        super().__init__(self.describe())

    @property
    def transient(self) -> bool:
        return self.kind.transient

    def describe(self) -> str:
        rid = f", request id {self.request_id}" if self.request_id else ""
        return f"{self.vendor} {self.action}: {self.code}: {self.message}{rid}"


@dataclass(frozen=True)
class DiskInfo:
    device: str  # short device name: vda, vdb, ... (adapters strip /dev/ and map xvd* to vd*)
    disk_id: str
    category: str  # "cloud" | "local"
    size_gb: int
    is_system: bool
    encrypted: bool = False


@dataclass(frozen=True)
class InstanceInfo:
    instance_id: str
    region: str
    name: str
    status: str  # vendor status string, for display only
    disks: tuple[DiskInfo, ...]

    @property
    def system_disk(self) -> DiskInfo | None:
        return next((d for d in self.disks if d.is_system), None)


@dataclass(frozen=True)
class Quota:
    resource: str  # "image" | "snapshot"
    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


class ImageState(str, Enum):
    PENDING = "pending"  # creating / copying / job running
    AVAILABLE = "available"
    FAILED = "failed"
    MISSING = "missing"  # the cloud no longer knows the ref


@dataclass(frozen=True)
class ImageStatus:
    """Status of one image or pending create/copy, keyed by the ref the adapter returned."""

    ref: str  # what create_image/copy_image returned (an image id, or e.g. "job:<id>" on Huawei)
    state: ImageState
    image_id: str | None = None  # known once the vendor has assigned it
    progress: int | None = None  # percent, when the vendor reports it
    size_gb: int | None = None
    detail: str = ""  # the vendor's raw status / failure reason, for logs
    extra_image_ids: tuple[str, ...] = ()  # Huawei data-disk images that belong to this backup
    name: str | None = None  # the name the cloud gave the image (adapters shorten names to fit the vendor)
    created_at: datetime | None = None  # when the cloud says the image was created, if it says


@dataclass(frozen=True)
class ImageSpec:
    """One image to create from an instance."""

    region: str
    instance: InstanceInfo
    devices: tuple[str, ...]  # cloud disks to include, always containing the system disk
    all_disks: bool  # True when ``devices`` is every cloud disk of the instance
    name: str
    description: str
    tags: Mapping[str, str]
    idempotency_key: str  # stable across retries and resumed runs (<= 64 chars, [A-Za-z0-9-])
    vault_id: str | None = None  # Huawei whole-machine images: the CBR vault of the source region


@dataclass(frozen=True)
class CopySpec:
    """One cross-region copy of an available image."""

    source_region: str
    image_id: str
    dest_region: str
    name: str
    description: str
    tags: Mapping[str, str]
    idempotency_key: str
    vault_id: str | None = None  # Huawei whole-machine images need a destination vault


NOT_VISIBLE = "not visible yet"  # ImageStatus.detail of a pending ref the cloud does not list yet


def adoptable(found: Sequence[tuple[str | None, bool]]) -> str | None:
    """Of the (id, failed) images an earlier submission with one key made, the one to adopt: a live one,
    else a failed one. Adopted, a failed image takes the engine's failure path (deleted, then made again
    under a new key, within ``retry_failed``); passed over, it would stay in the cloud untracked while
    the same key was submitted again."""
    known = [(i, failed) for i, failed in found if i]
    return next((i for i, failed in known if not failed), None) or next((i for i, _failed in known), None)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Submissions:
    """When this process submitted each create or copy: the grace period of eventual consistency.

    Right after a create, a list or describe may not show the new object yet. A ref submitted
    less than ``grace_seconds`` ago (by this process, or ``since`` as the engine remembers it) is
    then pending, not missing; an adoption look-up that finds nothing for a key whose submission
    may have reached the cloud that recently is "not visible yet", a transient fault, so the
    submission is not repeated (which would make a duplicate) until the grace period is over.
    """

    def __init__(self, vendor: str, grace_seconds: float = 300.0, clock: Callable[[], datetime] = utcnow) -> None:
        self.vendor = vendor
        self.grace_seconds = grace_seconds
        self.clock = clock
        self._at: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def record(self, *names: str) -> None:
        """``names`` (refs, or keys of submissions whose outcome is unknown) were submitted now."""
        now = self.clock()
        with self._lock:
            self._at.update(dict.fromkeys(names, now))

    def uncertain(self, key: str, error: ProviderError) -> None:
        """A submission failed without an answer (a timeout, a reset connection): it may have reached
        the cloud, so remember it. An answer, even a 5xx, says the cloud did not take it."""
        if error.kind in (ErrorKind.TIMEOUT, ErrorKind.UNKNOWN):
            self.record(key)

    def age(self, name: str, since: datetime | None = None) -> float | None:
        """Seconds since ``name`` was submitted (the later of ours and ``since``), None if unknown."""
        with self._lock:
            known = [at for at in (self._at.get(name), since) if at is not None]
        return (self.clock() - max(known)).total_seconds() if known else None

    def recent(self, name: str, since: datetime | None = None) -> bool:
        age = self.age(name, since)
        return age is not None and age < self.grace_seconds

    def unseen(self, ref: str, since: datetime | None = None) -> ImageStatus:
        """The status of a ref the cloud does not list: pending within the grace period, else missing."""
        if self.recent(ref, since):
            return ImageStatus(ref, ImageState.PENDING, detail=NOT_VISIBLE)
        return ImageStatus(ref, ImageState.MISSING, detail="the cloud does not know this image")

    def nothing_found(self, action: str, key: str, since: datetime | None = None) -> None:
        """An adoption look-up found nothing: raise "not visible yet" while the submission is recent."""
        age = self.age(key, since)
        if age is not None and age < self.grace_seconds:
            raise ProviderError(
                self.vendor,
                action,
                ErrorKind.UNAVAILABLE,
                "NotVisibleYet",
                f"nothing carries key {key} yet, {age:.0f} s after a submission that may have reached the cloud; "
                f"it is looked up again before anything is resubmitted (grace {self.grace_seconds:.0f} s)",
            )


@dataclass(frozen=True)
class RetryPolicy:
    """How transient faults of one account are retried (the policy file's ``retry:``)."""

    max_attempts: int = 6
    initial_wait: float = 0.5  # seconds; doubles per attempt, with full jitter
    max_wait: float = 20.0
    deadline_seconds: float = 180.0


@dataclass(frozen=True)
class ProviderLimits:
    """Vendor limits the engine must respect when scheduling calls."""

    max_concurrent_copies: int | None = None  # Huawei: 5 per account
    max_images_per_copy_call: int = 1  # JD copyImages: 10
    default_concurrency: int = 4  # instances worked on at once
    instances_per_describe: int = 1  # more: ``get_instances`` describes that many per call (one pass's step 1)
    copy_size_limit_gb: Mapping[str, int] = field(default_factory=dict)  # source region -> GB


class Provider(abc.ABC):
    """A cloud account as the engine sees it. One instance per (account, endpoint)."""

    vendor: str
    limits: ProviderLimits = ProviderLimits()
    retry_policy: RetryPolicy = RetryPolicy()
    submissions: Submissions  # set by each adapter: what it submitted, for eventual consistency

    def pause(self, seconds: float) -> None:
        """Wait between retries (tests substitute the emulator clock)."""
        time.sleep(seconds)

    @abc.abstractmethod
    def get_instance(self, region: str, instance_id: str) -> InstanceInfo | None:
        """The instance with its disks, or None if the region has no such instance."""

    def get_instances(self, region: str, instance_ids: Sequence[str]) -> Mapping[str, InstanceInfo | None]:
        """Several instances at once (every instance a pass is about to image): a vendor whose API
        describes many per call overrides this; by default they are asked for one by one."""
        return {instance_id: self.get_instance(region, instance_id) for instance_id in instance_ids}

    @abc.abstractmethod
    def quotas(self, region: str) -> Sequence[Quota]:
        """Image (and, where the vendor ties them, snapshot) quota; empty if the vendor has no API."""

    @abc.abstractmethod
    def create_image(self, spec: ImageSpec) -> str:
        """Submit an image creation once (no retry: ``actions.adoption`` adopts before any retry); its ref."""

    @abc.abstractmethod
    def find_submitted(self, region: str, key: str, name: str, attempted_at: datetime | None = None) -> str | None:
        """The id of the image (or copy) an earlier submission with this idempotency key made (``adoptable``).

        ``name`` is the name that submission gave; adapters may use it to narrow the look-up, but
        ownership is proven by the key (a tag, or a marker where the vendor has no tags).
        ``attempted_at`` is when that submission was sent, if the caller knows: while it is recent,
        finding nothing raises a transient "not visible yet" ProviderError (see ``Submissions``).
        """

    @abc.abstractmethod
    def find_images(self, region: str, tags: Mapping[str, str], name: str | None = None) -> Sequence[ImageStatus]:
        """Images imagebak created, found by ownership tags (or name where the vendor has no tags)."""

    @abc.abstractmethod
    def image_status(
        self, region: str, refs: Sequence[str], submitted_at: Mapping[str, datetime] | None = None
    ) -> Mapping[str, ImageStatus]:
        """Statuses of many refs in one region, batched as the vendor allows.

        A ref the cloud does not list is PENDING (detail ``NOT_VISIBLE``) while its submission is
        recent — by this process, or at ``submitted_at[ref]`` — and MISSING after that.
        """

    @abc.abstractmethod
    def copy_images(self, specs: Sequence[CopySpec]) -> Mapping[str, str]:
        """Submit copies once (same source and destination region, at most ``max_images_per_copy_call``).

        Returns {idempotency key: ref} for the copies the cloud accepted. Not retried here.
        """

    def tag_image(self, region: str, image_id: str, tags: Mapping[str, str]) -> None:  # noqa: B027
        """Tag an image after the fact (copies on vendors whose copy call takes no tags, or whose
        ownership marker the cloud dropped); default: nothing."""

    @abc.abstractmethod
    def delete_image(self, region: str, image_id: str) -> None:
        """Delete one image (and the snapshots it owns where the vendor allows)."""
