"""Per-provider rule data: what each real cloud enforces, as plain frozen data.

The model applies these rules generically; front-ends read the ones that are about the wire
(e.g. JD's images-per-call limit). Sources: ../shared/seeds (product docs) and the issue.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from imagebak.vendors import VENDORS, Vendor

RESOURCES: tuple[str, ...] = ("image", "snapshot")
LATENCY_OPS: tuple[str, ...] = ("image", "snapshot", "copy")

_ALNUM = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class IdFormat:
    """``prefix`` + ``length`` random lowercase alnum chars, or a UUID4 / 32-hex when ``style`` says so."""

    prefix: str = ""
    length: int = 0
    style: str = "alnum"  # "alnum" | "uuid" | "hex32"

    def generate(self, rng: random.Random) -> str:
        if self.style == "uuid":
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if self.style == "hex32":
            return f"{rng.getrandbits(128):032x}"
        return self.prefix + "".join(rng.choice(_ALNUM) for _ in range(self.length))


@dataclass(frozen=True)
class Latency:
    """Simulated duration = (base + per_gb × size) × uniform(1 − jitter, 1 + jitter), in seconds."""

    base_seconds: float
    per_gb_seconds: float = 0.0
    jitter: float = 0.0

    def draw(self, size_gb: int, rng: random.Random) -> float:
        nominal = self.base_seconds + self.per_gb_seconds * size_gb
        if self.jitter:
            nominal *= rng.uniform(1 - self.jitter, 1 + self.jitter)
        return max(nominal, 0.0)


HUAWEI_300GB_SOURCE_REGIONS = frozenset({"cn-south-1", "cn-east-2", "cn-east-3", "cn-north-4"})
HUAWEI_WHOLE_IMAGE_REGIONS = frozenset({"cn-north-1", "cn-north-4", "cn-east-2", "cn-east-3", "cn-south-1"})


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(mapping)


@dataclass(frozen=True)
class ProviderRules:
    provider: Vendor
    image_id: IdFormat
    snapshot_id: IdFormat
    disk_id: IdFormat
    task_id: IdFormat
    zone_format: str  # str.format with ``region``
    max_concurrent_copies: int | None = None  # per account, all regions
    copy_size_limit_gb: int | None = None  # default for every source region; None = unlimited
    copy_size_limit_by_source_region: Mapping[str, int] = field(default_factory=lambda: _frozen({}))
    whole_image_copy_regions: frozenset[str] | None = None  # None = whole images copy anywhere
    whole_image_copy_requires_vault: bool = False
    iso_copyable: bool = False
    encrypted_copyable: bool = False
    max_images_per_copy_call: int | None = None  # enforced by the front-end (JD copyImages)
    unique_image_names: bool = False  # a region's images have distinct names (Aliyun InvalidImageName.Duplicated)
    max_share_accounts: int | None = None  # accounts one image may be shared with; None = no sharing API
    default_quota: Mapping[str, int] = field(default_factory=lambda: _frozen({"image": 100, "snapshot": 256}))
    latency: Mapping[str, Latency] = field(default_factory=lambda: _frozen({}))

    def copy_size_limit(self, source_region: str) -> int | None:
        return self.copy_size_limit_by_source_region.get(source_region, self.copy_size_limit_gb)

    def whole_copy_allowed(self, source_region: str, dest_region: str) -> bool:
        allowed = self.whole_image_copy_regions
        return allowed is None or (source_region in allowed and dest_region in allowed)


# Real creations take minutes: a demo compresses them with a time scale, tests use a ManualClock.
DEFAULT_LATENCY: Mapping[str, Latency] = _frozen(
    {
        "snapshot": Latency(base_seconds=60, per_gb_seconds=1.0, jitter=0.2),
        "image": Latency(base_seconds=120, per_gb_seconds=1.5, jitter=0.2),
        "copy": Latency(base_seconds=300, per_gb_seconds=3.0, jitter=0.2),
    }
)

RULES: Mapping[str, ProviderRules] = _frozen(
    {
        "aliyun": ProviderRules(
            provider="aliyun",
            image_id=IdFormat("m-", 20),
            snapshot_id=IdFormat("s-", 20),
            disk_id=IdFormat("d-", 20),
            task_id=IdFormat("t-", 20),
            zone_format="{region}-b",
            unique_image_names=True,
            max_share_accounts=50,  # ECS ModifyImageSharePermission: up to 50 Alibaba Cloud accounts
            latency=DEFAULT_LATENCY,
        ),
        "huawei": ProviderRules(
            provider="huawei",
            image_id=IdFormat(style="uuid"),
            snapshot_id=IdFormat(style="uuid"),
            disk_id=IdFormat(style="uuid"),
            task_id=IdFormat(style="hex32"),
            zone_format="{region}a",
            max_concurrent_copies=5,
            copy_size_limit_gb=128,
            copy_size_limit_by_source_region=_frozen(dict.fromkeys(HUAWEI_300GB_SOURCE_REGIONS, 300)),
            whole_image_copy_regions=HUAWEI_WHOLE_IMAGE_REGIONS,
            whole_image_copy_requires_vault=True,
            latency=DEFAULT_LATENCY,
        ),
        "jdcloud": ProviderRules(
            provider="jdcloud",
            image_id=IdFormat("img-", 10),
            snapshot_id=IdFormat("snapshot-", 10),
            disk_id=IdFormat("vol-", 10),
            task_id=IdFormat("task-", 10),
            zone_format="{region}a",
            max_images_per_copy_call=10,
            max_share_accounts=20,  # vm shareImage: up to 20 JD Cloud accounts
            latency=DEFAULT_LATENCY,
        ),
    }
)


def rules_for(provider: str) -> ProviderRules:
    try:
        return RULES[provider]
    except KeyError:
        raise ValueError(f"unknown provider {provider!r} (expected one of {', '.join(VENDORS)})") from None
