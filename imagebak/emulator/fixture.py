"""Fixture YAML → CloudModel, and the optional JSON state file that keeps images between runs.

The fixture defines the world (accounts, regions, instances, quotas, latencies, faults); a state
file, when present, wins for what happened in it (images, snapshots, tasks). Every problem is
reported as one line naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from imagebak.emulator.clock import Clock
from imagebak.emulator.faults import FaultRule
from imagebak.emulator.model import Account, CloudError, CloudModel
from imagebak.emulator.rules import Latency
from imagebak.fsutil import atomic_write
from imagebak.vendors import Vendor

DEFAULT_FIXTURE = Path(__file__).with_name("default-fixture.yaml")

FixtureSource = str | Path | dict[str, Any] | None  # a YAML path, parsed data, or None for the default


class FixtureError(Exception):
    """A fixture or state file that cannot be used; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DiskSpec(_Strict):
    device: str = Field(pattern=r"^[a-z]+[a-z0-9]*$")
    category: Literal["cloud", "local"] = "cloud"
    size_gb: int = Field(gt=0)
    is_system: bool = False
    encrypted: bool = False
    volume_type: str = "SSD"
    disk_id: str = ""
    name: str = ""


class InstanceSpec(_Strict):
    instance_id: str = Field(min_length=1)
    region: str
    name: str = ""
    status: Literal["running", "stopped", "starting", "stopping", "rebooting"] = "running"
    task: str | None = None  # a task in progress (e.g. "resize"): no image can be made until it ends
    zone: str | None = None
    disks: list[DiskSpec] = Field(min_length=1)


class ImageSpec(_Strict):
    """A pre-existing available image, e.g. an ISO to prove ISO images are never copied."""

    region: str
    name: str
    size_gb: int = Field(gt=0)
    image_type: Literal["private", "iso"] = "private"
    kind: Literal["system", "whole", "data"] = "system"
    encrypted: bool = False
    image_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class QuotaSpec(_Strict):
    image: int | None = Field(default=None, ge=0)
    snapshot: int | None = Field(default=None, ge=0)


class AccountSpec(_Strict):
    name: str = Field(min_length=1)
    provider: Vendor
    access_key_id: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    # A list, or (Huawei) a mapping region -> project id; missing project ids are derived.
    regions: list[str] | dict[str, str | None] = Field(min_length=1)
    quotas: dict[str, QuotaSpec] = Field(default_factory=dict)
    instances: list[InstanceSpec] = Field(default_factory=list)
    images: list[ImageSpec] = Field(default_factory=list)
    # Huawei: the backup service behind whole-machine images; CBR needs a vault_id, CSBS does not.
    whole_image_backup: Literal["cbr", "csbs"] = "cbr"


class LatencySpec(_Strict):
    base_seconds: float = Field(ge=0)
    per_gb_seconds: float = Field(default=0.0, ge=0)
    jitter: float = Field(default=0.0, ge=0, lt=1)


LatencyOp = Literal["image", "snapshot", "copy"]


class FixtureSpec(_Strict):
    seed: int = 0
    accounts: list[AccountSpec] = Field(min_length=1)
    # "default" applies to every provider; a provider key overrides it for that provider.
    latencies: dict[Literal["default", Vendor], dict[LatencyOp, LatencySpec]] = Field(default_factory=dict)
    faults: list[dict[str, Any]] = Field(default_factory=list)
    fail_next_creations: int = Field(default=0, ge=0)


@dataclass
class LoadedFixture:
    model: CloudModel
    faults: list[FaultRule]
    seed: int
    source: str  # file name or "<dict>", for messages


def project_id(account: str, region: str) -> str:
    """A stable 32-hex project id, so fixtures need not invent one per region."""
    return hashlib.md5(f"{account}/{region}".encode(), usedforsecurity=False).hexdigest()


def _read(fixture: FixtureSource) -> tuple[dict[str, Any], str]:
    if isinstance(fixture, dict):
        return fixture, "<fixture dict>"
    path = Path(fixture) if fixture is not None else DEFAULT_FIXTURE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FixtureError(f"{path}: cannot read fixture: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise FixtureError(f"{path}: invalid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise FixtureError(f"{path}: a fixture must be a mapping with an 'accounts' list")
    return data, str(path)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for "the key itself", already named by the previous part
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _validate(data: dict[str, Any], source: str) -> FixtureSpec:
    try:
        return FixtureSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise FixtureError(f"{source}: {_location(first['loc'])}: {first['msg']}{more}") from None


def load_fixture(fixture: FixtureSource = None, *, clock: Clock | None = None) -> LoadedFixture:
    """Build a model from a fixture file, a dict, or the packaged default fixture."""
    data, source = _read(fixture)
    spec = _validate(data, source)
    model = CloudModel(clock, seed=spec.seed)

    def fail(key: str, exc: Exception) -> FixtureError:
        return FixtureError(f"{source}: {key}: {exc}")

    for i, acc in enumerate(spec.accounts):
        key = f"accounts[{i}]"
        if isinstance(acc.regions, dict) and acc.provider != "huawei":
            raise fail(f"{key}.regions", ValueError("project ids are only for huawei accounts; use a list"))
        regions = list(acc.regions)
        given = acc.regions if isinstance(acc.regions, dict) else {}
        projects = {r: given.get(r) or project_id(acc.name, r) for r in regions} if acc.provider == "huawei" else {}
        try:
            account = Account(
                acc.name, acc.provider, acc.access_key_id, acc.secret, projects, regions, acc.whole_image_backup
            )
            model.add_account(account)
        except ValueError as exc:
            raise fail(key, exc) from None
        for region, quota in acc.quotas.items():
            for resource in ("image", "snapshot"):
                limit = getattr(quota, resource)
                if limit is None:
                    continue
                try:
                    model.set_quota(acc.name, region, resource, limit)
                except (ValueError, CloudError) as exc:
                    raise fail(f"{key}.quotas.{region}", exc) from None
        for j, inst in enumerate(acc.instances):
            try:
                model.add_instance(
                    acc.name,
                    inst.region,
                    inst.instance_id,
                    name=inst.name or inst.instance_id,
                    disks=[d.model_dump() for d in inst.disks],
                    status=inst.status,
                    zone=inst.zone,
                )
                if inst.task:
                    model.set_instance_state(acc.name, inst.region, inst.instance_id, task=inst.task)
            except (ValueError, CloudError) as exc:
                raise fail(f"{key}.instances[{j}]", exc) from None
        for j, img in enumerate(acc.images):
            try:
                model.seed_image(acc.name, img.region, **img.model_dump(exclude={"region"}))
            except (ValueError, CloudError) as exc:
                raise fail(f"{key}.images[{j}]", exc) from None
    for provider, ops in spec.latencies.items():
        for op, lat in ops.items():
            model.set_latency(None if provider == "default" else provider, op, Latency(**lat.model_dump()))
    faults: list[FaultRule] = []
    for i, raw in enumerate(spec.faults):
        try:
            faults.append(FaultRule.from_dict(raw))
        except ValueError as exc:
            raise fail(f"faults[{i}]", exc) from None
    model.fail_next_creations(spec.fail_next_creations)
    return LoadedFixture(model, faults, spec.seed, source)


def load_state(model: CloudModel, path: str | Path) -> bool:
    """Overlay a saved state onto a fixture-built model; False when the file does not exist yet."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise FixtureError(f"{path}: cannot read state file: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        model.load_dynamic_state(data)
    except ValueError as exc:
        raise FixtureError(f"{path}: not a usable emulator state file: {exc}") from None
    return True


def save_state(model: CloudModel, path: str | Path) -> None:
    """Write the state atomically (temp file, fsync, rename) so a crash never leaves half a file."""
    path = Path(path)
    payload = json.dumps(model.to_dict(), indent=1, sort_keys=True).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, payload)
